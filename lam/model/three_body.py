"""Three-body (angular) embedding block of DPA-2's repinit: DeePMD's ``se_t_tebd``.

For every pair of neighbours (j, k) of centre i inside ``three_body_cutoff``, the angular input
``a_jk = R_ij[1:4] . R_ik[1:4]`` (= s(r_ij) s(r_ik) cos(theta_jik) / std^2, which goes to zero
smoothly as j or k leaves the cutoff) and the type embeddings of j and k feed an embedding net
``G_jk``; the block returns ``(1 / nsel^2) sum_jk a_jk G_jk``, an invariant per atom.
"""

from __future__ import annotations

from torch import Tensor, nn

from lam.nn.mlp import MLP, SplitInputLinear, activation_module
from lam.nn.neighbors import NeighborSlots
from lam.nn.radial import EnvironmentMatrix


class ThreeBodyEmbedding(nn.Module):
    """Angle-and-type embedding summed over neighbour pairs.

    Args:
        cutoff: Å.
        smooth_start: Å.
        max_neighbors: neighbour slots per atom (DeePMD ``three_body_sel``), also the normaliser.
        type_dim: width of the element embedding.
        widths: embedding-net widths (DeePMD ``three_body_neuron``); the output width is ``widths[-1]``.
        activation: activation name.
    """

    def __init__(
        self,
        cutoff: float,
        smooth_start: float,
        max_neighbors: int,
        type_dim: int,
        widths: tuple[int, ...],
        activation: str,
    ) -> None:
        super().__init__()
        self.env = EnvironmentMatrix(cutoff, smooth_start)
        self.max_neighbors = max_neighbors
        # input [a_jk, type_j, type_k], as DeePMD's concat mode
        self.first_layer = SplitInputLinear((1, type_dim, type_dim), widths[0])
        self.activation = activation_module(activation)
        self.rest = MLP(widths[0], widths[1:], activation, resnet=True, timestep=False)
        self.out_dim = widths[-1]

    def forward(self, slots: NeighborSlots, atomic_numbers: Tensor, type_feats: Tensor) -> Tensor:
        """Per-atom three-body features.

        Args:
            slots: neighbours within the three-body cutoff.
            atomic_numbers: [N] int64.
            type_feats: [N, type_dim] element embedding of every atom.

        Returns:
            [N, out_dim] invariant features.
        """
        env, _ = self.env(slots.vectors, slots.mask, atomic_numbers)  # [N, n, 4]
        directions = env[..., 1:]  # [N, n, 3]
        angular = directions @ directions.transpose(-1, -2)  # a_jk [N, n, n]
        # Only pairs of real neighbours are embedded (about half of the padded n x n square in
        # liquids); the others have a_jk = 0 and would add nothing to the sum.
        pairs = slots.mask.unsqueeze(2) & slots.mask.unsqueeze(1)  # [N, n, n]
        centre, slot_j, slot_k = pairs.nonzero(as_tuple=True)  # [P] each
        pair_angular = angular[centre, slot_j, slot_k].unsqueeze(-1)  # [P, 1]
        hidden = (
            self.first_layer.project(0, pair_angular)  # [P, w0]
            + self.first_layer.project(1, type_feats)[slots.index[centre, slot_j]]  # type of j
            + self.first_layer.project(2, type_feats)[slots.index[centre, slot_k]]  # type of k
            + self.first_layer.bias
        )
        pair_embedding = self.rest(self.activation(hidden))  # G_jk [P, out_dim]
        summed = type_feats.new_zeros(type_feats.shape[0], self.out_dim)
        summed = summed.index_add(0, centre, pair_angular * pair_embedding)  # [N, out_dim]
        return summed / float(self.max_neighbors) ** 2
