"""ANI-1x (``ani1x-release.h5``, Smith et al. 2020) to ``ase.Atoms`` frames.

Published layout: one HDF5 group per molecular formula (e.g. ``C2H6O``) holding
``atomic_numbers`` [N], ``coordinates`` [M, N, 3] Å and per-level labels named
``<level>.<property>``: ``wb97x_dz.energy`` [M] Ha, ``wb97x_dz.forces`` [M, N, 3] Ha/Å,
``wb97x_tz.*``, ``ccsd(t)_cbs.energy``, charges and moments. A conformer that was not computed at
a level has NaN there (the ``wb97x_tz`` and ``ccsd(t)_cbs`` subsets cover only part of the file).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import ase
import h5py
import numpy as np
from ase import units

from lam.data.converters._frames import labelled_atoms

log = logging.getLogger(__name__)


def read_ani1x_h5(path: str | Path, level: str = "wb97x_dz") -> Iterator[ase.Atoms]:
    """Yield the conformers of an ANI-1x HDF5 file labelled at one level of theory.

    Energies are converted Ha -> eV and forces Ha/Å -> eV/Å with ``ase.units``. Conformers whose
    energy at ``level`` is NaN (not computed at that level) are not frames of this dataset; they
    are counted and reported with a warning per formula group, never dropped silently.

    Args:
        path: ``ani1x-release.h5`` or a file with the same layout.
        level: label prefix: ``wb97x_dz`` (ωB97x/6-31G*, the ANI-1x level), ``wb97x_tz``
            (ωB97x/def2-TZVPP) or ``ccsd(t)_cbs`` (energies only).
    """
    path = Path(path)
    with h5py.File(path, "r") as f:
        for formula, group in f.items():
            energy_key, forces_key = f"{level}.energy", f"{level}.forces"
            if energy_key not in group:
                raise KeyError(f"{path} group '{formula}': field '{energy_key}': missing (level '{level}')")
            numbers = group["atomic_numbers"][()]
            coordinates = group["coordinates"][()]
            energies = group[energy_key][()] * units.Hartree
            forces = group[forces_key][()] * units.Hartree if forces_key in group else None
            computed = np.isfinite(energies)
            if not computed.all():
                log.warning(
                    "%s group '%s': %d of %d conformers have no %s (NaN), not yielded",
                    path,
                    formula,
                    int((~computed).sum()),
                    len(energies),
                    energy_key,
                )
            for index in np.flatnonzero(computed):
                yield labelled_atoms(
                    numbers,
                    coordinates[index],
                    frame_id=f"{path}#{formula}/{index}",
                    energy=energies[index],
                    forces=None if forces is None else forces[index],
                    info={"formula": formula, "conformer": int(index), "level": level},
                )
