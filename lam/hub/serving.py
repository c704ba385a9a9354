"""``lam predict``: a model's predictions for every frame of a file or dataset, streamed to a file."""

from __future__ import annotations

import os
from pathlib import Path

import ase
import ase.io
from ase.io.formats import filetype
from tqdm import tqdm

from lam.data.sources import iter_frames
from lam.hub.models import load_model


def predict_file(
    model_ref: str,
    data: str,
    output: Path,
    head: str | None,
    batch_atoms: int = 2000,
    overwrite: bool = False,
    allow_unseen_elements: bool = False,
) -> int:
    """Write the predictions for every frame of ``data`` to ``output``; returns the number of frames.

    The file is written under a temporary name next to ``output`` and renamed when complete, so a
    killed run leaves no half-written ``output``.
    """
    from lam.predict import iter_predict

    output = Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it")
    try:
        format = filetype(output, read=False)
    except Exception as error:  # ase raises its own UnknownFileTypeError, and others, for unknown names
        raise ValueError(f"{output}: cannot tell the format from the name ({error}); use .extxyz") from None
    model = load_model(model_ref).for_inference()
    frames = iter_frames(data)
    partial = output.with_name(f".{output.name}.partial")
    count = 0
    try:
        unseen = allow_unseen_elements
        predictions = iter_predict(model, frames, head, batch_atoms, allow_unseen_elements=unseen)
        for atoms in tqdm(predictions, unit="frame", desc=f"lam predict {Path(data).name}"):
            ase.io.write(partial, atoms, format=format, append=count > 0)
            count += 1
        if count == 0:
            raise ValueError(f"{data} holds no frame to predict")
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return count
