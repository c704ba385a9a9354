"""``lam pretrain | finetune | eval | change-bias``: training, fine-tuning and evaluation commands.

``lam finetune --from MODEL`` and dashed flags (``--max-steps``) work through :func:`lam.cli.normalize_argv`
(``from`` is a Python keyword: the parameter is ``model``).
"""

from __future__ import annotations

import json as json_module
import sys
from pathlib import Path
from typing import Literal


def finetune(
    model: str | None = None,
    data: str | None = None,
    head: str = "auto",
    mode: Literal["full", "frozen", "replay"] = "full",
    name: str | None = None,
    out: Path | None = None,
    overwrite: bool = False,
    max_steps: int = 1000,
    lr: float = 1e-3,
    batch_size: int = 4,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    test_data: str | None = None,
    seed: int = 0,
    patience: int = 10,
    val_every: int = 50,
    replay_frames: int = 100,
    final_lr_ratio: float = 0.05,
    warmup_steps: int = 0,
    start_pref_e: float = 1.0,
    limit_pref_e: float = 1.0,
    start_pref_f: float = 1.0,
    limit_pref_f: float = 1.0,
    start_pref_s: float = 0.0,
    limit_pref_s: float = 0.0,
    level_of_theory: str | None = None,
) -> Path:
    """Fine-tune a pretrained model on your labelled frames and save it as a model folder.

    Args:
        model: (also --from) parent model: built-in name (lam-mini), local folder, or Hub id
            org/name[@revision].
        data: labelled frames: any file read_frames reads (extxyz, .db, deepmd dir, ...) or a registry
            dataset name.
        head: pretrained head to start from, "auto" (best zero-shot after energy refit) or "new".
        mode: full (all weights train), frozen (descriptor fixed, head only), replay (also keep
            training a sample of the pretraining data on its own heads).
        name: name of the fine-tuned head (default: from the data's name).
        out: output model folder (default: finetuned_<name>).
        overwrite: replace a model already in OUT.
        max_steps: optimiser steps at most (early stopping may end sooner).
        lr: peak learning rate.
        batch_size: frames per batch.
        val_fraction: fraction of frames for validation and early stopping.
        test_fraction: fraction of frames for the final test report (ignored with --test_data).
        test_data: separate labelled test frames.
        seed: seed of the data split, replay sample and training.
        patience: validation checks without improvement before stopping.
        val_every: optimiser steps between validation checks.
        replay_frames: frames per pretraining dataset under --mode replay.
        final_lr_ratio: learning rate at max_steps over lr (exponential decay; DeePMD stop_lr/start_lr).
        warmup_steps: linear learning-rate warmup steps.
        start_pref_e: energy-per-atom loss prefactor at the start ((eV/atom)^-2; DeePMD's name). The
            fine-tuning defaults are DeePMD's limit values from step 0 (energy 1, forces 1): a pretrained
            model needs no force-dominated start (0.02 / 1000 from scratch), which lets energies drift.
        limit_pref_e: energy-per-atom loss prefactor at the end of the learning-rate decay.
        start_pref_f: force loss prefactor at the start ((eV/Å)^-2).
        limit_pref_f: force loss prefactor at the end of the decay.
        start_pref_s: stress loss prefactor at the start ((eV/Å^3)^-2); 0 with limit 0: no stress term.
        limit_pref_s: stress loss prefactor at the end of the decay.
        level_of_theory: functional of your data (e.g. PBE); --head auto then ranks only the pretrained
            heads of that functional, when the model has any.
    """
    from lam.train.evaluate import format_table, load_frames
    from lam.train.finetune import FinetuneOptions, format_ranking, head_name_for
    from lam.train.finetune import finetune as run_finetune

    if model is None or data is None:
        raise ValueError("lam finetune needs --from MODEL and --data DATA")
    options = FinetuneOptions(
        head=head,
        name=name,
        mode=mode,
        max_steps=max_steps,
        lr=lr,
        batch_size=batch_size,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        patience=patience,
        val_every=val_every,
        replay_frames=replay_frames,
        final_lr_ratio=final_lr_ratio,
        warmup_steps=warmup_steps,
        start_pref_e=start_pref_e,
        limit_pref_e=limit_pref_e,
        start_pref_f=start_pref_f,
        limit_pref_f=limit_pref_f,
        start_pref_s=start_pref_s,
        limit_pref_s=limit_pref_s,
        level_of_theory=level_of_theory,
    )
    out = Path(out) if out is not None else Path(f"finetuned_{name or head_name_for(data, [])}")
    test_frames = load_frames(test_data) if test_data else None
    result = run_finetune(model, load_frames(data), out, options, data, test_frames, overwrite)
    prepared = result.prepared
    if prepared.ranking:
        print(format_ranking(prepared.ranking))
    if prepared.new_elements:
        from ase.data import chemical_symbols

        print(
            f"elements new to the model (embeddings trained from scratch): "
            f"{[chemical_symbols[z] for z in prepared.new_elements]}"
        )
    print(
        f"head {prepared.head!r} from {prepared.parent_head!r}; "
        f"split {result.split_sizes}; {result.steps} steps"
    )
    if result.step0:
        print("step 0 (after energy refit), on the test frames:\n" + format_table(result.step0))
    if result.test:
        print("test:\n" + format_table(result.test))
    print(f"saved {out}")
    return out


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
    from lam.hub.models import load_model
    from lam.train.evaluate import evaluate as run_evaluate
    from lam.train.evaluate import format_table, load_frames

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

    from lam.hub.card import CARD_FILE, Lineage, change_bias_card
    from lam.hub.models import load_model, parse_model_ref
    from lam.train.evaluate import load_frames
    from lam.train.finetune import refuse_existing_model
    from lam.train.refit import refit_energy_references

    if out is None:
        raise ValueError("lam change-bias needs --out DIR")
    out = Path(out)
    refuse_existing_model(out, overwrite)
    lam_model = load_model(model)
    frames = load_frames(data)
    result = refit_energy_references(lam_model, frames, lam_model.resolve_head(head))
    shifts = ", ".join(f"{chemical_symbols[z]} {v:+.4f}" for z, v in sorted(result.shifts.items()))
    residual = result.fit.rms_residual_per_atom
    note = f"Shifts added to the references (eV): {shifts}; RMS residual {residual:.4f} eV/atom."
    lam_model.save_pretrained(out)
    lineage = Lineage(parse_model_ref(model), result.head, result.head, "change-bias")
    change_bias_card(lineage, data, result.n_frames, note).save(out / CARD_FILE)
    print(f"{note}\nsaved {out}")
    return out


