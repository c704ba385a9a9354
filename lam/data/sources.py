"""One way in for data: a source name or path becomes a training-format dataset, or frames.

A *source* is a registered dataset name (``lam data list``), a training-format directory, any file or
folder :func:`lam.data.readers.read_frames` reads (extxyz, ASE db, DeePMD npy, ...), a loaded
``datasets.Dataset`` or a list of ``ase.Atoms``. :func:`load` gives the training format (what the
data modules and statistics read); :func:`load_frames` gives ``ase.Atoms`` for the edges (the
calculator, MD, fine-tuning's head ranking).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import ase
import datasets

from lam.data.training_format import (
    SCHEMA,
    atoms_to_row,
    is_training_dataset,
    load_training_dataset,
    row_to_atoms,
)

Source = str | Path | datasets.Dataset | Sequence[ase.Atoms]


def _registered(name: str) -> datasets.Dataset:
    from lam.data.registry import UnknownDatasetError, load_registered

    try:
        return load_registered(name)
    except UnknownDatasetError as error:
        raise FileNotFoundError(
            f"{name}: no such file or directory, and not a registered dataset ({error})"
        ) from None


def load(source: Source) -> datasets.Dataset:
    """``source`` as a training-format ``datasets.Dataset`` (memory-mapped where it comes from disk)."""
    if isinstance(source, datasets.Dataset):
        return source
    if isinstance(source, (str, Path)):
        if is_training_dataset(source):
            return load_training_dataset(source)
        if not Path(source).exists():
            return _registered(str(source))
        from lam.data.readers import read_frames

        source = list(read_frames(source))
    rows = [atoms_to_row(atoms, head="default") for atoms in source]
    return datasets.Dataset.from_list(rows, features=SCHEMA)


def iter_frames(source: Source) -> Iterator[ase.Atoms]:
    """``source`` as labelled ``ase.Atoms``, one at a time (a file larger than memory streams)."""
    if isinstance(source, (str, Path)) and Path(source).exists() and not is_training_dataset(source):
        from lam.data.readers import read_frames

        yield from read_frames(source)
    elif isinstance(source, (str, Path, datasets.Dataset)):
        yield from (row_to_atoms(row) for row in load(source))
    else:
        yield from source


def load_frames(source: Source) -> list[ase.Atoms]:
    """``source`` as labelled ``ase.Atoms`` (labels in a ``SinglePointCalculator``)."""
    return list(iter_frames(source))


def sample_frames(source: Source, n_frames: int, seed: int) -> list[ase.Atoms]:
    """A seeded random sample of ``n_frames`` frames of ``source`` (all of them, shuffled, if fewer).

    Only the sampled rows become ``ase.Atoms``, so sampling a large registered dataset stays cheap.
    """
    import numpy as np

    dataset = load(source)
    order = np.random.default_rng(seed).permutation(len(dataset))[:n_frames]
    return [row_to_atoms(dataset[int(i)]) for i in order]
