"""The one reader of a frame's labels (energy, forces, stress), and stress layouts via ``ase.stress``.

Labels live in the attached calculator's ``results`` (how ``ase.io`` returns them); ``info`` and
``arrays`` are the fallback, in that order. Training, statistics, validation and writers all read
labels here, so a frame counts as having forces everywhere or nowhere.
"""

from __future__ import annotations

import ase
import numpy as np
from ase.stress import full_3x3_to_voigt_6_stress, voigt_6_to_full_3x3_stress


def raw_label(atoms: ase.Atoms, name: str) -> object | None:
    """The label ``name`` as stored (not converted: validation checks its type), or None when absent."""
    calc = atoms.calc
    results = getattr(calc, "results", {}) if calc is not None else {}
    for store in (results, atoms.info, atoms.arrays):
        if store.get(name) is not None:
            return store[name]
    return None


def read_label(atoms: ase.Atoms, name: str) -> np.ndarray | None:
    """The label ``name`` as a float64 array (eV, eV/Å, eV/Å^3), or None when absent."""
    value = raw_label(atoms, name)
    return None if value is None else np.asarray(value, dtype=np.float64)


def stress_3x3(stress: object) -> np.ndarray:
    """Voigt [6] (xx yy zz yz xz xy, ASE order) or [3, 3] stress as a [3, 3] float64 array."""
    stress = np.asarray(stress, dtype=np.float64)
    return voigt_6_to_full_3x3_stress(stress) if stress.shape == (6,) else stress.reshape(3, 3)


def stress_voigt(stress: object) -> np.ndarray:
    """[3, 3] stress as ASE's Voigt [6] (xx yy zz yz xz xy)."""
    return full_3x3_to_voigt_6_stress(np.asarray(stress, dtype=np.float64).reshape(3, 3))


def missing_label_message(frames: list[ase.Atoms], labels: tuple[str, ...], source: str) -> str | None:
    """One sentence on the frames of ``source`` that lack any of ``labels`` (None when none does).

    Such frames still train the labels they have; the sentence names how many lack what, and the
    first few frame ids, so that none is left out silently.
    """
    parts = []
    for name in labels:
        lacking = [i for i, atoms in enumerate(frames) if raw_label(atoms, name) is None]
        ids = [str(frames[i].info.get("frame_id", f"#{i}")) for i in lacking]
        if ids:
            first = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
            parts.append(f"{len(ids)} of {len(frames)} frames have no {name} ({first})")
    if not parts:
        return None
    return f"{source}: {'; '.join(parts)}: they are left out of those terms of the loss"
