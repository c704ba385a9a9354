"""What a distillation shows besides its card: the plot of student-vs-teacher agreement per round."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

PLOT_FILE = "agreement.png"


def plot_agreement(rounds: Sequence[dict[str, Any]], target: float, path: Path) -> Path:
    """PNG of held-out student-vs-teacher force RMSE and energy MAE per round, with the target."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    index = [r["iteration"] for r in rounds]
    fig, (ax_f, ax_e) = plt.subplots(1, 2, figsize=(9, 3.6))
    ax_f.plot(index, [1000 * r["holdout"]["force_rmse"] for r in rounds], "o-", label="held out")
    before = [(r["iteration"], 1000 * r["new_frames_before_training"]["force_rmse"])
              for r in rounds if r["new_frames_before_training"] is not None]
    ax_f.plot(*(zip(*before, strict=True) if before else ([], [])), "s--", label="new frames, untrained")
    ax_f.axhline(1000 * target, color="k", ls=":", label="target")
    ax_e.plot(index, [1000 * r["holdout"]["energy_mae_per_atom"] for r in rounds], "o-")
    for ax, label in ((ax_f, "force RMSE vs teacher (meV/Å)"), (ax_e, "energy MAE vs teacher (meV/atom)")):
        ax.set(xlabel="iteration", ylabel=label, xticks=index)
    ax_f.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
