"""Build one labelled ``ase.Atoms`` frame: the shape every converter yields."""

from __future__ import annotations

from collections.abc import Mapping

import ase
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator


def labelled_atoms(
    numbers: np.ndarray,
    positions: np.ndarray,
    frame_id: str,
    energy: float | None = None,
    forces: np.ndarray | None = None,
    stress: np.ndarray | None = None,
    cell: np.ndarray | None = None,
    pbc: np.ndarray | bool = False,
    info: Mapping[str, object] | None = None,
) -> ase.Atoms:
    """An ``ase.Atoms`` with its labels in a ``SinglePointCalculator``.

    Args:
        numbers: [N] atomic numbers.
        positions: [N, 3] Cartesian positions, Å.
        frame_id: "<source path>#<key in the source>", stored in ``info["frame_id"]``.
        energy: total energy, eV, or None when the source has none.
        forces: [N, 3] forces, eV/Å (already -dE/dx), or None.
        stress: [3, 3] or Voigt [6] stress, eV/Å^3, ASE sign (positive = tensile), or None.
        cell: [3, 3] lattice vectors as rows, Å, or None for a molecule.
        pbc: periodicity, [3] or one bool.
        info: extra per-frame metadata from the source (ids, subsets).
    """
    atoms = ase.Atoms(
        numbers=np.asarray(numbers, dtype=int),
        positions=np.asarray(positions, dtype=np.float64),
        cell=None if cell is None else np.asarray(cell, dtype=np.float64),
        pbc=pbc,
    )
    results: dict[str, object] = {}
    if energy is not None:
        results["energy"] = float(energy)
    if forces is not None:
        results["forces"] = np.asarray(forces, dtype=np.float64)
    if stress is not None:
        results["stress"] = np.asarray(stress, dtype=np.float64)
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    atoms.info.update(info or {})
    atoms.info["frame_id"] = frame_id
    return atoms
