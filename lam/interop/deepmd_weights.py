"""DeePMD-kit DPA-2 tensors -> lam's state dict (which lam tensor is which DeePMD-kit tensor).

DeePMD-kit's ``MLPLayer`` stores ``matrix [in, out]``; torch's ``nn.Linear`` stores ``weight [out,
in]``, hence the transposes. DeePMD-kit numbers atom types by its ``type_map``; lam indexes its type
embedding and per-element statistics by atomic number, so type ``t`` goes to row ``Z(type_map[t])``.
Multi-head projections differ in how they order (head, channel): each permutation is spelled out.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lam.errors import LamError
from lam.model.config import DPA2Config


class InconsistentDeepmdModel(LamError, ValueError):
    """A DeePMD-kit checkpoint whose tensors do not fit its own options."""


def _t(tensor: Tensor) -> Tensor:
    return tensor.T.contiguous()


def _mlp_layers(state: dict[str, Tensor], prefix: str) -> int:
    return sum(1 for key in state if key.startswith(prefix) and key.endswith(".matrix"))


def embedding_net(state: dict[str, Tensor], deepmd: str, lam: str) -> dict[str, Tensor]:
    """An embedding net (repinit or three-body): first layer, then the residual hidden layers."""
    base = f"{deepmd}.filter_layers.networks.0.layers"
    out = {
        f"{lam}.first_layer.linear.weight": _t(state[f"{base}.0.matrix"]),
        f"{lam}.first_layer.linear.bias": state[f"{base}.0.bias"],
    }
    for i in range(1, _mlp_layers(state, f"{base}.")):
        out[f"{lam}.rest.hidden.{i - 1}.linear.weight"] = _t(state[f"{base}.{i}.matrix"])
        out[f"{lam}.rest.hidden.{i - 1}.linear.bias"] = state[f"{base}.{i}.bias"]
    return out


def environment_std(stddev: Tensor, mean: Tensor, numbers: list[int], block: str) -> Tensor:
    """Lam's ``env_std [119, 2]`` from DeePMD's ``stddev [ntypes, nnei, 4]`` (radial, angular columns)."""
    if bool(mean.abs().max() > 0):
        raise InconsistentDeepmdModel(f"{block}: a non-zero environment mean (davg), which lam does not have")
    radial, angular = stddev[:, :, 0], stddev[:, :, 1:]
    if not (torch.allclose(radial, radial[:, :1]) and torch.allclose(angular, angular[:, :1, :1])):
        raise InconsistentDeepmdModel(f"{block}: environment std varies across neighbour slots or columns")
    std = torch.ones(119, 2, dtype=stddev.dtype)
    for t, z in enumerate(numbers):
        std[z, 0], std[z, 1] = radial[t, 0], angular[t, 0, 0]
    return std


def _pair_attention(state: dict[str, Tensor], b: str, p: str, c: DPA2Config) -> dict[str, Tensor]:
    heads, hidden, pair = c.pair_attention_heads, c.pair_attention_hidden, c.pair_dim
    qk = state[f"{b}.attn2g_map.mapqk.matrix"].view(pair, hidden, 2, heads)  # in, d, (q|k), h
    value = state[f"{b}.attn2_mh_apply.mapv.matrix"].view(pair, pair, heads)  # in, g, h
    merge = state[f"{b}.attn2_mh_apply.head_map.matrix"].view(pair, heads, pair)  # (g, h), out
    a = f"{p}.pair_attention"
    return {
        f"{a}.query_key.weight": qk.permute(2, 3, 1, 0).reshape(2 * heads * hidden, pair),
        f"{a}.value.weight": value.permute(2, 1, 0).reshape(heads * pair, pair),
        f"{a}.head_merge.weight": merge.permute(2, 1, 0).reshape(pair, heads * pair),
        f"{a}.head_merge.bias": state[f"{b}.attn2_mh_apply.head_map.bias"],
        f"{a}.norm.weight": state[f"{b}.attn2_lm.matrix"],
        f"{a}.norm.bias": state[f"{b}.attn2_lm.bias"],
    }


def _atom_attention(state: dict[str, Tensor], b: str, o: str, c: DPA2Config) -> dict[str, Tensor]:
    heads, hidden, atom = c.atom_attention_heads, c.atom_attention_hidden, c.atom_dim
    query = state[f"{b}.loc_attn.mapq.matrix"].view(atom, hidden, heads)  # in, d, h
    key_value = state[f"{b}.loc_attn.mapkv.matrix"].view(atom, hidden + atom, heads)  # in, (d | A), h
    a = f"{o}.atom_attention"
    return {
        f"{a}.query.weight": query.permute(2, 1, 0).reshape(heads * hidden, atom),
        f"{a}.key_value.weight": key_value.permute(2, 1, 0).reshape(heads * (hidden + atom), atom),
        f"{a}.head_merge.weight": _t(state[f"{b}.loc_attn.head_map.matrix"]),  # (h, A) order on both sides
        f"{a}.head_merge.bias": state[f"{b}.loc_attn.head_map.bias"],
    }


def _pair_update(state: dict[str, Tensor], b: str, o: str, c: DPA2Config) -> dict[str, Tensor]:
    p = f"{o}.pair_update"
    out = {
        f"{p}.pair_self.weight": _t(state[f"{b}.linear2.matrix"]),
        f"{p}.pair_self.bias": state[f"{b}.linear2.bias"],
    }
    # DeePMD's residual scales follow the order of its update terms: self, g1g1, attention
    terms = (
        ["self"] + (["product"] if c.pair_self_product else []) + (["attention"] if c.pair_attention else [])
    )
    for i, name in enumerate(terms):
        out[f"{p}.scales.{name}"] = state[f"{b}.g2_residual.{i}"]
    if c.pair_self_product:
        out[f"{p}.pair_product.weight"] = _t(state[f"{b}.proj_g1g1g2.matrix"])
    if c.pair_attention:
        out.update(_pair_attention(state, b, p, c))
    return out


def repformer_layer(state: dict[str, Tensor], b: str, o: str, c: DPA2Config, last: bool) -> dict[str, Tensor]:
    """One repformer layer; DeePMD's g1 residual order is self, conv, symmetrisation, attention."""
    out = {
        f"{o}.symmetric_linear.weight": _t(state[f"{b}.linear1.matrix"]),
        f"{o}.symmetric_linear.bias": state[f"{b}.linear1.bias"],
        f"{o}.atom_self.weight": _t(state[f"{b}.g1_self_mlp.matrix"]),
        f"{o}.atom_self.bias": state[f"{b}.g1_self_mlp.bias"],
        f"{o}.conv_proj.weight": _t(state[f"{b}.proj_g1g2.matrix"]),
    }
    terms = ["self", "conv", "symmetric"] + (["attention"] if c.atom_attention else [])
    for i, name in enumerate(terms):
        out[f"{o}.atom_scales.{name}"] = state[f"{b}.g1_residual.{i}"]
    if c.atom_attention:
        out.update(_atom_attention(state, b, o, c))
    if not last:
        out.update(_pair_update(state, b, o, c))
    return out


