"""SPICE (``SPICE-*.hdf5``, Eastman et al. 2023) to ``ase.Atoms`` frames.

Published layout: one HDF5 group per molecule (named by its id or SMILES) holding
``atomic_numbers`` [N], ``conformations`` [M, N, 3] bohr, ``dft_total_energy`` [M] Ha,
``dft_total_gradient`` [M, N, 3] Ha/bohr (a gradient, so forces = -gradient), ``formation_energy``,
``mbis_charges``, ``smiles`` [1] and ``subset`` [1] strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ase
import h5py
from ase import units

from lam.data.converters._frames import labelled_atoms

HARTREE_PER_BOHR = units.Hartree / units.Bohr  # eV/Å


def _string(group: h5py.Group, key: str) -> str | None:
    """A scalar or [1] string dataset (bytes or str), or None when absent."""
    if key not in group:
        return None
    value = group[key][()]
    value = value.flat[0] if hasattr(value, "flat") else value
    return value.decode() if isinstance(value, bytes) else str(value)


def read_spice_h5(path: str | Path) -> Iterator[ase.Atoms]:
    """Yield every conformation of a SPICE HDF5 file (ωB97M-D3(BJ)/def2-TZVPPD labels).

    Positions are converted bohr -> Å, energies Ha -> eV, and forces = -gradient, Ha/bohr -> eV/Å.
    ``info`` carries ``molecule`` (group name), ``conformer``, ``smiles`` and ``subset``; the total
    charge is in the SMILES and is not derived here.

    Args:
        path: a SPICE HDF5 file (1.x or 2.x layout).
    """
    path = Path(path)
    with h5py.File(path, "r") as f:
        for name, group in f.items():
            numbers = group["atomic_numbers"][()]
            positions = group["conformations"][()] * units.Bohr
            energies = group["dft_total_energy"][()] * units.Hartree
            forces = -group["dft_total_gradient"][()] * HARTREE_PER_BOHR
            meta = {"molecule": name, "smiles": _string(group, "smiles"), "subset": _string(group, "subset")}
            for index in range(len(energies)):
                yield labelled_atoms(
                    numbers,
                    positions[index],
                    frame_id=f"{path}#{name}/{index}",
                    energy=energies[index],
                    forces=forces[index],
                    info={**{k: v for k, v in meta.items() if v is not None}, "conformer": index},
                )
