"""The model's output contract."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class Predictions:
    """What :meth:`lam.model.lam.LAM.forward` returns, for a batch of B graphs with N atoms in total.

    Attributes:
        energy: [B] total energy per graph, eV.
        node_energy: [N] per-atom energy contributions (including the element reference), eV.
        forces: [N, 3] forces -dE/dx, eV/Å, or None when not requested.
        virial: [B, 3, 3] virial -dE/dε (ε the symmetric strain), eV, or None when not requested.
        stress: [B, 3, 3] stress (1/V) dE/dε, eV/Å^3 with ASE's sign (positive = tensile); zeros for
            graphs without a periodic cell; None when not requested.
    """

    energy: Tensor
    node_energy: Tensor
    forces: Tensor | None = None
    virial: Tensor | None = None
    stress: Tensor | None = None
