"""The fast student descriptor: DeepPot-SE (``se_e2_a``-style) two-body embedding, no message passing.

For each centre i and neighbour j within a small cutoff, with the environment row
R_ij = s(r_ij) [1, x/r, y/r, z/r] and s = sw(r)/r:

    G_ij = MLP([s(r_ij), e(Z_i), e(Z_j)])            [M]  (embedding net, type embedding concatenated)
    T_i  = (1 / max_neighbors) sum_j G_ij^T R_ij      [M, 4]
    D_i  = T_i T_i[:axis]^T, flattened                [M * axis]

D_i is invariant to rotations (T T^T contracts the Cartesian axis) and permutations (a sum over j), and
smooth at the cutoff (R and s vanish there). It works directly on the edge list, so its cost is
linear in the number of edges, with no padding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lam.model.config import StudentConfig
from lam.nn.embedding import ElementEmbedding
from lam.nn.mlp import MLP
from lam.nn.radial import smooth_switch


class StudentDescriptor(nn.Module):
    """Two-body DeepPot-SE descriptor over an edge list (see the module docstring).

    Args:
        config: the student's hyperparameters.
    """

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.config = config
        self.element_embedding = ElementEmbedding(config.type_embedding_dim, config.activation)
        self.embedding_net = MLP(
            1 + 2 * config.type_embedding_dim, config.embedding_widths, config.activation, resnet=True,
            timestep=False,
        )
        self.embedding_dim = config.embedding_widths[-1]
        self.axis_dim = config.axis_dim
        self.output_dim = self.embedding_dim * self.axis_dim + config.type_embedding_dim

    def forward(self, atomic_numbers: Tensor, edge_index: Tensor, edge_vectors: Tensor) -> Tensor:
        """Per-atom features.

        Args:
            atomic_numbers: [N] int64.
            edge_index: [2, E] centre i, neighbour j (edges beyond the cutoff are ignored).
            edge_vectors: [E, 3] r_ij, Å.

        Returns:
            [N, output_dim] invariant features.
        """
        cfg = self.config
        distances = edge_vectors.norm(dim=-1)  # [E]
        keep = distances < cfg.cutoff
        centre, neighbour = edge_index[0, keep], edge_index[1, keep]
        vectors, distances = edge_vectors[keep], distances[keep]  # [E', 3], [E']
        radial = smooth_switch(distances, cfg.smooth_start, cfg.cutoff) / distances  # s(r) [E']
        env = torch.cat([radial[:, None], (radial / distances)[:, None] * vectors], dim=-1)  # [E', 4]
        types = self.element_embedding(atomic_numbers)  # [N, T]
        embedding = self.embedding_net(
            torch.cat([radial[:, None], types[centre], types[neighbour]], dim=-1)
        )  # [E', M]
        outer = embedding[:, :, None] * env[:, None, :]  # [E', M, 4]
        n_atoms = atomic_numbers.shape[0]
        moments = outer.new_zeros(n_atoms, self.embedding_dim, 4).index_add_(0, centre, outer)
        moments = moments / cfg.max_neighbors  # T_i [N, M, 4]
        invariants = torch.bmm(moments, moments[:, : self.axis_dim].transpose(1, 2))  # [N, M, axis]
        return torch.cat([invariants.flatten(1), types], dim=-1)
