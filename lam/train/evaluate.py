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
import torch
from torch_geometric.loader import DataLoader

from lam import keys
from lam.data.datasets import GraphDataset
from lam.data.labels import read_label
from lam.model.lam import LAM


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


def _as_numpy(chunks: list[torch.Tensor], shape: tuple[int, ...]) -> np.ndarray:
    return torch.cat(chunks).double().cpu().numpy() if chunks else np.zeros((0, *shape))


def predict(model: LAM, frames: Sequence[ase.Atoms], head: str, batch_size: int = 8) -> Parity:
    """Run ``model`` with ``head`` on ``frames`` and pair predictions with the present labels."""
    head = model.resolve_head(head)
    dtype = next(model.parameters()).dtype
    dataset = GraphDataset(frames, model.cutoff, head=head, dtype=dtype)
    want_stress = any(read_label(a, "stress") is not None for a in frames)
    out: dict[str, list[torch.Tensor]] = {k: [] for k in ("et", "ep", "n", "ft", "fp", "st", "sp")}
    was_training = model.training
    model.eval()
    for batch in DataLoader(dataset, batch_size=batch_size):
        pred = model(batch, head=head, compute_forces=True, compute_stress=want_stress)
        counts = torch.bincount(batch.batch, minlength=batch.num_graphs)
        has_e, has_f = batch[keys.HAS_ENERGY], batch[keys.HAS_FORCES][batch.batch]
        out["et"].append(batch[keys.ENERGY][has_e])
        out["ep"].append(pred.energy.detach()[has_e])
        out["n"].append(counts[has_e])
        out["ft"].append(batch[keys.FORCES][has_f])
        out["fp"].append(pred.forces.detach()[has_f])
        if want_stress:
            has_s = batch[keys.HAS_STRESS]
            out["st"].append(batch[keys.STRESS][has_s])
            out["sp"].append(pred.stress.detach()[has_s])
    model.train(was_training)
    return Parity(
        energy_true=_as_numpy(out["et"], ()),
        energy_pred=_as_numpy(out["ep"], ()),
        n_atoms=_as_numpy(out["n"], ()),
        forces_true=_as_numpy(out["ft"], (3,)),
        forces_pred=_as_numpy(out["fp"], (3,)),
        stress_true=_as_numpy(out["st"], (3, 3)),
        stress_pred=_as_numpy(out["sp"], (3, 3)),
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
