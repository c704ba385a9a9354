"""``lam eval | change-bias``: errors of a model on labelled frames, and a refit of energy references only."""

from __future__ import annotations

import json as json_module
import sys
from pathlib import Path


def evaluate(
    model: str,
    data: str,
    head: str = "all",
    json: bool = False,
    plots: Path | None = Path("lam_eval"),
) -> dict:
    """Energy MAE/atom, force RMSE and stress RMSE of a model on labelled frames, per head.

    Args:
        model: built-in name, local folder or Hub id org/name[@revision].
        data: labelled frames (file, directory or registry dataset name).
        head: a head name, or "all".
        json: print the metrics as one JSON object (head -> metrics).
        plots: folder for parity_<head>.png (energy/atom and force components); null: no plots.
    """
    from lam.data.sources import load_frames
    from lam.hub.models import load_model
    from lam.train.evaluate import evaluate as run_evaluate
    from lam.train.evaluate import format_table

    lam_model = load_model(model)
    heads = list(lam_model.heads) if head == "all" else [lam_model.resolve_head(head)]
    results = run_evaluate(lam_model, load_frames(data), heads, plot_dir=plots)
    if json:
        print(json_module.dumps(results, indent=2))
    else:
        print(format_table(results))
    if plots is not None:
        print(
            f"parity plots: {', '.join(str(Path(plots) / f'parity_{h}.png') for h in heads)}", file=sys.stderr
        )
    return results


def change_bias(
    model: str, data: str, head: str | None = None, out: Path | None = None, overwrite: bool = False
) -> Path:
    """Only re-fit one head's per-element energy references on DATA; save as a new model.

    DeePMD-kit's "change-by-statistic": no weight is trained.

    Args:
        model: built-in name, local folder or Hub id org/name[@revision].
        data: labelled frames (file, directory or registry dataset name).
        head: the head to re-reference (may be omitted for a single-head model).
        out: output model folder.
        overwrite: replace a model already in OUT.
    """
    from ase.data import chemical_symbols

    from lam.data.sources import load_frames
    from lam.hub.card import CARD_FILE, Lineage, change_bias_card
    from lam.hub.models import load_model_and_ref
    from lam.hub.outputs import refuse_existing_model
    from lam.train.refit import refit_energy_references

    if out is None:
        raise ValueError("lam change-bias needs --out DIR")
    out = Path(out)
    refuse_existing_model(out, overwrite)
    lam_model, parent = load_model_and_ref(model)
    frames = load_frames(data)
    result = refit_energy_references(lam_model, frames, lam_model.resolve_head(head))
    shifts = ", ".join(f"{chemical_symbols[z]} {v:+.4f}" for z, v in sorted(result.shifts.items()))
    residual = result.fit.rms_residual_per_atom
    note = f"Shifts added to the references (eV): {shifts}; RMS residual {residual:.4f} eV/atom."
    lam_model.save_pretrained(out)
    lineage = Lineage(parent, result.head, result.head, "change-bias")
    change_bias_card(lineage, data, result.n_frames, note).save(out / CARD_FILE)
    print(f"{note}\nsaved {out}")
    return out


COMMANDS = {"eval": evaluate, "change-bias": change_bias}
