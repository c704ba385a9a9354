"""A model folder on disk: ``config.json`` + ``model.safetensors``, written atomically, read verified.

``config.json`` holds the :class:`~lam.model.config.LAMConfig` and the sha256 of the weights file
(``weights_sha256``), so a weight file that changed after saving (a flipped bit, a truncated copy, a
Hub cache blob that does not match its name) is refused with a sentence naming the file, instead of
loading a model that predicts other numbers. Folders saved before the hash existed still load.
Nothing here unpickles: weights are safetensors, configs JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lam.errors import LamError
from lam.model.config import LAMConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_HASH_KEY = "weights_sha256"


class IntegrityError(LamError, ValueError):
    """A model file is damaged or is not what its folder recorded (names the file)."""


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: Path, write: Any) -> None:
    """``write(temporary path)`` then rename over ``path``: a kill leaves the old file or the new one."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        umask = os.umask(0)  # mkstemp makes the file private; a model file is as readable as any other
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_model_files(directory: Path, config: LAMConfig, state: dict[str, torch.Tensor]) -> str:
    """Write the weights, then ``config.json`` recording their sha256; returns the sha256.

    The weights come first: a folder is a model once its ``config.json`` exists, and by then the
    weights it names are complete.
    """
    directory = Path(directory)
    weights = directory / WEIGHTS_FILE
    tensors = {key: value.detach().contiguous().cpu() for key, value in state.items()}
    metadata = {"format": "pt", "library": "lam"}
    atomic_write(weights, lambda path: save_file(tensors, path, metadata=metadata))
    sha = file_sha256(weights)
    record = {**config.to_dict(), WEIGHTS_HASH_KEY: sha}
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(directory / CONFIG_FILE, lambda path: Path(path).write_text(text))
    return sha


def without_hash(data: dict[str, Any]) -> dict[str, Any]:
    """A ``config.json`` dictionary without the weights' hash (what :class:`LAMConfig` parses)."""
    return {key: value for key, value in data.items() if key != WEIGHTS_HASH_KEY}


def read_config(path: str | Path) -> tuple[LAMConfig, str | None]:
    """The config of ``config.json`` and the weights' recorded sha256 (None for older folders).

    Raises:
        ValueError: the file is not JSON or not a lam model config (naming the file).
    """
    try:
        data = json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a lam model config (not valid JSON: {error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a lam model config (a JSON object is expected)")
    sha = data.pop(WEIGHTS_HASH_KEY, None)
    try:
        return LAMConfig.from_dict(data), sha
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: {error}") from None


def verify_weights(path: str | Path, expected_sha256: str | None) -> str:
    """Check the weights file against the recorded sha256 and, in a Hub cache, its blob name.

    Returns:
        The file's sha256.

    Raises:
        IntegrityError: the file's content differs from what was recorded.
    """
    actual = file_sha256(path)
    if expected_sha256 is not None and actual != expected_sha256:
        raise IntegrityError(
            f"{path} does not match the sha256 recorded in its {CONFIG_FILE} (recorded "
            f"{expected_sha256[:12]}…, found {actual[:12]}…): the file is damaged or was changed; "
            "download or copy the model again"
        )
    # the Hugging Face cache names a large file's blob after its sha256: the content must match it
    blob = Path(os.path.realpath(path)).name
    if re.fullmatch(r"[0-9a-f]{64}", blob) and blob != actual:
        raise IntegrityError(
            f"{path}: the cached file's content does not match its sha256 name {blob[:12]}…; "
            "delete it from the Hugging Face cache and download it again"
        )
    return actual


def read_weights(
    path: str | Path, expected_sha256: str | None, device: str = "cpu"
) -> dict[str, torch.Tensor]:
    """The tensors of a verified safetensors file (never unpickled).

    Raises:
        IntegrityError: damaged, changed or not a safetensors file (naming the file).
    """
    verify_weights(path, expected_sha256)
    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError) as error:
        raise IntegrityError(f"{path} is not a readable safetensors file ({error})") from None
