"""Repinit: DPA-2's two-body embedding block (DeePMD's ``se_atten`` with no attention layer).

Paper / DeePMD symbols: for centre i with neighbours j inside ``repinit_cutoff``,

    G_ij = embedding_net([s_ij, t_j, t_i])          [M]     (s_ij = R_ij[0], t = type embedding)
    T_i  = (1 / nsel) sum_j G_ij^T R_ij            [M, 4]   (R_ij the environment-matrix row)
    D_i  = T_i T_i[:axis]^T, flattened             [M * axis]

``D_i`` is invariant under rotations (T_i rotates in its last three columns only), translations and
permutations of neighbours, and smooth at the cutoff because R_ij -> 0 there.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lam.model.two_body_inference import FrozenTwoBody, FrozenTwoBodyWeights
from lam.model.two_body_kernel import load_kernel, two_body
from lam.nn.mlp import MLP, SplitInputLinear, activation_module
from lam.nn.neighbors import NeighborSlots, gather_neighbors
from lam.nn.radial import EnvironmentMatrix


class Repinit(nn.Module):
    """Two-body embedding descriptor ``D_i`` (see module docstring).

    Args:
        cutoff: Å.
        smooth_start: Å.
        max_neighbors: neighbour slots per atom (DeePMD ``nsel``), also the normaliser of ``T_i``
            unless ``normalizer`` is given.
        type_dim: width of the element embedding.
        widths: embedding-net widths (DeePMD ``neuron``), M = ``widths[-1]``.
        axis_dim: number of columns of ``T_i`` kept for the second factor (DeePMD ``axis_neuron``).
        activation: activation name.
        normalizer: divisor of the neighbour sum ``T_i`` (None: ``max_neighbors``).
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
        normalizer: float | None = None,
    ) -> None:
        super().__init__()
        if axis_dim > widths[-1]:
            raise ValueError(f"repinit axis_dim {axis_dim} exceeds the embedding width {widths[-1]}")
        self.env = EnvironmentMatrix(cutoff, smooth_start)
        self.max_neighbors = max_neighbors
        self.normalizer = float(normalizer if normalizer is not None else max_neighbors)
        self.axis_dim = axis_dim
        # input [s_ij, type_j, type_i], DeePMD's concat mode; types are projected once per atom
        self.first_layer = SplitInputLinear((1, type_dim, type_dim), widths[0])
        self.activation = activation_module(activation)
        # DeePMD's embedding nets are residual where widths repeat or double, without timestep
        self.rest = MLP(widths[0], widths[1:], activation, resnet=True, timestep=False)
        self.out_dim = widths[-1] * axis_dim
        # the hand-written inference derivatives know tanh only
        self.tanh_layers = activation == "tanh" and self.rest.output is None
        # set by LAM.for_inference(): the frozen fast paths run only when asked for, never by inference
        # from the training mode, requires_grad flags or the device
        self.inference = False

    def forward(self, slots: NeighborSlots, atomic_numbers: Tensor, type_feats: Tensor) -> Tensor:
        """Two-body descriptor of every atom.

        Args:
            slots: neighbours within the repinit cutoff.
            atomic_numbers: [N] int64.
            type_feats: [N, type_dim] element embedding of every atom.

        Returns:
            [N, M * axis_dim] invariant features.
        """
        # the parts of the first layer that do not depend on geometry: element types and bias
        pair_bias = (
            gather_neighbors(self.first_layer.project(1, type_feats), slots.index)  # neighbour type
            + self.first_layer.project(2, type_feats).unsqueeze(1)  # centre type
            + self.first_layer.bias
        )  # [N, n, w0]
        if self.frozen_inference(type_feats):
            return self.forward_frozen(slots, atomic_numbers, pair_bias)
        env, _ = self.env(slots.vectors, slots.mask, atomic_numbers)  # R_ij [N, n, 4]
        hidden = self.first_layer.project(0, env[..., :1]) + pair_bias  # [N, n, w0]
        embedding = self.rest(self.activation(hidden))  # G_ij [N, n, M]
        moments = env.transpose(-1, -2) @ embedding / self.normalizer  # T_i^T [N, 4, M]
        # D_i = T_i T_i[:axis]^T: contracting over the 4 environment columns removes the rotation
        invariant = moments.transpose(-1, -2) @ moments[..., : self.axis_dim]  # [N, M, axis]
        return invariant.flatten(1)

    def frozen_inference(self, type_feats: Tensor) -> bool:
        """Whether :mod:`lam.model.two_body_inference` applies: inference mode (and tanh layers).

        Raises:
            RuntimeError: inference mode on a module that trains (its hand-written derivatives give
                no weight gradients, so training would silently not learn).
        """
        if not self.inference:
            return False
        if self.training or type_feats.requires_grad or any(p.requires_grad for p in self.parameters()):
            raise RuntimeError(
                "the model is in inference mode (LAM.for_inference()) but is being trained; "
                "call model.for_inference(False) first"
            )
        return self.tanh_layers

    def forward_frozen(self, slots: NeighborSlots, atomic_numbers: Tensor, pair_bias: Tensor) -> Tensor:
        """:meth:`forward` with hand-written slot derivatives (see :mod:`lam.model.two_body_inference`)."""
        return FrozenTwoBody.apply(slots.vectors, slots.mask, pair_bias, self.frozen_weights(atomic_numbers))

    def forward_edges(
        self, edge_index: Tensor, edge_vectors: Tensor, atomic_numbers: Tensor, type_feats: Tensor
    ) -> Tensor | None:
        """:meth:`forward` straight from the edge list through the C++ kernel, or None.

        Applies to a frozen block on CPU when the kernel builds (:mod:`lam.model.two_body_kernel`),
        the edges are grouped by centre and no centre has more than ``max_neighbors`` of them (the
        cap would drop the farthest: the slot path handles that).
        The result equals :meth:`forward` on the slots of these edges.
        """
        if edge_vectors.device.type != "cpu" or not self.frozen_inference(type_feats):
            return None
        kernel = load_kernel()
        if kernel is None:
            return None
        centres = edge_index[0]
        counts = torch.bincount(centres, minlength=atomic_numbers.shape[0])
        # edges beyond the cutoff need no filter (their switch is 0 in the kernel), but they count
        # towards the cap here, which can only send a few more systems down the slot path
        if centres.numel() and (
            int(counts.max()) > self.max_neighbors or not bool((centres[1:] >= centres[:-1]).all())
        ):
            return None
        offsets = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        return two_body(
            kernel,
            edge_vectors,
            offsets,
            edge_index[1],
            self.first_layer.project(2, type_feats) + self.first_layer.bias,
            self.first_layer.project(1, type_feats),
            self.frozen_weights(atomic_numbers),
        )

    def frozen_weights(self, atomic_numbers: Tensor) -> FrozenTwoBodyWeights:
        """The constants both inference paths compute with, for these centres."""
        std = self.env.env_std[atomic_numbers]  # [N, 2]
        layers = tuple(
            (layer.linear.weight, layer.linear.bias, layer.timestep, layer.residual)
            for layer in self.rest.hidden
        )
        return FrozenTwoBodyWeights(
            env_scale=torch.cat([std[:, :1], std[:, 1:].expand(-1, 3)], dim=-1),  # [N, 4]
            radial_weight=self.first_layer.linear.weight[:, 0],
            layers=layers,
            smooth_start=self.env.smooth_start,
            cutoff=self.env.cutoff,
            n_slots_norm=self.normalizer,
            axis_dim=self.axis_dim,
        )
