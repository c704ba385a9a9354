"""MPtrj (``MPtrj_2022.9_full.json``, Deng et al. 2023) to ``ase.Atoms`` frames.

Published layout (one JSON object)::

    {mp_id: {frame_id: {"structure": <pymatgen Structure dict>,
                        "uncorrected_total_energy": eV, "corrected_total_energy": eV (MP2020),
                        "force": [N][3] eV/Å, "stress": [3][3] kBar (VASP sign: positive = compressive),
                        "magmom": [N] μB or null, "energy_per_atom", "ef_per_atom", "bandgap", "mp_id", ...}}}

The pymatgen dict is parsed here (``lattice.matrix`` rows in Å, ``sites[i].species``/``xyz``), so
pymatgen is not needed. The whole file is one JSON document (about 12 GB for the full release), so
``json.load`` needs memory of that order; convert it once to the training format.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

import ase
import numpy as np
from ase import units
from ase.data import atomic_numbers

from lam.data.converters._frames import labelled_atoms

# VASP/MPtrj stress is in kBar with positive = compressive; ASE's is eV/Å^3 with positive = tensile.
KBAR_TO_ASE_STRESS = -0.1 * units.GPa


def _parse_structure(structure: Mapping, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Numbers [N], positions [N, 3] Å, cell [3, 3] Å and pbc [3] from a pymatgen Structure dict."""
    lattice = structure["lattice"]
    cell = np.asarray(lattice["matrix"], dtype=np.float64).reshape(3, 3)
    pbc = np.asarray(lattice.get("pbc", (True, True, True)), dtype=bool)
    numbers, positions = [], []
    for i, site in enumerate(structure["sites"]):
        species = site["species"]
        if len(species) != 1 or abs(float(species[0].get("occu", 1.0)) - 1.0) > 1e-8:
            raise ValueError(f"{where}: field 'structure.sites[{i}].species': disordered site {species}")
        element = species[0]["element"]
        if element not in atomic_numbers:
            raise ValueError(f"{where}: field 'structure.sites[{i}].species': unknown element {element!r}")
        numbers.append(atomic_numbers[element])
        # Cartesian xyz is stored by pymatgen; fractional abc is the fallback.
        xyz = site.get("xyz")
        positions.append(xyz if xyz is not None else np.asarray(site["abc"]) @ cell)
    return np.asarray(numbers), np.asarray(positions, dtype=np.float64).reshape(-1, 3), cell, pbc


def mptrj_frame_to_atoms(
    record: Mapping, frame_id: str, energy: Literal["uncorrected", "corrected"] = "uncorrected"
) -> ase.Atoms:
    """One MPtrj frame record to ``ase.Atoms`` (eV, eV/Å, eV/Å^3 with ASE sign).

    Args:
        record: the dict stored under ``[mp_id][frame_key]``.
        frame_id: "<file>#<mp_id>/<frame_key>".
        energy: which total energy becomes the ``energy`` label; the other goes to ``info``.
    """
    numbers, positions, cell, pbc = _parse_structure(record["structure"], frame_id)
    stress = record.get("stress")
    magmom = record.get("magmom")
    info = {
        "mp_id": record.get("mp_id", frame_id.rsplit("#", 1)[-1].split("/")[0]),
        "uncorrected_total_energy": record.get("uncorrected_total_energy"),
        "corrected_total_energy": record.get("corrected_total_energy"),
    }
    atoms = labelled_atoms(
        numbers,
        positions,
        frame_id=frame_id,
        energy=record[f"{energy}_total_energy"],
        forces=None if record.get("force") is None else np.asarray(record["force"]).reshape(-1, 3),
        stress=None
        if stress is None
        else np.asarray(stress, dtype=np.float64).reshape(3, 3) * KBAR_TO_ASE_STRESS,
        cell=cell,
        pbc=pbc,
        info={k: v for k, v in info.items() if v is not None},
    )
    if magmom is not None:  # DFT output moments, μB; kept as a per-atom array for analysis
        atoms.arrays["magmom"] = np.asarray(magmom, dtype=np.float64).reshape(len(atoms))
    return atoms


def read_mptrj_json(
    path: str | Path, energy: Literal["uncorrected", "corrected"] = "uncorrected"
) -> Iterator[ase.Atoms]:
    """Yield every frame of an MPtrj JSON file, in file order.

    Args:
        path: ``MPtrj_2022.9_full.json`` or a file with the same layout.
        energy: ``"uncorrected"`` (raw DFT, the default, like the shipped ``mptrj_random1k_pbe``)
            or ``"corrected"`` (MP2020-corrected) total energy as the ``energy`` label.
    """
    path = Path(path)
    with path.open() as f:
        data = json.load(f)
    for mp_id, frames in data.items():
        for key, record in frames.items():
            yield mptrj_frame_to_atoms(record, f"{path}#{mp_id}/{key}", energy=energy)
