"""``lam import deepmd``: a DeePMD-kit DPA-2 checkpoint as an ordinary lam model folder.

Each DeePMD-kit branch becomes a lam head with the branch's name (``default`` for a single-task
model). DeePMD-kit's per-atom energy is ``F(D_i) + bias[type_i]``; lam's head computes
``F(D_i) - F(D_iso(Z_i)) + reference[Z_i]`` (:class:`~lam.model.heads.EnergyHead`), so the import
sets ``reference[Z] = bias[type] + F(D_iso(Z))``, which gives the same energy to rounding, and the
references become the branch's isolated-atom energies. Elements a branch never observed in training
get no reference, so the head refuses them as lam heads do.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from ase.data import atomic_numbers as SYMBOL_TO_Z
from ase.data import chemical_symbols
from huggingface_hub import ModelCard, ModelCardData

from lam._version import __version__
from lam.hub.card import CARD_FILE, TEMPLATE_DIR
from lam.hub.outputs import refuse_existing_model, write_json
from lam.interop.deepmd_checkpoint import DeepmdCheckpoint, read_checkpoint
from lam.interop.deepmd_options import DeepmdArchitecture, UnsupportedDeepmdModel, translate
from lam.interop.deepmd_weights import InconsistentDeepmdModel, descriptor_state, fitting_state, type_biases
from lam.model.config import HeadSpec, LAMConfig
from lam.model.lam import LAM

REPORT_FILE = "deepmd_import.json"


def head_name(branch: str) -> str:
    """Lam's name for a DeePMD-kit branch (a single-task model's ``Default`` becomes ``default``)."""
    return "default" if branch == "Default" else branch


def _chosen_branches(checkpoint: DeepmdCheckpoint, wanted: list[str] | None) -> list[str]:
    if not wanted:
        return list(checkpoint.branches)
    unknown = [name for name in wanted if name not in checkpoint.branches]
    if unknown:
        raise UnsupportedDeepmdModel(
            f"{checkpoint.source}: no branch {', '.join(unknown)}; it has {', '.join(checkpoint.branches)}"
        )
    return list(dict.fromkeys(wanted))


def _architecture(checkpoint: DeepmdCheckpoint, branches: list[str]) -> DeepmdArchitecture:
    """The one architecture all chosen branches share (lam's heads share a descriptor and widths)."""
    found = {
        name: translate(checkpoint.branches[name], _fitting(checkpoint, name), checkpoint.source)
        for name in branches
    }
    first = found[branches[0]]
    different = [name for name, arch in found.items() if arch != first]
    if different:
        raise UnsupportedDeepmdModel(
            f"{checkpoint.source}: branches {', '.join(different)} differ from {branches[0]} in descriptor, "
            "fitting widths or precision; import them separately (--branch)"
        )
    return first


def _fitting(checkpoint: DeepmdCheckpoint, branch: str) -> dict[str, Any]:
    fitting = checkpoint.branches[branch].get("fitting_net", {})
    return fitting if isinstance(fitting, dict) else {}


def _type_numbers(checkpoint: DeepmdCheckpoint, branches: list[str]) -> list[int]:
    maps = {tuple(checkpoint.branches[name].get("type_map", ())) for name in branches}
    if len(maps) != 1:
        raise UnsupportedDeepmdModel(f"{checkpoint.source}: the branches have different type maps")
    type_map = maps.pop()
    unknown = [symbol for symbol in type_map if symbol not in SYMBOL_TO_Z or symbol == "X"]
    if unknown or not type_map:
        raise UnsupportedDeepmdModel(
            f"{checkpoint.source}: type map entries that are not elements: {unknown}"
        )
    return [SYMBOL_TO_Z[symbol] for symbol in type_map]


def _observed(
    checkpoint: DeepmdCheckpoint, branch: str, biases: torch.Tensor, type_map: list[str]
) -> list[int]:
    """Types the branch saw in training: DeePMD-kit's ``info.observed_type``, else those with a bias."""
    observed = checkpoint.branches[branch].get("info", {}).get("observed_type")
    if observed:
        return [type_map.index(symbol) for symbol in observed if symbol in type_map]
    return [t for t in range(len(type_map)) if float(biases[t]) != 0.0]


def _descriptor_tensors(
    checkpoint: DeepmdCheckpoint, branches: list[str], arch: DeepmdArchitecture, numbers: list[int]
) -> dict[str, torch.Tensor]:
    states = [
        descriptor_state(checkpoint.state, checkpoint.prefixes[name], arch.descriptor, numbers)
        for name in branches
    ]
    for name, state in zip(branches[1:], states[1:], strict=True):
        if any(not torch.equal(state[key], states[0][key]) for key in state):
            raise UnsupportedDeepmdModel(
                f"{checkpoint.source}: branch {name} has its own descriptor weights (not shared with "
                f"{branches[0]}); import it on its own (--branch {name})"
            )
    return states[0]


def build_model(checkpoint: DeepmdCheckpoint, branches: list[str] | None = None) -> LAM:
    """The lam model of ``branches`` (default: all) of a DeePMD-kit checkpoint, in its precision."""
    names = _chosen_branches(checkpoint, branches)
    arch = _architecture(checkpoint, names)
    numbers = _type_numbers(checkpoint, names)
    dtype = getattr(torch, arch.precision)
    state = _descriptor_tensors(checkpoint, names, arch, numbers)
    for name in names:
        state.update(fitting_state(checkpoint.state, checkpoint.prefixes[name], head_name(name)))
    heads = tuple(
        HeadSpec(name=head_name(name), level_of_theory="unknown (DeePMD-kit branch)") for name in names
    )
    model = LAM(LAMConfig(descriptor=arch.descriptor, head=arch.head, heads=heads)).to(dtype)
    missing, unexpected = model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=False)
    left = [key for key in missing if not key.endswith(("energy_reference", "energy_scale"))]
    if left or unexpected:
        raise InconsistentDeepmdModel(f"{checkpoint.source}: tensors not matched: {left or unexpected}")
    model.eval()
    type_map = [chemical_symbols[z] for z in numbers]
    elements = torch.tensor(numbers)
    with torch.no_grad():
        isolated = model.descriptor(elements, elements.new_zeros(2, 0), torch.zeros(0, 3, dtype=dtype))
        for name in names:
            head = model.heads[head_name(name)]
            biases = type_biases(checkpoint.state, checkpoint.prefixes[name])
            offset = head.mlp(isolated).squeeze(-1)  # F(D_iso) per type
            head.energy_scale.fill_(1.0)
            for t in _observed(checkpoint, name, biases, type_map):
                head.energy_reference[numbers[t]] = float(biases[t]) + float(offset[t])
    model.config = model.config_with_elements()
    return model


