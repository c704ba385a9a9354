"""One repformer layer of DPA-2 (DeePMD-kit ``RepformerLayer``, v3 defaults), physics-named.

Channels (paper / DeePMD names in brackets), for centre i and its neighbour slots j, k:

* ``atom_feats``  [N, atom_dim]         invariant single-atom features  (f, ``g1``)
* ``pair_feats``  [N, n, pair_dim]      invariant pair features         (g, ``g2``)
* ``neighbor_dirs`` [N, n, 3]           equivariant R_ij[1:4] = s(r) r_ij / r / std  (h, ``h2``)
* ``switch``      [N, n]                sw(r_ij), zero on empty slots

Atom update terms: self (``act(W f_i)``), convolution (``sum_j sw (W g_ij) * f_j / nsel``, DeePMD
``g1_out_conv``), symmetrisation of pair features ("grrg") and of neighbour atom features ("drrd")
through ``A = h^T (sw x) / sqrt(nsel)`` and ``A[:, :axis]^T A / 3``, optional local attention.
Pair update terms: self, optional ``f_i * f_j`` product, gated self-attention over the neighbours.
Every term is added with a learnable per-channel residual scale (``res_residual``):
``u <- u + sum_k r_k * delta_k``. All terms read the features of the previous layer.

Smoothness: every sum over neighbours carries sw(r_ij), and attention logits are pulled to
``-ATTENTION_SHIFT`` and the weights to zero as sw -> 0, so nothing jumps when a neighbour crosses
the cutoff. Softmaxes behave as if each row had exactly ``nsel`` slots (empty ones at logit
``-ATTENTION_SHIFT``, as in DeePMD's fixed-width padding), so results do not depend on how wide a
batch's padding is.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lam.model.config import DPA2Config
from lam.nn.mlp import activation_module, init_linear
from lam.nn.neighbors import gather_neighbors

ATTENTION_SHIFT = 20.0  # DeePMD ``attnw_shift``: the logit of a neighbour at the cutoff


def _linear(in_dim: int, out_dim: int, bias: bool = True) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim, bias=bias)
    init_linear(layer)
    return layer


def padded_softmax(logits: Tensor, n_virtual: int) -> Tensor:
    """Softmax over the last axis as if ``n_virtual`` more entries had logit ``-ATTENTION_SHIFT``.

    Args:
        logits: [..., n].
        n_virtual: number of absent slots (``nsel - n``), >= 0.
    """
    if n_virtual <= 0:
        return torch.softmax(logits, dim=-1)
    absent = logits.new_tensor(math.log(n_virtual) - ATTENTION_SHIFT)  # log of their summed weight
    log_total = torch.logaddexp(torch.logsumexp(logits, dim=-1, keepdim=True), absent)  # [..., 1]
    return torch.exp(logits - log_total)


def symmetric_contraction(
    feats: Tensor, neighbor_dirs: Tensor, switch: Tensor, axis_dim: int, max_neighbors: int
) -> Tensor:
    """Rotation-invariant contraction of per-neighbour features with their directions.

    ``A_i = h_i^T (sw * x_i) / sqrt(nsel)`` [3, C] is equivariant; ``A_i[:, :axis]^T A_i / 3`` is not.

    Args:
        feats: [N, n, C] per-neighbour invariant features.
        neighbor_dirs: [N, n, 3].
        switch: [N, n].
        axis_dim: columns of A kept in the first factor.
        max_neighbors: nsel, the fixed normaliser.

    Returns:
        [N, axis_dim * C].
    """
    frame = neighbor_dirs.transpose(-1, -2) @ (feats * switch.unsqueeze(-1))  # [N, 3, C]
    frame = frame / math.sqrt(max_neighbors)
    return (frame[..., :axis_dim].transpose(-1, -2) @ frame / 3.0).flatten(1)


class PairAttention(nn.Module):
    """Gated multi-head self-attention among the neighbours of each atom (DeePMD ``Atten2Map``).

    For heads h: logits ``q_ij . k_ik / sqrt(d)``, times the gate ``h_ij . h_ik`` when ``gate``,
    smoothed ``(logit + shift) sw_j sw_k - shift``, softmax over k, weights times
    ``sw_j sw_k (h_ij . h_ik) / sqrt(3)``, then applied to values, heads merged, layer-normalised.
    """

    def __init__(self, pair_dim: int, hidden_dim: int, n_heads: int, gate: bool) -> None:
        super().__init__()
        self.query_key = _linear(pair_dim, 2 * n_heads * hidden_dim, bias=False)
        self.value = _linear(pair_dim, n_heads * pair_dim, bias=False)
        self.head_merge = _linear(n_heads * pair_dim, pair_dim)
        self.norm = nn.LayerNorm(pair_dim)
        self.hidden_dim, self.n_heads, self.gate = hidden_dim, n_heads, gate

    def forward(
        self, pair_feats: Tensor, neighbor_dirs: Tensor, switch: Tensor, max_neighbors: int
    ) -> Tensor:
        """[N, n, pair_dim] update of the pair features."""
        n_atoms, n_slots, pair_dim = pair_feats.shape
        heads, hidden = self.n_heads, self.hidden_dim
        qk = self.query_key(pair_feats).view(n_atoms, n_slots, 2, heads, hidden)
        query, key = qk.permute(2, 0, 3, 1, 4)  # each [N, H, n, d]
        logits = query @ key.transpose(-1, -2)  # q_ij . k_ik [N, H, n, n]
        dir_products = neighbor_dirs @ neighbor_dirs.transpose(-1, -2)  # h_ij . h_ik [N, n, n]
        pair_switch = switch.unsqueeze(-1) * switch.unsqueeze(-2)  # sw_j sw_k [N, n, n]
        # (logit / sqrt(d) * gate + shift) * sw_j sw_k - shift, as one pass over the heads:
        # the per-pair factors are formed first on the head-free [N, n, n] tensors
        logit_scale = pair_switch / math.sqrt(hidden)
        if self.gate:
            logit_scale = logit_scale * dir_products
        logit_shift = ATTENTION_SHIFT * (pair_switch - 1.0)
        logits = torch.addcmul(logit_shift.unsqueeze(1), logits, logit_scale.unsqueeze(1))
        weight_scale = pair_switch * dir_products / math.sqrt(3.0)  # [N, n, n]
        weights = padded_softmax(logits, max_neighbors - n_slots) * weight_scale.unsqueeze(1)
        values = self.value(pair_feats).view(n_atoms, n_slots, heads, pair_dim).transpose(1, 2)
        mixed = (weights @ values).transpose(1, 2).reshape(n_atoms, n_slots, heads * pair_dim)
        return self.norm(self.head_merge(mixed))


class AtomAttention(nn.Module):
    """Localised attention of each atom over its neighbours' atom features (DeePMD ``LocalAtten``)."""

    def __init__(self, atom_dim: int, hidden_dim: int, n_heads: int) -> None:
        super().__init__()
        self.query = _linear(atom_dim, n_heads * hidden_dim, bias=False)
        self.key_value = _linear(atom_dim, n_heads * (hidden_dim + atom_dim), bias=False)
        self.head_merge = _linear(n_heads * atom_dim, atom_dim)
        self.hidden_dim, self.n_heads = hidden_dim, n_heads

    def forward(
        self, atom_feats: Tensor, nbr_atom_feats: Tensor, switch: Tensor, max_neighbors: int
    ) -> Tensor:
        """[N, atom_dim] update from centre features [N, A] and neighbour features [N, n, A]."""
        n_atoms, n_slots, atom_dim = nbr_atom_feats.shape
        heads, hidden = self.n_heads, self.hidden_dim
        query = self.query(atom_feats).view(n_atoms, heads, 1, hidden)
        key_value = self.key_value(nbr_atom_feats).view(n_atoms, n_slots, heads, hidden + atom_dim)
        key, value = key_value.transpose(1, 2).split([hidden, atom_dim], dim=-1)  # [N, H, n, d|A]
        logits = (query @ key.transpose(-1, -2)).squeeze(-2) / math.sqrt(hidden)  # [N, H, n]
        head_switch = switch.unsqueeze(1)  # [N, 1, n]
        logits = (logits + ATTENTION_SHIFT) * head_switch - ATTENTION_SHIFT
        weights = padded_softmax(logits, max_neighbors - n_slots) * head_switch
        mixed = (weights.unsqueeze(-2) @ value).reshape(n_atoms, heads * atom_dim)
        return self.head_merge(mixed)


