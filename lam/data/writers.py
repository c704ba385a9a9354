"""``write_frames``: write frames to any supported destination, refusing to overwrite by default.

Formats (``format`` names; inferred from ``path`` when None):

- ``training``: the training format (:mod:`lam.data.training_format`); a path with no suffix or
  ending in ``/``;
- ``extxyz``: extended XYZ (``.xyz``, ``.extxyz``, optionally ``.gz``/``.bz2``/``.xz``), written
  losslessly: every float with its shortest round-trip repr (``ase.io``'s writer rounds per-atom
  values to 8 decimals, which breaks bitwise float64 round trips);
- ``db``: an ASE database (``.db``), with ``head`` and ``frame_id`` as key-value pairs;
- ``deepmd``: DeePMD-kit deepmd/npy system directory/ies (:mod:`lam.data.deepmd_npy`);
- any other ``ase.io`` format name or extension (``traj``, ``cif``, ``vasp`` ...), through ``ase.io.write``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import ase
import ase.db
import ase.io
import numpy as np
from ase.io.extxyz import key_val_dict_to_str
from ase.io.formats import open_with_compression

from lam.data import deepmd_npy
from lam.data.labels import raw_label, stress_3x3
from lam.data.training_format import prepare_output_dir, write_training_dataset
from lam.data.validate import LABELS

_PROPERTY_TYPES = {"f": "R", "i": "I", "u": "I", "b": "L", "U": "S", "S": "S"}


def output_format(path: str | Path, format: str | None = None) -> str:
    """The writer name for ``path``: ``format`` if given, else from the suffix (see module docstring)."""
    if format:
        return format
    text = str(path)
    suffixes = Path(text.rstrip("/")).suffixes
    if text.endswith("/") or not suffixes:
        return "training"
    suffix = suffixes[-2] if suffixes[-1] in (".gz", ".bz2", ".xz") and len(suffixes) > 1 else suffixes[-1]
    if suffix in (".xyz", ".extxyz"):
        return "extxyz"
    if suffix == ".db":
        return "db"
    return suffix[1:]  # let ase.io resolve the extension (traj, cif, ...)


def _cell_string(value: object) -> str:
    """One per-atom value as extended-XYZ text, lossless for floats."""
    if isinstance(value, (bool, np.bool_)):
        return "T" if value else "F"
    return repr(value) if isinstance(value, float) else str(value)


def _extxyz_frame(atoms: ase.Atoms) -> str:
    """One frame as extended XYZ text with labels (energy, stress [3, 3], per-atom forces)."""
    columns: dict[str, np.ndarray] = {
        "species": np.array(atoms.get_chemical_symbols()),
        "pos": atoms.positions,
    }
    forces = raw_label(atoms, "forces")
    if forces is not None:
        columns["forces"] = np.asarray(forces, dtype=np.float64)
    for name, values in atoms.arrays.items():  # extra per-atom arrays (tags, fixed flags ...)
        if name not in ("numbers", "positions", "forces") and values.dtype.kind in _PROPERTY_TYPES:
            columns[name] = values
    properties = ":".join(
        f"{name}:{_PROPERTY_TYPES[v.dtype.kind]}:{1 if v.ndim == 1 else v.shape[1]}"
        for name, v in columns.items()
    )
    header: dict[str, object] = {}
    if atoms.cell.any():
        header["Lattice"] = atoms.cell.array.T  # extxyz stores the transpose, flattened in Fortran order
    header["Properties"] = properties
    energy = raw_label(atoms, "energy")
    if energy is not None:
        header["energy"] = float(np.asarray(energy, dtype=np.float64).reshape(()))
    stress = raw_label(atoms, "stress")
    if stress is not None:
        header["stress"] = stress_3x3(stress)
    header.update({k: v for k, v in atoms.info.items() if k not in LABELS})
    header["pbc"] = np.asarray(atoms.pbc, dtype=bool)
    lines = [str(len(atoms)), key_val_dict_to_str(header)]
    per_atom = [v.reshape(len(atoms), -1).tolist() for v in columns.values()]
    for i in range(len(atoms)):
        lines.append(" ".join(_cell_string(x) for values in per_atom for x in values[i]))
    return "\n".join(lines) + "\n"


def _write_extxyz(frames: Iterable[ase.Atoms], path: Path) -> int:
    count = 0
    with open_with_compression(str(path), "w") as fd:
        for atoms in frames:
            fd.write(_extxyz_frame(atoms))
            count += 1
    return count


def _write_db(frames: Iterable[ase.Atoms], path: Path) -> int:
    count = 0
    with ase.db.connect(str(path), append=False) as db:
        for atoms in frames:
            pairs = {k: atoms.info[k] for k in ("head", "frame_id") if k in atoms.info}
            db.write(atoms, key_value_pairs=pairs)
            count += 1
    return count


def _counted(frames: Iterable[ase.Atoms], counter: list[int]) -> Iterator[ase.Atoms]:
    for atoms in frames:
        counter[0] += 1
        yield atoms


def write_frames(
    frames: Iterable[ase.Atoms],
    path: str | Path,
    format: str | None = None,
    overwrite: bool = False,
    head: str = "default",
) -> int:
    """Write frames to ``path``; returns the number of frames written.

    Args:
        frames: frames with labels in their calculators (eV, eV/Å, eV/Å^3 ASE sign).
        path: output file or directory.
        format: writer name (see the module docstring); None infers it from ``path``.
        overwrite: replace an existing output; without it an existing file or non-empty
            directory is refused before anything is written.
        head: head name for frames without ``info["head"]`` (training format only).
    """
    explicit_format = format
    format = output_format(path, format)
    path = Path(path)
    if format == "training":
        counter = [0]
        write_training_dataset(_counted(frames, counter), path, head=head, overwrite=overwrite)
        return counter[0]
    if format == "deepmd":
        prepare_output_dir(path, overwrite, is_ours=deepmd_npy.is_written_output(path))
        return deepmd_npy.write_systems(frames, path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite (overwrite=True) to replace it")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, expected a file for format {format}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write next to the target and rename at the end, so a failure (e.g. an invalid frame met
    # half-way) leaves no truncated output behind. The temporary name keeps the suffixes.
    partial = path.with_name(f".partial-{path.name}")
    try:
        count = _write_file(frames, partial, format, explicit_format)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return count


def _write_file(frames: Iterable[ase.Atoms], path: Path, format: str, explicit_format: str | None) -> int:
    """Write a single-file format to ``path``."""
    if format == "extxyz":
        return _write_extxyz(frames, path)
    if format == "db":
        return _write_db(frames, path)
    frames = list(frames)  # ase.io.write needs a sequence for single-frame formats' checks
    ase.io.write(str(path), frames, format=explicit_format)  # None: ase.io guesses from the name
    return len(frames)