def pretrain(
    recipe: Path,
    max_steps: int | None = None,
    out: Path | None = None,
    run_dir: Path | None = None,
    overwrite: bool = False,
    resume: bool = True,
    wandb: Literal["offline", "online", "disabled"] = "offline",
) -> Path:
    """Multi-task pretraining from a recipe (recipes/pretrain_*.yaml); exports a model folder.

    Args:
        recipe: recipe YAML file (trainer / model / data sections); also spelled ``--config``.
        max_steps: override the recipe's step budget (e.g. for a smoke run).
        out: model folder to export (default: RUN_DIR/model).
        run_dir: logs and checkpoints (default: runs/<recipe name>).
        overwrite: replace an exported model / checkpoints of an earlier run.
        resume: continue a killed run from RUN_DIR/checkpoints/last.ckpt.
        wandb: Weights & Biases logging: offline (default), online or disabled; CSV logs always.
    """
    from lam.train.pretrain import pretrain as run_pretrain

    model_dir = run_pretrain(
        recipe, max_steps=max_steps, out=out, run_dir=run_dir, overwrite=overwrite, resume=resume, wandb=wandb
    )
    print(f"saved {model_dir}")
    return model_dir


COMMANDS = {"pretrain": pretrain, "finetune": finetune, "eval": evaluate, "change-bias": change_bias}