def _residual_scales(names: list[str], dim: int, std: float) -> nn.ParameterDict:
    return nn.ParameterDict({name: nn.Parameter(torch.randn(dim) * std) for name in names})


class PairUpdate(nn.Module):
    """The pair-feature half of a repformer layer: self MLP, optional ``f_i * f_j``, gated attention.

    Args:
        config: descriptor configuration.
    """

    def __init__(self, config: DPA2Config) -> None:
        super().__init__()
        atom_dim, pair_dim = config.atom_dim, config.pair_dim
        self.activation = activation_module(config.activation)
        self.pair_self = _linear(pair_dim, pair_dim)
        self.pair_product = _linear(atom_dim, pair_dim, bias=False) if config.pair_self_product else None
        self.pair_attention: PairAttention | None = None
        if config.pair_attention:
            self.pair_attention = PairAttention(
                pair_dim,
                config.pair_attention_hidden,
                config.pair_attention_heads,
                config.pair_attention_gate,
            )
        terms = ["self"] + (["product"] if self.pair_product is not None else [])
        terms += ["attention"] if self.pair_attention is not None else []
        self.scales = _residual_scales(terms, pair_dim, config.residual_init_scale)

    def forward(
        self,
        atom_feats: Tensor,
        weighted_nbr: Tensor,
        pair_feats: Tensor,
        neighbor_dirs: Tensor,
        switch: Tensor,
        max_neighbors: int,
    ) -> Tensor:
        """Updated pair features [N, n, P] from f_i [N, A], sw f_j [N, n, A], g_ij, h_ij, sw."""
        updates = {"self": self.activation(self.pair_self(pair_feats))}
        if self.pair_product is not None:
            updates["product"] = self.pair_product(atom_feats.unsqueeze(1) * weighted_nbr)
        if self.pair_attention is not None:
            updates["attention"] = self.pair_attention(pair_feats, neighbor_dirs, switch, max_neighbors)
        return _add_residuals(pair_feats, updates, self.scales)