def _card(checkpoint: DeepmdCheckpoint, model: LAM, names: list[str], precision: str) -> ModelCard:
    symbols = {n: " ".join(chemical_symbols[z] for z in model.head_elements(head_name(n))) for n in names}
    rows = "\n".join(f"| `{head_name(n)}` | `{n}` | {symbols[n]} |" for n in names)
    lineage = {
        "parent": checkpoint.source,
        "parent_kind": "deepmd-kit",
        "parent_sha256": checkpoint.sha256,
        "mode": "import",
        "branches": names,
        "lam_version": __version__,
    }
    data = ModelCardData(
        library_name="lam",
        tags=["interatomic-potential", "lam", "dpa-2", "deepmd-kit"],
        model_name=f"{Path(checkpoint.path).stem} (lam)",
        lam_lineage=lineage,
    )
    step = checkpoint.train_infos.get("step", "not recorded")
    return ModelCard.from_template(
        data,
        template_path=str(TEMPLATE_DIR / "imported_deepmd.md"),
        model_name=data.model_name,
        source=checkpoint.source,
        rows=rows,
        file_name=Path(checkpoint.path).name,
        sha256=checkpoint.sha256,
        deepmd_version="not recorded in the checkpoint",
        step=step,
        precision=precision,
    )


def import_deepmd(
    source: str, out: str | Path, branches: list[str] | None = None, overwrite: bool = False
) -> Path:
    """Import ``source`` (a ``.pt`` path or ``org/name:file.pt``) into the model folder ``out``.

    The folder is written in a temporary sibling and moved into place complete; an existing folder
    holding anything is refused unless ``overwrite`` (then only lam's files in it are replaced).
    """
    out = Path(out)
    refuse_existing_model(out, overwrite)
    checkpoint = read_checkpoint(source)
    names = _chosen_branches(checkpoint, branches)
    model = build_model(checkpoint, names)
    precision = str(next(model.parameters()).dtype).removeprefix("torch.")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        staging = Path(tmp)
        _card(checkpoint, model, names, precision).save(staging / CARD_FILE)
        write_json(
            staging / REPORT_FILE,
            {
                "source": checkpoint.source,
                "file": Path(checkpoint.path).name,
                "sha256": checkpoint.sha256,
                "heads": {head_name(n): n for n in names},
                "precision": precision,
                "model_params": checkpoint.model_params,
                "lam_version": __version__,
            },
        )
        model.save_pretrained(staging)
        out.mkdir(exist_ok=True)
        for path in staging.iterdir():  # config.json last: the folder is a model once it exists
            if path.name != "config.json":
                shutil.move(str(path), out / path.name)
        shutil.move(str(staging / "config.json"), out / "config.json")
    return out
