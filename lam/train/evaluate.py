"""Evaluate a model on labelled frames: errors per head and parity plots.

Metric names match the training logs (``energy_mae_per_atom`` eV/atom, ``force_rmse`` eV/Å,
``stress_rmse`` eV/Å^3); a label missing from every frame gives ``None`` for its metrics, never 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import ase
import numpy as np

from lam.data.labels import read_label, stress_3x3
from lam.model.lam import LAM
from lam.predict import iter_results


@dataclass
class Parity:
    """Labels and predictions of the frames that carry each label.

    Attributes:
        energy_true, energy_pred: [F] total energies, eV.
        n_atoms: [F] atoms per frame (of the frames with an energy label).
        forces_true, forces_pred: [M, 3] forces of the atoms of frames with forces, eV/Å.
        stress_true, stress_pred: [S, 3, 3] stresses of frames with stress, eV/Å^3.
    """

    energy_true: np.ndarray
    energy_pred: np.ndarray
    n_atoms: np.ndarray
    forces_true: np.ndarray
    forces_pred: np.ndarray
    stress_true: np.ndarray
    stress_pred: np.ndarray


def _stacked(arrays: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    return np.stack(arrays).astype(np.float64) if arrays else np.zeros((0, *shape))


def predict(model: LAM, frames: Sequence[ase.Atoms], head: str, batch_atoms: int = 2000) -> Parity:
    """Run ``model`` with ``head`` on ``frames`` and pair predictions with the present labels.

    The predictions come from :func:`lam.predict.iter_results` (frames packed up to ``batch_atoms``
    atoms per batch). Elements the head was not trained on are predicted anyway: ranking heads on new
    data scores heads that do not cover it. The model's train/eval mode is restored afterwards.
    """
    head = model.resolve_head(head)
    want_stress = any(read_label(atoms, "stress") is not None for atoms in frames)
    was_training = model.training
    try:
        predictions = list(
            iter_results(model, frames, head, batch_atoms, allow_unseen_elements=True, stress=want_stress)
        )
    finally:
        model.train(was_training)
    out: dict[str, list] = {k: [] for k in ("et", "ep", "n", "ft", "fp", "st", "sp")}
    for atoms, pred in zip(frames, predictions, strict=True):
        energy, forces, stress = (read_label(atoms, name) for name in ("energy", "forces", "stress"))
        if energy is not None:
            out["et"].append(energy.reshape(()))
            out["ep"].append(np.asarray(pred["energy"]))
            out["n"].append(np.asarray(len(atoms)))
        if forces is not None:
            out["ft"].append(forces.reshape(-1, 3))
            out["fp"].append(pred["forces"])
        if stress is not None:
            out["st"].append(stress_3x3(stress))
            out["sp"].append(stress_3x3(pred["stress"]))
    concat = lambda chunks: np.concatenate(chunks) if chunks else np.zeros((0, 3))  # noqa: E731
    return Parity(
        energy_true=_stacked(out["et"], ()),
        energy_pred=_stacked(out["ep"], ()),
        n_atoms=_stacked(out["n"], ()),
        forces_true=concat(out["ft"]),
        forces_pred=concat(out["fp"]),
        stress_true=_stacked(out["st"], (3, 3)),
        stress_pred=_stacked(out["sp"], (3, 3)),
    )


def error_metrics(parity: Parity) -> dict[str, float | int | None]:
    """Energy MAE/RMSE per atom (eV/atom), force MAE/RMSE (eV/Å, over components), stress RMSE (eV/Å^3)."""
    e_err = (parity.energy_pred - parity.energy_true) / np.maximum(parity.n_atoms, 1)
    f_err = (parity.forces_pred - parity.forces_true).ravel()
    s_err = (parity.stress_pred - parity.stress_true).ravel()
    mae = lambda x: float(np.mean(np.abs(x))) if x.size else None  # noqa: E731
    rmse = lambda x: float(np.sqrt(np.mean(x**2))) if x.size else None  # noqa: E731
    return {
        "energy_mae_per_atom": mae(e_err),
        "energy_rmse_per_atom": rmse(e_err),
        "force_mae": mae(f_err),
        "force_rmse": rmse(f_err),
        "stress_rmse": rmse(s_err),
        "n_frames_energy": int(e_err.size),
        "n_atoms_forces": int(f_err.size // 3),
        "n_frames_stress": int(s_err.size // 9),
    }


def parity_plot(parity: Parity, path: str | Path, title: str = "") -> Path:
    """Write a PNG with energy/atom and force-component parity panels (and stress when present)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    true_per_atom = parity.energy_true / np.maximum(parity.n_atoms, 1)
    pred_per_atom = parity.energy_pred / np.maximum(parity.n_atoms, 1)
    # absolute energies per atom differ in the 4th significant digit: show them around the labels' mean
    mean = float(true_per_atom.mean()) if true_per_atom.size else 0.0
    panels = [
        (
            f"energy / atom {'+' if mean < 0 else '−'} {abs(mean):.3f} eV (meV)",
            1000 * (true_per_atom - mean),
            1000 * (pred_per_atom - mean),
        ),
        ("force component (eV/Å)", parity.forces_true.ravel(), parity.forces_pred.ravel()),
    ]
    if parity.stress_true.size:
        panels.append(("stress component (eV/Å³)", parity.stress_true.ravel(), parity.stress_pred.ravel()))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4))
    for ax, (label, true, pred) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.scatter(true, pred, s=4, alpha=0.6)
        if true.size:
            low, high = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
            ax.plot([low, high], [low, high], "k--", lw=0.8)
        ax.set_xlabel(f"reference {label}")
        ax.set_ylabel(f"predicted {label}")
        if true.size:
            unit = label[label.rindex("(") + 1 : -1]
            ax.set_title(f"RMSE {np.sqrt(np.mean((pred - true) ** 2)):.3g} {unit}", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def evaluate(
    model: LAM, frames: Sequence[ase.Atoms], heads: Sequence[str], plot_dir: str | Path | None = None
) -> dict[str, dict[str, float | int | None]]:
    """Metrics of each head on ``frames``; with ``plot_dir``, also ``parity_<head>.png`` per head."""
    results = {}
    for head in heads:
        parity = predict(model, frames, head)
        results[head] = error_metrics(parity)
        if plot_dir is not None:
            parity_plot(parity, Path(plot_dir) / f"parity_{head}.png", title=f"head {head}")
    return results


def format_table(results: dict[str, dict[str, float | int | None]]) -> str:
    """A plain-text table, one row per head (energy meV/atom, force meV/Å, stress meV/Å^3)."""
    fmt = lambda v: "-" if v is None else f"{1000 * v:.2f}"  # noqa: E731
    lines = [f"{'head':<28} {'E MAE meV/atom':>15} {'F RMSE meV/Å':>13} {'S RMSE meV/Å³':>14} {'frames':>7}"]
    for head, m in results.items():
        lines.append(
            f"{head:<28} {fmt(m['energy_mae_per_atom']):>15} {fmt(m['force_rmse']):>13} "
            f"{fmt(m['stress_rmse']):>14} {m['n_frames_energy']:>7}"
        )
    return "\n".join(lines)
