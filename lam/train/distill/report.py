"""What a distillation shows besides its card: a plot of agreement and selection per iteration."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

PLOT_FILE = "agreement.png"


def plot_agreement(rounds: Sequence[dict[str, Any]], target: float, path: Path) -> Path:
    """PNG of agreement and selection per iteration.

    Panels: held-out student-vs-teacher force RMSE (with the target) and energy MAE, and the explored
    frames found learned, labelled and failed, with the teacher labels spent.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    index = [r["iteration"] for r in rounds]
    fig, (ax_f, ax_e, ax_s) = plt.subplots(1, 3, figsize=(13, 3.6))
    ax_f.plot(index, [1000 * r["holdout"]["force_rmse"] for r in rounds], "o-", label="held out")
    before = [(r["iteration"], 1000 * r["new_frames_before_training"]["force_rmse"])
              for r in rounds if r["new_frames_before_training"] is not None]
    ax_f.plot(*(zip(*before, strict=True) if before else ([], [])), "s--", label="new frames, untrained")
    ax_f.axhline(1000 * target, color="k", ls=":", label="target")
    ax_e.plot(index, [1000 * r["holdout"]["energy_mae_per_atom"] for r in rounds], "o-")
    _plot_selection(ax_s, rounds)
    for ax, label in ((ax_f, "force RMSE vs teacher (meV/Å)"), (ax_e, "energy MAE vs teacher (meV/atom)")):
        ax.set(xlabel="iteration", ylabel=label, xticks=index)
    ax_f.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_selection(ax: Any, rounds: Sequence[dict[str, Any]]) -> None:
    """Stacked fractions of each iteration's explored frames by verdict; the labels spent on top."""
    index = [r["iteration"] for r in rounds]
    bottom = [0.0] * len(rounds)
    for key, colour in (("accurate_fraction", "tab:green"), ("selected_fraction", "tab:blue"),
                        ("failed_fraction", "tab:red")):
        heights = [r["selection"][key] for r in rounds]
        ax.bar(index, heights, bottom=bottom, color=colour, label=key.removesuffix("_fraction"))
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    for i, r in zip(index, rounds, strict=True):
        ax.annotate(f"{r['labelled']} labels", (i, 1.0), ha="center", va="bottom", fontsize=8)
    ax.set(xlabel="iteration", ylabel="fraction of explored frames", xticks=index, ylim=(0, 1.15))
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
