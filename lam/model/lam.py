"""The large atomic model: a shared descriptor and a dictionary of per-dataset fitting heads."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from torch import Tensor, nn

from lam import keys
from lam.model.config import DPA2Config, HeadSpec, LAMConfig
from lam.model.heads import EnergyHead
from lam.model.memory import check_batch_memory
from lam.model.outputs import Predictions
from lam.model.physics import derivatives, edge_vectors
from lam.model.repinit import Repinit
from lam.model.serialization import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    read_config,
    read_weights,
    without_hash,
    write_model_files,
)

# models shipped inside the package (lam/resources/models/<name>), loadable by name
BUILTIN_DIR = Path(__file__).resolve().parents[1] / "resources" / "models"


def build_descriptor(config: LAMConfig) -> nn.Module:
    """The descriptor module named by ``config.descriptor.kind``."""
    if isinstance(config.descriptor, DPA2Config):
        from lam.model.descriptor import DPA2Descriptor

        return DPA2Descriptor(config.descriptor)
    from lam.model.student import StudentDescriptor

    return StudentDescriptor(config.descriptor)


class LAM(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="lam",
    tags=["interatomic-potential", "lam"],
    # the mixin decodes config.json before _from_pretrained; the weights' hash is not part of the config
    coders={LAMConfig: (LAMConfig.to_dict, lambda data: LAMConfig.from_dict(without_hash(data)))},
):
    """Descriptor + ``ModuleDict`` of energy heads; energy, forces and stress for a batch of graphs.

    Args:
        config: the whole model configuration (descriptor, head architecture, head names).

    Saving writes ``config.json`` (with ``schema_version``) and ``model.safetensors``; loading never
    unpickles anything (:meth:`from_pretrained` takes a Hub id, a cached id offline, or a folder).
    """

    def __init__(self, config: LAMConfig) -> None:
        super().__init__()
        self.config = config
        self.descriptor = build_descriptor(config)
        self.heads = nn.ModuleDict(
            {spec.name: EnergyHead(self.descriptor.output_dim, config.head) for spec in config.heads}
        )
        self._isolated_cache: tuple[tuple, Tensor] | None = None
        # set by saving and loading: the weights file's sha256, and where a loaded model came from
        self.weights_sha256: str | None = None
        self.source: dict[str, str | None] | None = None

    @property
    def cutoff(self) -> float:
        """Cutoff (Å) that input graphs must be built with."""
        return self.config.cutoff

    def forward(
        self,
        batch: object,
        head: str | None = None,
        compute_forces: bool = True,
        compute_stress: bool = False,
        create_graph: bool | None = None,
    ) -> Predictions:
        """Energy (and derivatives) of a ``torch_geometric`` batch of :class:`~lam.data.graph.AtomicGraph`.

        Args:
            batch: a ``Batch`` (or a single ``AtomicGraph``) built with cutoff >= :attr:`cutoff`.
            head: fitting head to use; None means the only head of a single-head model.
            compute_forces: return forces (autograd of the energy).
            compute_stress: return virial and stress (strain derivative).
            create_graph: keep the derivative graph (default: ``self.training``).
        """
        head_module = self.heads[self.resolve_head(head)]
        positions = batch[keys.POSITIONS]
        cell = batch[keys.CELL]
        n_atoms = positions.shape[0]
        graph_index = (
            batch.batch
            if getattr(batch, "batch", None) is not None
            else positions.new_zeros(n_atoms, dtype=torch.long)
        )
        n_graphs = cell.shape[0]
        need_grad = compute_forces or compute_stress
        keep = self.training if create_graph is None else create_graph
        mode = ("training" if keep else "forces") if need_grad else "energy"
        check_batch_memory(self.config, batch, next(head_module.parameters()).dtype, mode)
        with torch.enable_grad():
            vectors = edge_vectors(
                positions, cell, graph_index, batch[keys.EDGE_INDEX], batch[keys.CELL_SHIFT]
            )
            if need_grad:  # forces and stress both come from dE/dr_edge (lam.model.physics)
                vectors = vectors.detach().requires_grad_(True)
            numbers = batch[keys.ATOMIC_NUMBERS]
            node_feats = self.descriptor(numbers, batch[keys.EDGE_INDEX], vectors)  # [N, D]
            isolated, element_index = self.isolated_element_features(numbers, vectors)
            node_energy = head_module(node_feats, numbers, isolated, element_index)  # [N]
            energy = node_energy.new_zeros(n_graphs).index_add(0, graph_index, node_energy)  # [B]
            if not need_grad:
                return Predictions(energy=energy, node_energy=node_energy)
            forces, virial, stress = derivatives(
                energy, vectors, batch[keys.EDGE_INDEX], graph_index, cell, batch[keys.PBC],
                want_stress=compute_stress, create_graph=keep,
            )
        return Predictions(
            energy=energy, node_energy=node_energy, forces=forces, virial=virial, stress=stress
        )

    def for_inference(self, enabled: bool = True) -> LAM:
        """Switch the inference mode on (or off), in place; returns the model.

        On: eval mode, weights frozen (``requires_grad_(False)``), and the two-body blocks take their
        hand-written derivatives (:mod:`lam.model.two_body_inference`, and the C++ kernel for the
        student on CPU): what the ASE calculator and MD want. Off: weights trainable again and the
        autograd path (what training needs; ``LAMTask`` switches it off).
        """
        self.requires_grad_(not enabled)
        if enabled:
            self.eval()
        for module in self.modules():
            if isinstance(module, Repinit):
                module.inference = enabled
        return self

    @torch.no_grad()
    def fit_environment_statistics(self, batch: object) -> None:
        """Fit the descriptor's environment-matrix normalisation to a batch of training graphs.

        DeePMD-kit's ``davg/dstd`` step: without it the environment rows are O(0.1), the descriptor
        barely varies with geometry and a fresh model starts with forces near 1e-5 eV/Å. Call once
        before training a fresh model (pretraining does); fine-tuning keeps the parent's statistics.
        """
        cell = batch[keys.CELL]
        positions = batch[keys.POSITIONS].to(cell.dtype)
        graph_index = batch.batch if getattr(batch, "batch", None) is not None else positions.new_zeros(
            positions.shape[0], dtype=torch.long
        )
        vectors = edge_vectors(positions, cell, graph_index, batch[keys.EDGE_INDEX], batch[keys.CELL_SHIFT])
        self.descriptor.fit_environment_std(batch[keys.ATOMIC_NUMBERS], batch[keys.EDGE_INDEX], vectors)

    def isolated_features(self, atomic_numbers: Tensor, like: Tensor) -> Tensor:
        """Descriptor features of an isolated atom of each atom's element, [N, D]."""
        features, element_index = self.isolated_element_features(atomic_numbers, like)
        return features[element_index]

    def isolated_element_features(self, atomic_numbers: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        """Descriptor features of an isolated atom of each element present, and each atom's row.

        Returns ``[n_elements, D]`` features and the ``[N]`` index of each atom's element in them.
        In eval mode the per-element features are cached (detached) until a descriptor weight or
        buffer changes in place (tracked by their version counters): they depend on nothing else,
        and recomputing them is a full extra descriptor pass per evaluation, which costs a cheap
        model (the student, small molecules in MD) about 10% of its time.
        """
        elements, inverse = torch.unique(atomic_numbers, return_inverse=True)
        if self.training:
            return self._isolated_pass(elements, like), inverse
        tensors = [*self.descriptor.parameters(), *self.descriptor.buffers()]
        key = (tuple(elements.tolist()), like.dtype, like.device, tuple(t._version for t in tensors))
        key += (tuple(t.data_ptr() for t in tensors),)  # .to() / load_state_dict(assign=True) swap storage
        if self._isolated_cache is None or self._isolated_cache[0] != key:
            with torch.no_grad():
                self._isolated_cache = (key, self._isolated_pass(elements, like))
        return self._isolated_cache[1], inverse

    def _isolated_pass(self, elements: Tensor, like: Tensor) -> Tensor:
        """Descriptor features [n_elements, D] of one isolated atom of each element."""
        no_edges = elements.new_zeros(2, 0)
        no_vectors = like.new_zeros(0, 3)
        return self.descriptor(elements, no_edges, no_vectors)

    def resolve_head(self, head: str | None) -> str:
        """Validate a head name (None picks the only head) and return it."""
        names = list(self.heads.keys())
        if head is None:
            if len(names) != 1:
                raise ValueError(f"this model has several heads; choose one of {names}")
            return names[0]
        if head not in self.heads:
            raise KeyError(f"no head named {head!r}; this model has heads {names}")
        return head

    # ---- head operations -------------------------------------------------------------------
    def add_head(self, spec: HeadSpec, copy_from: str | None = None) -> None:
        """Add a fitting head; fresh, or a copy of an existing head's weights and references."""
        if spec.name in self.heads:
            raise ValueError(f"head {spec.name!r} already exists; heads: {list(self.heads)}")
        ref = next(self.parameters())
        head = EnergyHead(self.descriptor.output_dim, self.config.head).to(device=ref.device, dtype=ref.dtype)
        if copy_from is not None:
            head.load_state_dict(self.heads[self.resolve_head(copy_from)].state_dict())
        self.heads[spec.name] = head
        self.config = dataclasses.replace(self.config, heads=(*self.config.heads, spec))

    def drop_head(self, name: str) -> None:
        """Remove a fitting head."""
        self.resolve_head(name)
        if len(self.heads) == 1:
            raise ValueError("cannot drop the last head of a model")
        del self.heads[name]
        self.config = dataclasses.replace(
            self.config, heads=tuple(h for h in self.config.heads if h.name != name)
        )

    def keep_heads(self, names: list[str]) -> None:
        """Drop every head not in ``names`` (e.g. before publishing a fine-tuned model)."""
        for name in list(self.heads):
            if name not in names:
                self.drop_head(name)

    # ---- elements --------------------------------------------------------------------------
    def head_elements(self, head: str) -> tuple[int, ...]:
        """Atomic numbers ``head`` was trained on: those with a fitted energy reference."""
        return tuple(sorted(self.heads[self.resolve_head(head)].energy_references()))

    def config_with_elements(self) -> LAMConfig:
        """``config`` with every head's ``elements`` taken from its energy references."""
        heads = tuple(dataclasses.replace(s, elements=self.head_elements(s.name)) for s in self.config.heads)
        return dataclasses.replace(self.config, heads=heads)

    # ---- serialisation (safetensors + JSON; never pickle) -----------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs: object) -> LAM:
        """Load a model folder, a built-in model or a Hub id ``org/name[@revision]`` (see the mixin).

        ``org/name@v1.2.0`` is ``org/name`` with ``revision="v1.2.0"``; ``revision=`` also works.
        The weights are checked against the sha256 their ``config.json`` records. ``model.source``
        says where the model came from (for a Hub model: the commit the revision resolved to).
        """
        reference = str(pretrained_model_name_or_path)
        builtin = BUILTIN_DIR / reference
        if (builtin / CONFIG_FILE).is_file():
            reference = str(builtin)
        elif "@" in reference and not Path(reference).exists():
            reference, _, revision = reference.partition("@")
            if kwargs.get("revision") not in (None, revision):
                raise ValueError(
                    f"model {pretrained_model_name_or_path!r} and revision={kwargs['revision']!r} disagree"
                )
            kwargs["revision"] = revision
        return super().from_pretrained(reference, **kwargs)

    def _save_pretrained(self, save_directory: Path) -> None:
        self.config = self.config_with_elements()
        self.weights_sha256 = write_model_files(Path(save_directory), self.config, self.state_dict())

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        token: str | bool | None = None,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs: object,
    ) -> LAM:
        def fetch(filename: str) -> str:
            if os.path.isdir(model_id):
                path = Path(model_id) / filename
                if not path.is_file():
                    raise FileNotFoundError(
                        f"{model_id}: no {filename} (a lam model folder holds "
                        f"{CONFIG_FILE} and {WEIGHTS_FILE})"
                    )
                return str(path)
            return hf_hub_download(
                repo_id=model_id,
                filename=filename,
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                token=token,
                local_files_only=local_files_only,
            )

        config_path = fetch(CONFIG_FILE)
        config, sha = read_config(config_path)  # the mixin's decoded config lacks the recorded hash
        model = cls(config)
        state = read_weights(fetch(WEIGHTS_FILE), sha, device=str(map_location))
        dtype = next(iter(state.values())).dtype if state else torch.float32
        model.to(dtype=dtype)
        try:
            model.load_state_dict(state, strict=strict)
        except RuntimeError as error:
            raise ValueError(f"{config_path}: the weights do not fit this config ({error})") from None
        model.config = model.config_with_elements()  # folders saved before schema 2 lack elements
        model.weights_sha256 = sha
        model.source = model_source(model_id, revision, config_path)
        return model


def model_source(model_id: str, revision: str | None, config_path: str) -> dict[str, str | None]:
    """Where a loaded model came from: folder, or Hub id + asked revision + resolved commit.

    In the Hugging Face cache a file lives under ``snapshots/<commit>/``: that is the commit the
    revision (a tag or branch) resolved to.
    """
    if os.path.isdir(model_id):
        return {"kind": "folder", "location": str(Path(model_id).resolve()), "revision": None, "commit": None}
    parent = Path(config_path).parent
    commit = parent.name if parent.parent.name == "snapshots" else None
    return {"kind": "hub", "location": model_id, "revision": revision, "commit": commit}
