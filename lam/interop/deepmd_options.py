"""DeePMD-kit DPA-2 ``model_params`` -> lam's :class:`~lam.model.config.DPA2Config` and head config.

Every option of DeePMD-kit 3's DPA-2 descriptor and energy fitting net (``deepmd/utils/argcheck.py``)
is either translated (:data:`DESCRIPTOR_FIELDS` and friends), or required to hold the one value lam
implements (:data:`FIXED`), or irrelevant to a trained model's outputs (:data:`TRAINING_ONLY`). Any
other value of any option is refused, all of them listed in one message: nothing is imported half-way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lam.errors import LamError
from lam.model.config import DPA2Config, HeadConfig

# DeePMD option (dotted under model.descriptor) -> DPA2Config field
DESCRIPTOR_FIELDS = {
    "repinit.tebd_dim": "type_embedding_dim",
    "repinit.rcut": "repinit_cutoff",
    "repinit.rcut_smth": "repinit_smooth_start",
    "repinit.nsel": "repinit_max_neighbors",
    "repinit.neuron": "repinit_embedding_widths",
    "repinit.axis_neuron": "repinit_axis_dim",
    "repinit.use_three_body": "use_three_body",
    "repinit.three_body_rcut": "three_body_cutoff",
    "repinit.three_body_rcut_smth": "three_body_smooth_start",
    "repinit.three_body_sel": "three_body_max_neighbors",
    "repinit.three_body_neuron": "three_body_embedding_widths",
    "repformer.rcut": "repformer_cutoff",
    "repformer.rcut_smth": "repformer_smooth_start",
    "repformer.nsel": "repformer_max_neighbors",
    "repformer.nlayers": "n_repformer_layers",
    "repformer.g1_dim": "atom_dim",
    "repformer.g2_dim": "pair_dim",
    "repformer.axis_neuron": "repformer_axis_dim",
    "repformer.update_g1_has_attn": "atom_attention",
    "repformer.attn1_hidden": "atom_attention_hidden",
    "repformer.attn1_nhead": "atom_attention_heads",
    "repformer.update_g2_has_attn": "pair_attention",
    "repformer.attn2_hidden": "pair_attention_hidden",
    "repformer.attn2_nhead": "pair_attention_heads",
    "repformer.attn2_has_gate": "pair_attention_gate",
    "repformer.update_g2_has_g1g1": "pair_self_product",
}
# options whose value must be the one lam implements (DeePMD-kit's default where it has one)
FIXED: dict[str, Any] = {
    "type": "dpa2",
    "repinit.activation_function": "tanh",
    "repformer.activation_function": "tanh",
    "repinit.tebd_input_mode": "concat",
    "repinit.set_davg_zero": True,
    "repinit.type_one_side": False,
    "repinit.resnet_dt": False,
    "repformer.update_h2": False,
    "repformer.update_g1_has_conv": True,
    "repformer.update_g1_has_grrg": True,
    "repformer.update_g1_has_drrd": True,
    "repformer.update_style": "res_residual",
    "repformer.use_sqrt_nnei": True,
    "repformer.g1_out_conv": True,
    "repformer.g1_out_mlp": True,
    "repformer.direct_dist": False,
    "repformer.set_davg_zero": True,
    "repformer.trainable_ln": True,
    "repformer.ln_eps": (None, 1e-5),  # DeePMD-kit reads None as 1e-5, torch's LayerNorm default
    "concat_output_tebd": True,
    "smooth": True,
    "exclude_types": [],
    "env_protection": 0.0,
    "add_tebd_to_repinit_out": False,
    "use_econf_tebd": False,
    "use_tebd_bias": False,
}
FITTING_FIXED: dict[str, Any] = {
    "type": "ener",
    "activation_function": "tanh",
    "resnet_dt": True,
    "numb_fparam": 0,
    "numb_aparam": 0,
    "atom_ener": [],
    "use_aparam_as_mask": False,
    "layer_name": None,
    "remove_vaccum_contribution": None,
}
MODEL_FIXED: dict[str, Any] = {
    "type": "standard",
    "pair_exclude_types": [],
    "atom_exclude_types": [],
    "use_srtab": None,
    "bridging_method": "None",
}
# options that change how a model trains or is stored, never what a trained model computes (the
# precision is checked on its own; a case embedding is folded into each branch's first layer)
TRAINING_ONLY = {
    "descriptor": {
        "seed",
        "trainable",
        "precision",
        "repformer.update_residual",
        "repformer.update_residual_init",
    },
    "fitting_net": {"seed", "trainable", "precision", "rcond", "neuron", "dim_case_embd", "default_fparam"},
    "model": {
        "type_map",
        "data_stat_nbatch",
        "data_stat_protect",
        "data_bias_nsample",
        "preset_out_bias",
        "srtab_add_bias",
        "model_branch_alias",
        "info",
        "bridging_r_inner",
        "bridging_r_outer",
        "finetune_head",
    },
}
PRECISIONS = ("float64", "float32")


class UnsupportedDeepmdModel(LamError, ValueError):
    """A DeePMD-kit model that uses an option lam does not implement."""


@dataclass(frozen=True)
class DeepmdArchitecture:
    """What a DeePMD-kit DPA-2 model's options translate to."""

    descriptor: DPA2Config
    head: HeadConfig
    precision: str


