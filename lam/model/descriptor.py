"""DPA-2 descriptor: element embedding -> repinit (+ three-body) -> repformer layers -> atom features.

``D_i = [Repformer^L(act(W [Repinit_i, ThreeBody_i])), t_i]`` (paper: ``Repformer(Linear(Repinit))``,
with the centre's type embedding t_i concatenated, DeePMD ``concat_output_tebd``). The output is
invariant under rotations, translations and permutations, smooth when neighbours cross any of the
three cutoffs, and per centre atom, so graphs in a batch never mix.

Parity: with the same weights this reproduces DeePMD-kit 3.2's ``DescrptDPA2`` (concat type
embedding, ``smooth``, ``res_residual``, ``use_sqrt_nnei``, ``g1_out_conv``, ``g1_out_mlp``, no ``h2``
update, zero environment mean) to 2e-15 on a 192-atom water frame, with and without gated pair
attention; only the parameter layout differs (one element table over the periodic table, heads
stored head-major).

Neighbours: edges must be given at least up to ``repinit_cutoff``; the descriptor keeps, per atom,
the nearest ``*_max_neighbors`` within each block's cutoff (DeePMD's ``sel``; see
:mod:`lam.nn.neighbors`). Normalisations use the fixed ``*_max_neighbors``, never the actual count.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lam.model.config import DPA2Config
from lam.model.repformer import RepformerLayer
from lam.model.repinit import Repinit
from lam.model.three_body import ThreeBodyEmbedding
from lam.nn.embedding import ElementEmbedding
from lam.nn.mlp import activation_module, init_linear
from lam.nn.neighbors import dense_neighbors, restrict_neighbors
from lam.nn.radial import EnvironmentMatrix


class DPA2Descriptor(nn.Module):
    """Per-atom invariant features of DPA-2.

    Args:
        config: hyperparameters (:class:`~lam.model.config.DPA2Config`).

    Attributes:
        output_dim: feature width per atom, ``atom_dim + type_embedding_dim``.
    """

    def __init__(self, config: DPA2Config) -> None:
        super().__init__()
        c = config
        if not c.repformer_cutoff <= c.repinit_cutoff or not c.three_body_cutoff <= c.repinit_cutoff:
            raise ValueError("repformer_cutoff and three_body_cutoff must not exceed repinit_cutoff")
        if max(c.repformer_max_neighbors, c.three_body_max_neighbors) > c.repinit_max_neighbors:
            # the smaller blocks take their neighbours from the repinit slots
            raise ValueError("repformer/three_body_max_neighbors must not exceed repinit_max_neighbors")
        self.config = config
        self.activation = activation_module(c.activation)
        self.type_embedding = ElementEmbedding(c.type_embedding_dim)
        self.repinit = Repinit(
            c.repinit_cutoff,
            c.repinit_smooth_start,
            c.repinit_max_neighbors,
            c.type_embedding_dim,
            c.repinit_embedding_widths,
            c.repinit_axis_dim,
            c.activation,
        )
        self.three_body: ThreeBodyEmbedding | None = None
        repinit_dim = self.repinit.out_dim
        if c.use_three_body:
            self.three_body = ThreeBodyEmbedding(
                c.three_body_cutoff,
                c.three_body_smooth_start,
                c.three_body_max_neighbors,
                c.type_embedding_dim,
                c.three_body_embedding_widths,
                c.activation,
            )
            repinit_dim += self.three_body.out_dim
        self.atom_init = nn.Linear(repinit_dim, c.atom_dim, bias=False)  # DeePMD g1_shape_tranform
        self.pair_init = nn.Linear(1, c.pair_dim)  # DeePMD g2_embd, on s(r)
        init_linear(self.atom_init)
        init_linear(self.pair_init)
        self.repformer_env = EnvironmentMatrix(c.repformer_cutoff, c.repformer_smooth_start)
        n_layers = c.n_repformer_layers
        self.layers = nn.ModuleList(RepformerLayer(c, update_pairs=i < n_layers - 1) for i in range(n_layers))
        self.output_dim = c.atom_dim + c.type_embedding_dim

    @torch.no_grad()
    def fit_environment_std(self, atomic_numbers: Tensor, edge_index: Tensor, edge_vectors: Tensor) -> None:
        """Fit the environment-matrix normalisation of all three blocks to training structures.

        Call once before training, with many frames batched together (same arguments as
        :meth:`forward`); elements absent from them keep their current (default 1) scale.
        """
        c = self.config
        edge_vectors = edge_vectors.to(self.pair_init.weight.dtype)
        n_atoms = atomic_numbers.shape[0]
        slots = dense_neighbors(edge_index, edge_vectors, n_atoms, c.repinit_cutoff, c.repinit_max_neighbors)
        blocks = [(self.repinit.env, c.repinit_cutoff, c.repinit_max_neighbors)]
        blocks.append((self.repformer_env, c.repformer_cutoff, c.repformer_max_neighbors))
        if self.three_body is not None:
            blocks.append((self.three_body.env, c.three_body_cutoff, c.three_body_max_neighbors))
        for env, cutoff, max_neighbors in blocks:
            block_slots = restrict_neighbors(slots, cutoff, max_neighbors)
            env.fit_std(block_slots.vectors, block_slots.mask, atomic_numbers, max_neighbors)

    def forward(self, atomic_numbers: Tensor, edge_index: Tensor, edge_vectors: Tensor) -> Tensor:
        """Descriptor of every atom.

        Args:
            atomic_numbers: [N] int64.
            edge_index: [2, E] int64, row 0 the centre i, row 1 the neighbour j.
            edge_vectors: [E, 3] r_ij = x_j - x_i (+ periodic shift) in Å; cast to the parameters'
                dtype, differentiably (forces and stress are derivatives through it).

        Returns:
            [N, output_dim] invariant features, in the parameters' dtype.
        """
        c = self.config
        n_atoms = atomic_numbers.shape[0]
        edge_vectors = edge_vectors.to(self.pair_init.weight.dtype)
        type_feats = self.type_embedding(atomic_numbers)  # t_i [N, T]
        slots = dense_neighbors(edge_index, edge_vectors, n_atoms, c.repinit_cutoff, c.repinit_max_neighbors)
        init_feats = self.repinit(slots, atomic_numbers, type_feats)  # [N, M * axis]
        if self.three_body is not None:
            three_body_slots = restrict_neighbors(slots, c.three_body_cutoff, c.three_body_max_neighbors)
            three_body_feats = self.three_body(three_body_slots, atomic_numbers, type_feats)
            init_feats = torch.cat([init_feats, three_body_feats], dim=-1)
        atom_feats = self.activation(self.atom_init(init_feats))  # f_i [N, A]

        near = restrict_neighbors(slots, c.repformer_cutoff, c.repformer_max_neighbors)
        env, switch = self.repformer_env(near.vectors, near.mask, atomic_numbers)  # [N, n, 4], [N, n]
        pair_feats = self.activation(self.pair_init(env[..., :1]))  # g_ij [N, n, P]
        neighbor_dirs = env[..., 1:]  # h_ij [N, n, 3]
        for layer in self.layers:  # the last layer leaves pair_feats as they are
            atom_feats, pair_feats = layer(atom_feats, pair_feats, neighbor_dirs, near.index, switch)
        return torch.cat([atom_feats, type_feats], dim=-1)
