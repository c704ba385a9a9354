"""Typed, versioned model configuration: one source of truth for constructors, ``config.json`` and cards.

Every model module takes one of these frozen dataclasses. ``LAMConfig.to_dict``/``from_dict`` are the
JSON form; ``from_dict`` rejects unknown keys and configurations written by a newer schema, and
migrates older ones through :func:`migrate`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from lam.nn.embedding import N_ELEMENTS  # noqa: F401  (re-exported: models size tables by it)

# 2: each head records its elements (HeadSpec.elements); config.json also holds the weights' sha256
SCHEMA_VERSION = 3


@dataclass(frozen=True)
class DPA2Config:
    """Hyperparameters of the DPA-2 descriptor (names follow physics; DeePMD-kit's in brackets)."""

    kind: Literal["dpa2"] = "dpa2"
    type_embedding_dim: int = 8  # [tebd_dim]
    # repinit: DPA-1 se_atten two-body embedding without attention layers
    repinit_cutoff: float = 6.0  # [repinit.rcut], Å
    repinit_smooth_start: float = 0.5  # [repinit.rcut_smth], Å: switching starts here
    repinit_max_neighbors: int = 120  # [repinit.nsel]: neighbour-count normalisation
    repinit_embedding_widths: tuple[int, ...] = (25, 50, 100)  # [repinit.neuron]
    repinit_axis_dim: int = 12  # [repinit.axis_neuron]
    use_three_body: bool = True  # [repinit.use_three_body]: se_t_tebd angular block
    three_body_cutoff: float = 4.0  # [three_body_rcut], Å
    three_body_smooth_start: float = 3.5  # [three_body_rcut_smth], Å
    three_body_max_neighbors: int = 48  # [three_body_sel]
    three_body_embedding_widths: tuple[int, ...] = (2, 4, 8)  # [three_body_neuron]
    # repformer stack
    repformer_cutoff: float = 4.0  # [repformer.rcut], Å
    repformer_smooth_start: float = 3.5  # [repformer.rcut_smth], Å
    repformer_max_neighbors: int = 48  # [repformer.nsel]
    n_repformer_layers: int = 3  # [repformer.nlayers]
    atom_dim: int = 128  # [g1_dim]: single-atom feature width
    pair_dim: int = 32  # [g2_dim]: pair feature width
    repformer_axis_dim: int = 4  # [repformer.axis_neuron]
    atom_attention: bool = False  # [update_g1_has_attn]
    atom_attention_hidden: int = 128  # [attn1_hidden]
    atom_attention_heads: int = 4  # [attn1_nhead]
    pair_attention: bool = True  # [update_g2_has_attn]: gated self-attention on pair features
    pair_attention_hidden: int = 32  # [attn2_hidden]
    pair_attention_heads: int = 4  # [attn2_nhead]
    pair_attention_gate: bool = True  # [attn2_has_gate]: gate logits by neighbour-direction products
    pair_self_product: bool = False  # [update_g2_has_g1g1]
    residual_init_scale: float = 0.01  # [update_residual], init std of learnable residual scales
    activation: Literal["tanh", "silu", "gelu"] = "tanh"


@dataclass(frozen=True)
class StudentConfig:
    """Hyperparameters of the fast student: a two-body (se_atten-without-attention) descriptor."""

    kind: Literal["two_body"] = "two_body"
    type_embedding_dim: int = 8
    cutoff: float = 4.5  # Å
    smooth_start: float = 0.5  # Å
    max_neighbors: int = 64  # neighbour slots per atom (nearest kept, like DeePMD's sel)
    # divides the neighbour sum T_i (DeePMD divides by sel); None: max_neighbors. lam distill sets it to
    # the first labels' mean neighbour count: under 64 slots a molecule's descriptor is (8/64)^2 of a
    # crystal's and its student learns slower (scripts/results/distill_student_learning.json)
    neighbor_normalizer: float | None = None
    embedding_widths: tuple[int, ...] = (16, 32)
    axis_dim: int = 4
    activation: Literal["tanh", "silu", "gelu"] = "tanh"


@dataclass(frozen=True)
class HeadConfig:
    """Architecture shared by all fitting heads (an MLP over descriptor features)."""

    hidden_widths: tuple[int, ...] = (240, 240, 240)  # [fitting_net.neuron]
    activation: Literal["tanh", "silu", "gelu"] = "tanh"
    resnet: bool = True  # [resnet_dt]: residual hidden layers with a learnable timestep


@dataclass(frozen=True)
class HeadSpec:
    """One fitting head: the dataset / level of theory whose potential-energy surface it fits.

    Attributes:
        name: the head's name (a dataset name for pretrained heads).
        level_of_theory: functional and code of its data, e.g. ``PBE (VASP)``.
        datasets: the datasets it was trained on.
        elements: atomic numbers it was trained on, i.e. those with a fitted energy reference
            (recorded when the model is saved; empty in folders saved before schema 2, filled on load).
    """

    name: str
    level_of_theory: str = "unknown"
    datasets: tuple[str, ...] = ()
    elements: tuple[int, ...] = ()


@dataclass(frozen=True)
class LAMConfig:
    """Whole-model configuration, stored as ``config.json`` next to ``model.safetensors``."""

    descriptor: DPA2Config | StudentConfig = field(default_factory=DPA2Config)
    head: HeadConfig = field(default_factory=HeadConfig)
    heads: tuple[HeadSpec, ...] = (HeadSpec("default"),)
    schema_version: int = SCHEMA_VERSION

    @property
    def cutoff(self) -> float:
        """Largest cutoff the descriptor needs: graphs must be built with at least this, Å."""
        d = self.descriptor
        return d.repinit_cutoff if isinstance(d, DPA2Config) else d.cutoff

    @property
    def head_names(self) -> tuple[str, ...]:
        """Names of the fitting heads, in order."""
        return tuple(h.name for h in self.heads)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LAMConfig:
        """Parse a dictionary written by :meth:`to_dict`, migrating older schema versions.

        Raises:
            ValueError: on unknown keys, an unknown descriptor kind, or a newer schema version.
        """
        data = migrate(dict(data))
        _reject_unknown(cls, data, "model config")
        _require_all(cls, data, "model config")
        desc = dict(data["descriptor"])
        kinds = {"dpa2": DPA2Config, "two_body": StudentConfig}
        kind = desc.get("kind")
        if kind not in kinds:
            raise ValueError(f"model config: unknown descriptor kind {kind!r}; known: {sorted(kinds)}")
        heads = tuple(_build(HeadSpec, h, "heads[]") for h in data["heads"])
        if len(set(h.name for h in heads)) != len(heads):
            raise ValueError(f"model config: duplicate head names in {[h.name for h in heads]}")
        return cls(
            descriptor=_build(kinds[kind], desc, "descriptor"),
            head=_build(HeadConfig, data["head"], "head"),
            heads=heads,
            schema_version=SCHEMA_VERSION,
        )


def _reject_unknown(cls: type, data: dict[str, Any], where: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")


def _require_all(cls: type, data: dict[str, Any], where: str) -> None:
    """A saved config names every field: a missing one would silently take today's default."""
    fields = (f.name for f in dataclasses.fields(cls) if f.name != "schema_version")
    missing = sorted(name for name in fields if name not in data)
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}; a saved model config names every field")


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """Instantiate a flat frozen dataclass from a dict (every field present), lists becoming tuples."""
    _reject_unknown(cls, data, where)
    _require_all(cls, data, where)
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a config dictionary of any known schema version up to :data:`SCHEMA_VERSION`.

    Each future schema bump adds one step here (``if version == 1: ...; version = 2``), so models
    saved today keep loading.
    """
    version = int(data.pop("schema_version", 1))
    if version > SCHEMA_VERSION:
        raise ValueError(
            f"model config has schema_version {version}, newer than this lam ({SCHEMA_VERSION}); "
            "upgrade lam to load it"
        )
    if version == 1:  # 1 -> 2: heads gain ``elements``, filled from the energy references on load
        data["heads"] = [{**head, "elements": head.get("elements", [])} for head in data.get("heads", [])]
        version = 2
    if version == 2 and data.get("descriptor", {}).get("kind") == "two_body":
        # 2 -> 3: students gain ``neighbor_normalizer``; None divides by max_neighbors, as before
        data["descriptor"] = {"neighbor_normalizer": None, **data["descriptor"]}
    return data


def _preset_dpa2(**overrides: Any) -> LAMConfig:
    return LAMConfig(descriptor=DPA2Config(**overrides))


PRESETS: dict[str, LAMConfig] = {
    # For tests and the 2-core demo: same architecture, small widths and cutoffs.
    "tiny": LAMConfig(
        descriptor=DPA2Config(
            repinit_cutoff=5.0,
            repinit_max_neighbors=60,
            repinit_embedding_widths=(8, 16),
            repinit_axis_dim=4,
            use_three_body=False,
            repformer_max_neighbors=24,
            n_repformer_layers=2,
            atom_dim=32,
            pair_dim=8,
            pair_attention_hidden=8,
            pair_attention_heads=2,
        ),
        head=HeadConfig(hidden_widths=(32, 32)),
    ),
    # lam's own presets keep the gated pair attention on (an attention-based model).
    "small": _preset_dpa2(n_repformer_layers=3),
    "medium": _preset_dpa2(n_repformer_layers=6),
    # Exactly DeePMD-kit's examples/water/dpa2/input_torch_{small,medium}.json, for like-for-like benchmarks.
    "deepmd-small": _preset_dpa2(n_repformer_layers=3, pair_attention=False),
    "deepmd-medium": _preset_dpa2(n_repformer_layers=6, pair_attention=True),
    "student": LAMConfig(descriptor=StudentConfig(), head=HeadConfig(hidden_widths=(64, 64))),
}


def preset(name: str) -> LAMConfig:
    """A named preset configuration (``tiny``, ``small``, ``medium``, ``deepmd-small``, ``student``...)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available: {sorted(PRESETS)}")
    return PRESETS[name]
