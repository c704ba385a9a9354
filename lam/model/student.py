"""The fast student descriptor: a two-body embedding with a small cutoff and no message passing.

It is DPA-2's ``repinit`` block on its own (DeePMD's ``se_atten`` without attention layers, the
``se_atten_v2``-style student of DeePMD-kit's distillation tutorial), with a smaller cutoff and
narrower embedding, plus the centre's type embedding:

    G_ij = MLP([s(r_ij), t_j, t_i])             [M]
    T_i  = (1 / n_norm) sum_j G_ij^T R_ij   [M, 4]  (n_norm: neighbor_normalizer or max_neighbors)
    D_i  = [T_i T_i[:axis]^T flattened, t_i]      [M * axis + T]

Invariant under rotations, translations and permutations, smooth at the cutoff, and per atom, so
its cost is linear in the number of atoms. Students share heads and output code with the teacher.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lam.model.config import StudentConfig
from lam.model.repinit import Repinit
from lam.nn.embedding import ElementEmbedding
from lam.nn.neighbors import dense_neighbors


class StudentDescriptor(nn.Module):
    """Two-body descriptor (see the module docstring); same interface as ``DPA2Descriptor``.

    Args:
        config: the student's hyperparameters.
    """

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.config = config
        self.type_embedding = ElementEmbedding(config.type_embedding_dim)
        self.two_body = Repinit(
            config.cutoff,
            config.smooth_start,
            config.max_neighbors,
            config.type_embedding_dim,
            config.embedding_widths,
            config.axis_dim,
            config.activation,
            config.neighbor_normalizer,
        )
        self.output_dim = self.two_body.out_dim + config.type_embedding_dim

    def forward(self, atomic_numbers: Tensor, edge_index: Tensor, edge_vectors: Tensor) -> Tensor:
        """Per-atom features.

        Args:
            atomic_numbers: [N] int64.
            edge_index: [2, E] centre i, neighbour j (edges beyond the cutoff are ignored).
            edge_vectors: [E, 3] r_ij, Å (cast to the parameters' dtype, differentiably).

        Returns:
            [N, output_dim] invariant features.
        """
        cfg = self.config
        edge_vectors = edge_vectors.to(self.type_embedding.table.weight.dtype)
        type_feats = self.type_embedding(atomic_numbers)  # t_i [N, T]
        n_atoms = atomic_numbers.shape[0]
        two_body = self.two_body.forward_edges(edge_index, edge_vectors, atomic_numbers, type_feats)
        if two_body is None:  # not frozen, not CPU, or no kernel: padded slots
            # a sum over slots: their order does not matter, so no sort unless the cap bites
            slots = dense_neighbors(
                edge_index, edge_vectors, n_atoms, cfg.cutoff, cfg.max_neighbors, nearest_first=False
            )
            two_body = self.two_body(slots, atomic_numbers, type_feats)
        return torch.cat([two_body, type_feats], dim=-1)

    @torch.no_grad()
    def fit_environment_std(self, atomic_numbers: Tensor, edge_index: Tensor, edge_vectors: Tensor) -> None:
        """Fit the environment-matrix normalisation to training structures (call once before training)."""
        cfg = self.config
        edge_vectors = edge_vectors.to(self.type_embedding.table.weight.dtype)
        slots = dense_neighbors(
            edge_index, edge_vectors, atomic_numbers.shape[0], cfg.cutoff, cfg.max_neighbors
        )
        self.two_body.env.fit_std(slots.vectors, slots.mask, atomic_numbers, cfg.max_neighbors)
