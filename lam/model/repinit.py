"""Repinit: DPA-2's two-body embedding block (DeePMD's ``se_atten`` with no attention layer).

Paper / DeePMD symbols: for centre i with neighbours j inside ``repinit_cutoff``,

    G_ij = embedding_net([s_ij, t_j, t_i])          [M]     (s_ij = R_ij[0], t = type embedding)
    T_i  = (1 / nsel) sum_j G_ij^T R_ij            [M, 4]   (R_ij the environment-matrix row)
    D_i  = T_i T_i[:axis]^T, flattened             [M * axis]

``D_i`` is invariant under rotations (T_i rotates in its last three columns only), translations and
permutations of neighbours, and smooth at the cutoff because R_ij -> 0 there.
"""

from __future__ import annotations

from torch import Tensor, nn

from lam.nn.mlp import MLP, SplitInputLinear, activation_module
from lam.nn.neighbors import NeighborSlots, gather_neighbors
from lam.nn.radial import EnvironmentMatrix


class Repinit(nn.Module):
    """Two-body embedding descriptor ``D_i`` (see module docstring).

    Args:
        cutoff: Å.
        smooth_start: Å.
        max_neighbors: neighbour slots per atom (DeePMD ``nsel``), also the normaliser of ``T_i``.
        type_dim: width of the element embedding.
        widths: embedding-net widths (DeePMD ``neuron``), M = ``widths[-1]``.
        axis_dim: number of columns of ``T_i`` kept for the second factor (DeePMD ``axis_neuron``).
        activation: activation name.
    """

    def __init__(
        self,
        cutoff: float,
        smooth_start: float,
        max_neighbors: int,
        type_dim: int,
        widths: tuple[int, ...],
        axis_dim: int,
        activation: str,
    ) -> None:
        super().__init__()
        if axis_dim > widths[-1]:
            raise ValueError(f"repinit axis_dim {axis_dim} exceeds the embedding width {widths[-1]}")
        self.env = EnvironmentMatrix(cutoff, smooth_start)
        self.max_neighbors = max_neighbors
        self.axis_dim = axis_dim
        # input [s_ij, type_j, type_i], DeePMD's concat mode; types are projected once per atom
        self.first_layer = SplitInputLinear((1, type_dim, type_dim), widths[0])
        self.activation = activation_module(activation)
        # DeePMD's embedding nets are residual where widths repeat or double, without timestep
        self.rest = MLP(widths[0], widths[1:], activation, resnet=True, timestep=False)
        self.out_dim = widths[-1] * axis_dim

    def forward(self, slots: NeighborSlots, atomic_numbers: Tensor, type_feats: Tensor) -> Tensor:
        """Two-body descriptor of every atom.

        Args:
            slots: neighbours within the repinit cutoff.
            atomic_numbers: [N] int64.
            type_feats: [N, type_dim] element embedding of every atom.

        Returns:
            [N, M * axis_dim] invariant features.
        """
        env, _ = self.env(slots.vectors, slots.mask, atomic_numbers)  # R_ij [N, n, 4]
        hidden = (
            self.first_layer.project(0, env[..., :1])  # [N, n, w0]
            + gather_neighbors(self.first_layer.project(1, type_feats), slots.index)  # neighbour type
            + self.first_layer.project(2, type_feats).unsqueeze(1)  # centre type
            + self.first_layer.bias
        )
        embedding = self.rest(self.activation(hidden))  # G_ij [N, n, M]
        moments = env.transpose(-1, -2) @ embedding / float(self.max_neighbors)  # T_i^T [N, 4, M]
        # D_i = T_i T_i[:axis]^T: contracting over the 4 environment columns removes the rotation
        invariant = moments.transpose(-1, -2) @ moments[..., : self.axis_dim]  # [N, M, axis]
        return invariant.flatten(1)
