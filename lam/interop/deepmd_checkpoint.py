"""Find and read a DeePMD-kit v3 PyTorch checkpoint (``.pt``) without running any code in it.

A ``.pt`` training checkpoint is ``torch.save({"model": state_dict, "optimizer": ...})``; the state
dict's ``_extra_state`` holds ``model_params`` (the model section of the training input, with every
default filled in) and tensors are named ``model.<branch>.atomic_model.*`` (``Default`` for a
single-task model). It is read with ``torch.load(weights_only=True)``: tensors and plain containers
only, so a file carrying a pickled object is refused before anything in it runs. A frozen ``.pth``
is a TorchScript program; lam does not import it (loading it means running its code).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import hf_hub_download
from torch import Tensor

from lam.errors import LamError
from lam.model.serialization import file_sha256

# sha256 of published DeePMD-kit models lam knows: a download that differs is refused
KNOWN_SHA256 = {
    "deepmodelingcommunity/DPA-2.4-7M:DPA-2.4-7M-patched-mt.pt": (
        "904eb5560af9ff644347dedd3ebf1e9c97929d02ee37ce3cbe895de3df711198"
    ),
}


class DeepmdCheckpointError(LamError, ValueError):
    """A file that is not a DeePMD-kit checkpoint lam can read safely."""


@dataclass(frozen=True)
class DeepmdCheckpoint:
    """A DeePMD-kit checkpoint's tensors and options.

    Attributes:
        source: what the user named (a path, or ``org/name:file`` on the Hub).
        path: the local file.
        sha256: the file's sha256.
        state: tensors by DeePMD-kit's names.
        model_params: the ``model`` section of the training input.
        branches: branch name -> that branch's model section (with ``descriptor`` and ``fitting_net``).
        prefixes: branch name -> the prefix of its tensors (``model.<branch>.atomic_model.``).
        train_infos: DeePMD-kit's record of the training state (``step``, ``lr``).
    """

    source: str
    path: Path
    sha256: str
    state: dict[str, Tensor]
    model_params: dict[str, Any]
    branches: dict[str, dict[str, Any]]
    prefixes: dict[str, str]
    train_infos: dict[str, Any]


def locate(source: str) -> tuple[Path, str]:
    """The local file of ``source`` and its sha256; ``org/name:file`` is downloaded from the Hub."""
    path = Path(source)
    if path.is_file():
        return path, file_sha256(path)
    repo, sep, filename = source.partition(":")
    if not sep or repo.count("/") != 1 or Path(repo).exists():
        raise FileNotFoundError(f"{source}: no such file (a Hub model is named org/name:file.pt)")
    path = Path(hf_hub_download(repo, filename))  # honours HF_ENDPOINT, HF_TOKEN and the offline cache
    digest = file_sha256(path)
    expected = KNOWN_SHA256.get(source)
    if expected is not None and digest != expected:
        raise DeepmdCheckpointError(f"{source}: downloaded file has sha256 {digest}, expected {expected}")
    return path, digest


def _resolve_shared(branch: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """A multi-task branch with its ``shared_dict`` references (names of shared parts) filled in."""
    return {
        key: shared.get(value, value) if isinstance(value, str) and key != "type" else value
        for key, value in branch.items()
    }


def _branches(model_params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    if "model_dict" not in model_params:
        return {"Default": model_params}
    shared = model_params.get("shared_dict", {})
    return {name: _resolve_shared(branch, shared) for name, branch in model_params["model_dict"].items()}


def read_checkpoint(source: str) -> DeepmdCheckpoint:
    """Read ``source`` (see the module docstring); raises :class:`DeepmdCheckpointError`."""
    path, digest = locate(source)
    if path.suffix == ".pth":
        raise DeepmdCheckpointError(
            f"{source}: a frozen .pth is a TorchScript program and loading it runs its code; import the "
            ".pt training checkpoint instead"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DeepmdCheckpointError(
            f"{source}: not a plain-tensor PyTorch checkpoint ({first_line[:160]}); lam reads DeePMD-kit "
            ".pt files with weights_only=True and never runs code stored in a file"
        ) from error
    state = data.get("model", data) if isinstance(data, dict) else None
    extra = state.get("_extra_state") if isinstance(state, dict) else None
    if not isinstance(extra, dict) or "model_params" not in extra:
        raise DeepmdCheckpointError(
            f"{source}: not a DeePMD-kit v3 checkpoint (no model_params in its state)"
        )
    tensors = {key: value for key, value in state.items() if isinstance(value, Tensor)}
    branches = _branches(extra["model_params"])
    prefixes = {name: f"model.{name}.atomic_model." for name in branches}
    for name, prefix in prefixes.items():
        if not any(key.startswith(prefix) for key in tensors):
            raise DeepmdCheckpointError(f"{source}: branch {name!r} has no tensors under {prefix}")
    infos = extra.get("train_infos", {})
    infos = infos if isinstance(infos, dict) else {}
    return DeepmdCheckpoint(source, path, digest, tensors, extra["model_params"], branches, prefixes, infos)
