"""Transition1x (``Transition1x.h5``, Schreiner et al. 2022) to ``ase.Atoms`` frames.

Published layout: top-level groups ``data`` (everything) and ``train``/``val``/``test`` (the
published split, same structure), each ``<split>/<formula>/<reaction>/`` holding
``atomic_numbers`` [N], ``positions`` [M, N, 3] Å, ``wB97x_6-31G(d).energy`` [M] eV,
``wB97x_6-31G(d).forces`` [M, N, 3] eV/Å and ``wB97x_6-31G(d).atomization_energy`` [M] eV, plus
subgroups ``reactant``, ``product`` and ``transition_state`` with the same fields for the
end points. Units are already eV and Å, so no conversion is applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import ase
import h5py

from lam.data.converters._frames import labelled_atoms

LEVEL = "wB97x_6-31G(d)"


def read_transition1x_h5(
    path: str | Path, split: Literal["data", "train", "val", "test"] = "data"
) -> Iterator[ase.Atoms]:
    """Yield the NEB images of every reaction in one split of a Transition1x file.

    The per-reaction arrays are yielded, as the authors' own loader does; the ``reactant``,
    ``product`` and ``transition_state`` subgroups repeat configurations of the path and are not
    yielded again. ``info`` carries ``formula``, ``reaction``, ``image`` and ``atomization_energy``.

    Args:
        path: ``Transition1x.h5`` or a file with the same layout.
        split: top-level group to read.
    """
    path = Path(path)
    with h5py.File(path, "r") as f:
        if split not in f:
            raise KeyError(f"{path}: field '{split}': no such split (have {sorted(f)})")
        for formula, reactions in f[split].items():
            for reaction, group in reactions.items():
                numbers = group["atomic_numbers"][()]
                positions = group["positions"][()]
                energies = group[f"{LEVEL}.energy"][()]
                forces = group[f"{LEVEL}.forces"][()]
                atomization = group[f"{LEVEL}.atomization_energy"][()]
                for image in range(len(energies)):
                    yield labelled_atoms(
                        numbers,
                        positions[image],
                        frame_id=f"{path}#{split}/{formula}/{reaction}/{image}",
                        energy=energies[image],
                        forces=forces[image],
                        info={
                            "formula": formula,
                            "reaction": reaction,
                            "image": image,
                            "atomization_energy": float(atomization[image]),
                        },
                    )
