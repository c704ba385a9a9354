"""What a distillation shows: the agreement plot and the student's model card."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lam.hub.card import Lineage
from lam.hub.outputs import json_ready
from lam.train.distill.options import DistillOptions

PLOT_FILE = "agreement.png"

def plot_agreement(rounds: Sequence[dict[str, Any]], target: float, path: Path) -> Path:
    """PNG of held-out student-vs-teacher force RMSE and energy MAE per round, with the target."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    index = [r["round"] for r in rounds]
    fig, (ax_f, ax_e) = plt.subplots(1, 2, figsize=(9, 3.6))
    ax_f.plot(index, [1000 * r["holdout"]["force_rmse"] for r in rounds], "o-", label="held out")
    before = [(r["round"], 1000 * r["new_frames_before_training"]["force_rmse"])
              for r in rounds if r["new_frames_before_training"] is not None]
    ax_f.plot(*(zip(*before, strict=True) if before else ([], [])), "s--", label="new frames, untrained")
    ax_f.axhline(1000 * target, color="k", ls=":", label="target")
    ax_e.plot(index, [1000 * r["holdout"]["energy_mae_per_atom"] for r in rounds], "o-")
    for ax, label in ((ax_f, "force RMSE vs teacher (meV/Å)"), (ax_e, "energy MAE vs teacher (meV/atom)")):
        ax.set(xlabel="round", ylabel=label, xticks=index)
    ax_f.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

A fast `lam` student potential distilled from the teacher **{{ parent }}**
(revision `{{ revision or 'n/a' }}`, head `{{ head }}`): a `{{ student }}` model trained on frames the
teacher labelled along Langevin MD at {{ temperature }} K (DP-GEN-style rounds; from round 2 the
student also drives the MD).
Energies in eV, forces in eV/Å, stress in eV/Å³. The teacher is not part of this model.

## Agreement with the teacher (held-out teacher-labelled frames)

| round | train / held-out frames | steps | energy MAE (meV/atom) | force RMSE (meV/Å) | teacher force RMS |
|---|---|---|---|---|---|
{{ rows }}

Target force RMSE {{ target }} meV/Å: {{ 'reached' if converged else 'not reached' }}. Speed
(`distill.json`): teacher {{ speed.teacher_us_per_atom | round | int }}, student
{{ speed.student_us_per_atom | round | int }} µs/atom ({{ speed.n_atoms }} atoms, {{ speed.dtype }}, CPU).

Limitations: the student is only as good as the teacher, and only near the configurations visited
(starting structures `{{ structures }}`, {{ temperature }} K). Check it before production use.
"""


def distilled_card(
    lineage: Lineage, rounds: Sequence[dict[str, Any]], converged: bool, speed: dict[str, Any],
    options: DistillOptions,
) -> Any:
    """``README.md`` of the student: lineage (teacher ref, revision, head), settings, agreement, speed."""
    from huggingface_hub import ModelCard, ModelCardData

    run_only = ("head", "teacher", "structures", "out", "overwrite", "logger", "progress", "trainer")
    settings = {k: v for k, v in json_ready(options).items() if k not in run_only}
    structures = options.structures
    data = ModelCardData(
        library_name="lam", tags=["interatomic-potential", "lam", "distilled"],
        base_model=lineage.parent_name, model_name=f"{Path(lineage.parent_name).name}-student",
        lam_lineage={**lineage.to_dict(), "structures": structures, "distillation": settings})
    rows = "\n".join(
        f"| {r['round']} | {r['train_frames']} / {r['holdout_frames']} | {r['steps']} | "
        f"{1000 * r['holdout']['energy_mae_per_atom']:.2f} | {1000 * r['holdout']['force_rmse']:.2f} | "
        f"{1000 * r['holdout_teacher_force_rms']:.1f} |" for r in rounds)
    return ModelCard.from_template(
        data, template_str=CARD_TEMPLATE, model_name=data.model_name, parent=lineage.parent_name,
        revision=lineage.parent.revision, head=lineage.head, student=options.student,
        temperature=options.temperature_K, rows=rows, target=1000 * options.target_force_rmse,
        converged=converged, speed=speed, structures=structures,
    )
