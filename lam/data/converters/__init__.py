"""Converters from the published layouts of public LAM datasets to ``ase.Atoms`` frames.

Each converter is a function ``(path, **options) -> Iterator[ase.Atoms]`` that yields frames in
the shared in-memory contract: energy in eV, forces in eV/Å and stress in eV/Å^3 with ASE's sign,
held by a ``SinglePointCalculator``, and ``info["frame_id"] = "<path>#<key in the source>"``.
Registry cards name their converter in the ``format`` field; :data:`CONVERTERS` is that table.

A downloaded public dataset becomes a training set with, for example::

    frames = convert("MPtrj_2022.9_full.json", "mptrj-json")
    write_training_dataset(frames, "mptrj_training", head="mptrj")  # lam.data.training_format
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import ase

from lam.data.converters.ani1x import read_ani1x_h5
from lam.data.converters.aselmdb import read_aselmdb
from lam.data.converters.mptrj import read_mptrj_json
from lam.data.converters.oc20 import read_oc20_s2ef
from lam.data.converters.spice import read_spice_h5
from lam.data.converters.transition1x import read_transition1x_h5


def read_extxyz(path: str | Path) -> Iterator[ase.Atoms]:
    """Extended XYZ (plain, .gz or .xz), through the project reader (validation and frame ids)."""
    from lam.data.readers import read_frames  # lazy: keeps this package light to import

    yield from read_frames(path, format="extxyz")


def read_training(path: str | Path) -> Iterator[ase.Atoms]:
    """A lam training-format directory (e.g. a set written by ``lam data generate``)."""
    from lam.data.readers import read_frames

    yield from read_frames(path, format="training")


CONVERTERS: dict[str, Callable[..., Iterator[ase.Atoms]]] = {
    "extxyz": read_extxyz,
    "training": read_training,
    "mptrj-json": read_mptrj_json,
    "ani1x-h5": read_ani1x_h5,
    "transition1x-h5": read_transition1x_h5,
    "spice-h5": read_spice_h5,
    "oc20-s2ef": read_oc20_s2ef,
    "aselmdb": read_aselmdb,
}


def convert(path: str | Path, format: str, **options: object) -> Iterator[ase.Atoms]:
    """Frames of ``path`` read with the converter named ``format`` (a key of :data:`CONVERTERS`)."""
    if format not in CONVERTERS:
        raise ValueError(f"{path}: unknown format {format!r}; known formats: {', '.join(CONVERTERS)}")
    return CONVERTERS[format](path, **options)


__all__ = [
    "CONVERTERS",
    "convert",
    "read_ani1x_h5",
    "read_aselmdb",
    "read_extxyz",
    "read_mptrj_json",
    "read_oc20_s2ef",
    "read_spice_h5",
    "read_training",
    "read_transition1x_h5",
]