def descriptor_state(
    state: dict[str, Tensor], prefix: str, c: DPA2Config, numbers: list[int]
) -> dict[str, Tensor]:
    """Lam's ``descriptor.*`` tensors from DeePMD's ``<prefix>descriptor.*`` ones."""
    d = f"{prefix}descriptor"
    embedding = state[f"{d}.type_embedding.embedding.embedding_net.layers.0.matrix"]  # [ntypes, tebd]
    table = torch.zeros(119, embedding.shape[1], dtype=embedding.dtype)
    table[numbers] = embedding[: len(numbers)]
    out = {"type_embedding.table.weight": table}
    blocks = [("repinit", "repinit", "repinit.env")]
    if c.use_three_body:
        blocks.append(("repinit_three_body", "three_body", "three_body.env"))
    for deepmd, lam, env in blocks:
        out.update(embedding_net(state, f"{d}.{deepmd}", lam))
        out[f"{env}.env_std"] = environment_std(
            state[f"{d}.{deepmd}.stddev"], state[f"{d}.{deepmd}.mean"], numbers, deepmd
        )
    out["repformer_env.env_std"] = environment_std(
        state[f"{d}.repformers.stddev"], state[f"{d}.repformers.mean"], numbers, "repformers"
    )
    out["atom_init.weight"] = _t(state[f"{d}.g1_shape_tranform.matrix"])
    out["pair_init.weight"] = _t(state[f"{d}.repformers.g2_embd.matrix"])
    out["pair_init.bias"] = state[f"{d}.repformers.g2_embd.bias"]
    for layer in range(c.n_repformer_layers):
        last = layer == c.n_repformer_layers - 1
        out.update(repformer_layer(state, f"{d}.repformers.layers.{layer}", f"layers.{layer}", c, last))
    return {f"descriptor.{key}": value for key, value in out.items()}


def fitting_state(state: dict[str, Tensor], prefix: str, head: str) -> dict[str, Tensor]:
    """Lam's ``heads.<head>.mlp.*`` from DeePMD's fitting net; a case embedding joins the first bias.

    A shared fitting net reads ``[descriptor, case_embd]``; ``W [x, e] + b = W_x x + (W_e e + b)``, so
    each branch gets the shared weights with its own first-layer bias, exactly.
    """
    base = f"{prefix}fitting_net.filter_layers.networks.0.layers"
    n_layers = _mlp_layers(state, f"{base}.")
    out = {}
    for i in range(n_layers):
        matrix, bias = state[f"{base}.{i}.matrix"], state[f"{base}.{i}.bias"]
        name = f"heads.{head}.mlp.output" if i == n_layers - 1 else f"heads.{head}.mlp.hidden.{i}.linear"
        if i == 0 and f"{prefix}fitting_net.case_embd" in state:
            case = state[f"{prefix}fitting_net.case_embd"]
            matrix, case_matrix = matrix[: -case.shape[0]], matrix[-case.shape[0] :]
            bias = bias + case @ case_matrix
        out[f"{name}.weight"], out[f"{name}.bias"] = _t(matrix), bias
        if f"{base}.{i}.idt" in state:
            out[f"heads.{head}.mlp.hidden.{i}.timestep"] = state[f"{base}.{i}.idt"]
    return out


def type_biases(state: dict[str, Tensor], prefix: str) -> Tensor:
    """Per-type energy bias [ntypes]: the atomic model's ``out_bias`` plus the fitting's ``bias_atom_e``."""
    bias = state[f"{prefix}out_bias"][0, :, 0]
    return bias + state[f"{prefix}fitting_net.bias_atom_e"][:, 0]
