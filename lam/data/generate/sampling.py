"""Structure perturbations shared by the recipes: random strain and short Langevin MD."""

import ase
import numpy as np
from ase.calculators.calculator import Calculator
from ase.md.langevin import Langevin

try:  # ase >= 3.29 renamed MaxwellBoltzmannDistribution
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # pragma: no cover - older ase
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
from ase.units import fs


def random_strain(atoms: ase.Atoms, rng: np.random.Generator, max_strain: float) -> ase.Atoms:
    """A copy with the cell deformed by a random symmetric strain (components in ±max_strain)."""
    strained = atoms.copy()
    strain = rng.uniform(-max_strain, max_strain, size=(3, 3))
    strain = 0.5 * (strain + strain.T)
    strained.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
    return strained


def langevin_snapshot(
    atoms: ase.Atoms, calculator: Calculator, rng: np.random.Generator, temperature_K: float,
    steps: int, timestep_fs: float = 1.0,
) -> ase.Atoms:
    """The last frame of a short Langevin MD run (friction 0.02/fs) at ``temperature_K``.

    Starts from Maxwell-Boltzmann velocities; every random number comes from ``rng``, so a run is
    reproducible. ``steps`` steps of ``timestep_fs`` femtoseconds.
    """
    moving = atoms.copy()
    moving.calc = calculator
    thermalize_momenta(moving, temperature_K=temperature_K, rng=rng)
    dynamics = Langevin(moving, timestep=timestep_fs * fs, temperature_K=temperature_K,
                        friction=0.02 / fs, fixcm=False, rng=rng)
    dynamics.run(steps)
    snapshot = moving.copy()  # drops the driving calculator; labels are attached later
    snapshot.arrays.pop("momenta", None)  # velocities are not labels; keep files small
    return snapshot
