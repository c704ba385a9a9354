"""Energy-reference refit before fine-tuning (DeePMD-kit's "change-by-statistic").

Each functional and code puts the zero of energy somewhere else, so a pretrained head evaluated on
a user's DFT data is usually off by a per-element constant. Fitting that constant by least squares
on the model's energy error (``E_dft - E_model ≈ Σ_Z n_Z δ_Z``) and adding ``δ_Z`` to the head's
references removes most of the step-0 error without a single gradient step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ase
import numpy as np
import torch
from torch_geometric.loader import DataLoader

from lam.data.datasets import GraphDataset
from lam.data.labels import read_label
from lam.data.statistics import ReferenceFit, fit_energy_references, fit_reference_correction, force_rms
from lam.model.config import HeadSpec
from lam.model.lam import LAM

MIN_FORCE_SCALE = 0.01
"""eV/Å: a force RMS below this is numerical noise, not a scale for a new head's energies."""


@dataclass(frozen=True)
class RefitResult:
    """What the refit changed.

    Attributes:
        head: the head whose references were changed.
        shifts: Z -> eV added to the reference of element Z.
        fit: the least-squares fit (rank, residual) behind the shifts.
        n_frames: frames with an energy label used by the fit.
    """

    head: str
    shifts: dict[int, float]
    fit: ReferenceFit
    n_frames: int


def model_energies(model: LAM, frames: Sequence[ase.Atoms], head: str, batch_size: int = 16) -> np.ndarray:
    """Model total energies of ``frames`` with ``head``, [n_frames] eV (no forces: one cheap pass)."""
    dtype = next(model.parameters()).dtype
    loader = DataLoader(GraphDataset(frames, model.cutoff, head=head, dtype=dtype), batch_size=batch_size)
    was_training = model.training
    model.eval()
    energies = []
    with torch.no_grad():
        for batch in loader:
            energies.append(model(batch, head=head, compute_forces=False).energy.double().cpu().numpy())
    model.train(was_training)
    return np.concatenate(energies) if energies else np.zeros(0)


def _labelled(frames: Sequence[ase.Atoms]) -> list[ase.Atoms]:
    """Frames that carry an energy label (the others cannot inform an energy fit)."""
    return [a for a in frames if read_label(a, "energy") is not None]


def refit_energy_references(
    model: LAM, frames: Sequence[ase.Atoms], head: str, ridge: float = 0.0, batch_size: int = 16
) -> RefitResult:
    """Shift ``head``'s per-element references so the model's mean energy error on ``frames`` vanishes.

    Args:
        model: modified in place (only ``model.heads[head].energy_reference``).
        frames: labelled training frames (never validation or test frames).
        head: an existing head name.
        ridge: optional L2 penalty of the least-squares fit.
        batch_size: frames per forward pass.

    Raises:
        KeyError: unknown head (listing the heads).
        ValueError: no frame carries an energy label.
    """
    head = model.resolve_head(head)
    labelled = _labelled(frames)
    if not labelled:
        raise ValueError("energy-reference refit: none of the training frames has an energy label")
    targets = np.array([float(read_label(a, "energy")) for a in labelled])
    residual = targets - model_energies(model, labelled, head, batch_size)
    fit = fit_reference_correction(residual, [a.numbers for a in labelled], ridge=ridge)
    module = model.heads[head]
    current = module.energy_reference.detach().cpu()
    module.set_energy_references({z: float(current[z]) + shift for z, shift in fit.references.items()})
    return RefitResult(head=head, shifts=fit.references, fit=fit, n_frames=len(labelled))


def add_head_from_statistics(model: LAM, spec: HeadSpec, frames: Sequence[ase.Atoms]) -> dict[int, float]:
    """Add a fresh head whose references and scale come from the data alone.

    References: least squares of the frame energies on composition; energy scale: the force RMS
    (eV/Å), the typical size of what the head's MLP has to learn. Frames whose forces are all below
    :data:`MIN_FORCE_SCALE` (symmetric cells of an equation of state) carry no scale information:
    the scale then stays 1 (MACE's "no scaling" fallback); a scale of ~1e-4 would leave the fresh head
    unable to move its energies. Returns the references (Z -> eV).
    """
    labelled = _labelled(frames)
    if not labelled:
        raise ValueError(f"new head {spec.name!r}: none of the training frames has an energy label")
    model.add_head(spec)
    references = fit_energy_references(labelled)
    model.heads[spec.name].set_energy_references(references)
    scale = force_rms(labelled)
    if scale is not None and scale >= MIN_FORCE_SCALE:
        model.heads[spec.name].energy_scale.fill_(scale)
    return references


def pretrained_elements(model: LAM) -> set[int]:
    """Atomic numbers the model was pretrained on: those with a fitted reference in any head."""
    return {z for head in model.heads.values() for z in head.energy_references()}


def rank_heads(
    model: LAM, frames: Sequence[ase.Atoms], heads: Sequence[str] | None = None
) -> list[tuple[str, dict[str, float | int | None]]]:
    """Zero-shot errors of each head on ``frames`` after its own reference refit, best first.

    Heads are ranked by force RMSE when the frames carry forces (the refit cannot change forces, so
    this measures the shape of the potential-energy surface), else by energy MAE per atom. Forces all
    below :data:`MIN_FORCE_SCALE` (symmetric cells) say nothing about the surface's shape and would
    favour the head that predicts the weakest forces: such frames are ranked by energy too. The
    model's references are restored afterwards.
    """
    from lam.train.evaluate import error_metrics, predict

    rows = []
    for head in heads or list(model.heads):
        saved = model.heads[head].energy_reference.clone()
        refit_energy_references(model, frames, head)
        rows.append((head, error_metrics(predict(model, frames, head))))
        model.heads[head].energy_reference.copy_(saved)
    has_forces = bool(rows) and rows[0][1]["force_rmse"] is not None
    informative = has_forces and (force_rms(frames) or 0.0) >= MIN_FORCE_SCALE
    key = "force_rmse" if informative else "energy_mae_per_atom"
    return sorted(rows, key=lambda row: row[1][key])


def fit_environment(model: LAM, frames: Sequence[ase.Atoms], n_frames: int = 32) -> None:
    """Fit a fresh model's environment-matrix normalisation on (up to ``n_frames`` of) ``frames``.

    DeePMD's ``davg/dstd``: without it a fresh descriptor barely varies with geometry, its forces
    start near zero and training hardly moves them (a fresh student then ends where predicting zero
    forces would). Pretraining does it in ``LAMTask``; a from-scratch baseline and a distillation
    student need it too.
    """
    from torch_geometric.data import Batch

    dtype = next(model.parameters()).dtype
    graphs = GraphDataset(list(frames)[:n_frames], model.cutoff, dtype=dtype)
    model.fit_environment_statistics(Batch.from_data_list([graphs[i] for i in range(len(graphs))]))
