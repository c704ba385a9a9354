"""Fitting heads: one per dataset / level of theory, over shared descriptor features."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lam.model.config import N_ELEMENTS, HeadConfig
from lam.nn.mlp import MLP


class EnergyHead(nn.Module):
    """Per-atom energy ``E_i = scale * (MLP(D_i) - MLP(D_i^iso)) + reference[Z_i]``.

    ``D_i^iso`` is the descriptor of an isolated atom of element Z_i. Subtracting its output makes an
    atom with no neighbours have exactly its element reference energy, so the references are
    physical isolated-atom energies of the head's level of theory (MACE's E0s), and least-squares
    refits of them (fine-tuning) act on one clean parameter per element.

    The per-element energy references (DeePMD's ``bias_atom_e``, MACE's E0s) absorb the absolute zero
    of each functional and code; they are fitted by least squares on the head's data
    (:mod:`lam.data.statistics`) and re-fitted on fine-tuning, not trained by gradient descent.

    Args:
        in_dim: width of the descriptor features.
        config: shared head architecture.
    """

    def __init__(self, in_dim: int, config: HeadConfig) -> None:
        super().__init__()
        self.mlp = MLP(in_dim, config.hidden_widths, config.activation, resnet=config.resnet, out_dim=1)
        # [119] eV per atom, indexed by atomic number
        self.register_buffer("energy_reference", torch.zeros(N_ELEMENTS))
        # [] eV: typical size of the learned part (e.g. the force RMS), so the MLP works at unit scale
        self.register_buffer("energy_scale", torch.ones(()))

    def forward(
        self, node_feats: Tensor, atomic_numbers: Tensor, isolated_feats: Tensor, element_index: Tensor
    ) -> Tensor:
        """Per-atom energies.

        Args:
            node_feats: [N, in_dim] descriptor features.
            atomic_numbers: [N] int64.
            isolated_feats: [n_elements, in_dim] descriptor features of an isolated atom of each element.
            element_index: [N] row of ``isolated_feats`` for each atom's element.

        Returns:
            [N] per-atom energies, eV.
        """
        # the isolated-atom term goes through the MLP once per element, not once per atom
        learned = self.mlp(node_feats).squeeze(-1) - self.mlp(isolated_feats).squeeze(-1)[element_index]
        return learned * self.energy_scale + self.energy_reference[atomic_numbers]

    def set_energy_references(self, references: dict[int, float]) -> None:
        """Overwrite the per-element references (eV) of the given atomic numbers; others are kept."""
        for z, value in references.items():
            if not 1 <= int(z) < N_ELEMENTS:
                raise ValueError(f"energy reference for atomic number {z}: outside the periodic table")
            self.energy_reference[int(z)] = float(value)

    def energy_references(self) -> dict[int, float]:
        """The non-zero per-element references, {atomic number: eV}."""
        ref = self.energy_reference.detach().cpu()
        return {int(z): float(ref[z]) for z in torch.nonzero(ref).flatten()}
