"""``lam import deepmd``: bring another framework's pretrained model into lam's format."""

from __future__ import annotations

from pathlib import Path


def deepmd(
    source: str, out: Path | None = None, branch: list[str] | None = None, overwrite: bool = False
) -> Path:
    """Import a DeePMD-kit DPA-2 model (v3 PyTorch .pt checkpoint, single- or multi-task) as a lam model.

    Each branch becomes a head with its name and the elements it was trained on. Loading never runs
    code stored in the file. Unsupported options are refused, each named with its value.

    Args:
        source: a .pt file, or a Hub file org/name:file.pt (downloaded; checked against a known sha256).
        out: the model folder to write (required; refused if it holds files, unless --overwrite).
        branch: branches to keep (repeat the flag; default: all).
        overwrite: write into an existing folder, replacing only lam's files.
    """
    from lam.interop.deepmd import import_deepmd

    if out is None:
        raise ValueError("lam import deepmd needs --out DIR, the model folder to write")
    folder = import_deepmd(source, out, branch, overwrite)
    print(f"imported {source} into {folder} (lam info {folder} lists its heads)")
    return folder


COMMANDS = {"import": {"deepmd": deepmd}}