class RepformerLayer(nn.Module):
    """One repformer layer: updates atom and pair features (see module docstring).

    Args:
        config: descriptor configuration (atom/pair widths, axis, attention switches, residual scale).
        update_pairs: whether this layer updates the pair features. The last layer does not (as in
            DeePMD): its pair features would never be read, and unused parameters upset DDP.
    """

    def __init__(self, config: DPA2Config, update_pairs: bool = True) -> None:
        super().__init__()
        atom_dim, pair_dim, axis = config.atom_dim, config.pair_dim, config.repformer_axis_dim
        if axis > min(atom_dim, pair_dim):
            raise ValueError(f"repformer_axis_dim {axis} exceeds atom_dim or pair_dim")
        self.max_neighbors, self.axis_dim = config.repformer_max_neighbors, axis
        self.activation = activation_module(config.activation)
        self.atom_self = _linear(atom_dim, atom_dim)
        self.conv_proj = _linear(pair_dim, atom_dim, bias=False)
        self.symmetric_linear = _linear(axis * (pair_dim + atom_dim), atom_dim)
        self.atom_attention: AtomAttention | None = None
        if config.atom_attention:
            self.atom_attention = AtomAttention(
                atom_dim, config.atom_attention_hidden, config.atom_attention_heads
            )
        atom_terms = ["self", "conv", "symmetric"] + (["attention"] if config.atom_attention else [])
        self.atom_scales = _residual_scales(atom_terms, atom_dim, config.residual_init_scale)
        self.pair_update = PairUpdate(config) if update_pairs else None

    def forward(
        self,
        atom_feats: Tensor,
        pair_feats: Tensor,
        neighbor_dirs: Tensor,
        neighbor_index: Tensor,
        switch: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Update ``atom_feats [N, A]`` and ``pair_feats [N, n, P]``.

        Args:
            atom_feats: [N, atom_dim].
            pair_feats: [N, n, pair_dim].
            neighbor_dirs: [N, n, 3] equivariant environment rows R_ij[1:4].
            neighbor_index: [N, n] int64 atom index of each slot.
            switch: [N, n] sw(r_ij), zero on empty slots.

        Returns:
            The updated ``(atom_feats, pair_feats)``, same shapes (pair features unchanged when the
            layer does not update them).
        """
        nsel, act = self.max_neighbors, self.activation
        nbr_atom_feats = gather_neighbors(atom_feats, neighbor_index)  # f_j [N, n, A]
        weighted_nbr = nbr_atom_feats * switch.unsqueeze(-1)  # sw f_j [N, n, A]
        symmetric = torch.cat(
            [
                symmetric_contraction(pair_feats, neighbor_dirs, switch, self.axis_dim, nsel),  # grrg
                symmetric_contraction(nbr_atom_feats, neighbor_dirs, switch, self.axis_dim, nsel),  # drrd
            ],
            dim=-1,
        )  # [N, axis * (P + A)]
        atom_updates = {
            "self": act(self.atom_self(atom_feats)),
            "conv": (self.conv_proj(pair_feats) * weighted_nbr).sum(dim=1) / nsel,
            "symmetric": act(self.symmetric_linear(symmetric)),
        }
        if self.atom_attention is not None:
            atom_updates["attention"] = self.atom_attention(atom_feats, nbr_atom_feats, switch, nsel)
        if self.pair_update is not None:
            pair_feats = self.pair_update(atom_feats, weighted_nbr, pair_feats, neighbor_dirs, switch, nsel)
        return _add_residuals(atom_feats, atom_updates, self.atom_scales), pair_feats


def _add_residuals(feats: Tensor, updates: dict[str, Tensor], scales: nn.ParameterDict) -> Tensor:
    for name, update in updates.items():
        feats = feats + scales[name] * update
    return feats
