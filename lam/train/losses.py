"""The DeePMD-style energy/force/stress loss with label masks and learning-rate-driven prefactors.

Pure torch (no Lightning), so it is testable on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lam import keys
from lam.model.outputs import Predictions


@dataclass
class LossTerms:
    """The loss and its parts for one batch.

    Attributes:
        total: [] weighted sum that is back-propagated.
        energy: [] MSE of the energy per atom over frames with an energy label, (eV/atom)^2.
        forces: [] MSE over the 3N force components of frames with forces, (eV/Å)^2.
        stress: [] MSE over the 9 stress components of frames with stress, (eV/Å^3)^2.
        prefactors: (energy, forces, stress) weights used at this step.
    """

    total: Tensor
    energy: Tensor
    forces: Tensor
    stress: Tensor
    prefactors: tuple[float, float, float]


def masked_mse(error: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``error**2`` over the rows where ``mask`` is True; 0 (keeping the graph) when none is.

    Args:
        error: [R, ...] differences; every element of a selected row counts.
        mask: [R] bool.
    """
    selected = error[mask]
    if selected.numel() == 0:
        return (error * 0.0).sum()  # keeps autograd connected, so DDP sees the same graph on all ranks
    return selected.pow(2).mean()


def atoms_per_graph(batch: object, n_graphs: int) -> Tensor:
    """[B] number of atoms of each graph of a ``torch_geometric`` batch (or of a single graph)."""
    graph_index = getattr(batch, "batch", None)
    if graph_index is None:
        return torch.tensor([batch.num_nodes], device=batch[keys.POSITIONS].device)
    return torch.bincount(graph_index, minlength=n_graphs)


class EnergyForceStressLoss(nn.Module):
    """``L = p_e(t) MSE(E/N) + p_f(t) MSE(F) + p_s(t) MSE(σ)``, each over the frames that carry the label.

    The prefactors follow DeePMD-kit: ``p(t) = limit + (start - limit) * lr(t) / lr0``, so training
    starts force-dominated and ends energy-weighted as the learning rate decays. ``decay`` below is
    ``lr(t) / lr0`` (:meth:`lam.train.schedules.LRSchedule.decay`).

    Args:
        energy_start, energy_limit: energy-per-atom prefactor at the start and at the end of the decay.
        forces_start, forces_limit: force prefactor.
        stress_start, stress_limit: stress prefactor (0 and 0 switch the stress term off).
    """

    def __init__(
        self,
        energy_start: float = 0.02,
        energy_limit: float = 1.0,
        forces_start: float = 1000.0,
        forces_limit: float = 1.0,
        stress_start: float = 0.0,
        stress_limit: float = 0.0,
    ) -> None:
        super().__init__()
        self.starts = (float(energy_start), float(forces_start), float(stress_start))
        self.limits = (float(energy_limit), float(forces_limit), float(stress_limit))
        if min(self.starts + self.limits) < 0:
            raise ValueError(f"loss prefactors must be >= 0, got starts {self.starts}, limits {self.limits}")

    @property
    def uses_stress(self) -> bool:
        """Whether the stress term can be non-zero (so stress must be predicted)."""
        return max(self.starts[2], self.limits[2]) > 0

    def prefactors(self, decay: float) -> tuple[float, float, float]:
        """(energy, forces, stress) prefactors for ``decay = lr / lr0`` in [0, 1]."""
        return tuple(lim + (start - lim) * decay for start, lim in zip(self.starts, self.limits, strict=True))

    def forward(self, pred: Predictions, batch: object, decay: float = 1.0) -> LossTerms:
        """Loss of predictions against the labels of ``batch`` (an :class:`AtomicGraph` batch).

        Args:
            pred: model output; ``forces`` must be present, ``stress`` when :attr:`uses_stress`.
            batch: labels ``energy [B]``, ``forces [N, 3]``, ``stress [B, 3, 3]`` and ``has_*`` masks.
            decay: ``lr / lr0`` at this step, in [0, 1].
        """
        n_graphs = pred.energy.shape[0]
        n_atoms = atoms_per_graph(batch, n_graphs).to(pred.energy.dtype)  # [B]
        energy = masked_mse((pred.energy - batch[keys.ENERGY]) / n_atoms, batch[keys.HAS_ENERGY])
        atom_has_forces = (
            batch[keys.HAS_FORCES][batch.batch]
            if getattr(batch, "batch", None) is not None
            else batch[keys.HAS_FORCES].expand(pred.forces.shape[0])
        )
        forces = masked_mse(pred.forces - batch[keys.FORCES], atom_has_forces)
        stress = energy.new_zeros(())
        if self.uses_stress:
            stress = masked_mse(pred.stress - batch[keys.STRESS], batch[keys.HAS_STRESS])
        p_e, p_f, p_s = self.prefactors(decay)
        total = p_e * energy + p_f * forces + p_s * stress
        return LossTerms(total=total, energy=energy, forces=forces, stress=stress, prefactors=(p_e, p_f, p_s))