def _flatten(options: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in options.items():
        if isinstance(value, dict) and key in ("repinit", "repformer"):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _same(value: Any, wanted: Any) -> bool:
    allowed = wanted if isinstance(wanted, tuple) else (wanted,)
    return any(
        value == option or (isinstance(value, list) and list(option or []) == value) for option in allowed
    )


def _refusals(options: dict[str, Any], fixed: dict[str, Any], translated: set[str], where: str) -> list[str]:
    """``where.option=value`` for every option that is neither translated, fixed to its value, nor inert."""
    refused = []
    for key, value in options.items():
        if key in translated or key in TRAINING_ONLY[where]:
            continue
        if key in fixed and _same(value, fixed[key]):
            continue
        refused.append(f"{where}.{key}={value!r}")
    return refused


def translate(model_params: dict[str, Any], fitting: dict[str, Any], source: str) -> DeepmdArchitecture:
    """The lam architecture of one DeePMD-kit branch; raises :class:`UnsupportedDeepmdModel`."""
    descriptor = _flatten(model_params.get("descriptor", {}))
    refused = _refusals(descriptor, FIXED, set(DESCRIPTOR_FIELDS), "descriptor")
    refused += _refusals(fitting, FITTING_FIXED, set(), "fitting_net")
    top = {k: v for k, v in model_params.items() if k not in ("descriptor", "fitting_net")}
    refused += _refusals(top, MODEL_FIXED, set(), "model")
    precisions = {descriptor.get("precision", "float64"), fitting.get("precision", "float64")}
    if len(precisions) != 1 or not precisions <= set(PRECISIONS):
        refused.append(f"precision={sorted(precisions)} (lam imports float64 or float32, the same for both)")
    refused += [f"descriptor.{key} (not recorded)" for key in DESCRIPTOR_FIELDS if key not in descriptor]
    if refused:
        raise UnsupportedDeepmdModel(
            f"{source}: lam cannot import this DeePMD-kit model exactly: it uses "
            + ", ".join(refused)
            + " (docs/deepmd_import.md lists what lam implements)"
        )
    fields = {field: descriptor[key] for key, field in DESCRIPTOR_FIELDS.items()}
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    head = HeadConfig(
        hidden_widths=tuple(fitting.get("neuron", (120, 120, 120))), activation="tanh", resnet=True
    )
    try:
        config = DPA2Config(**{"residual_init_scale": 0.01, **fields})
    except (TypeError, ValueError) as error:
        raise UnsupportedDeepmdModel(f"{source}: {error}") from error
    return DeepmdArchitecture(config, head, precisions.pop())
