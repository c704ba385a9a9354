"""Exploration and labelling: Langevin MD driven by the teacher (and the student), teacher labels."""

from __future__ import annotations

from collections.abc import Sequence

import ase
import numpy as np
from ase import units
from ase.md.langevin import Langevin
from ase.md.md import MolecularDynamics
from ase.md.nptberendsen import NPTBerendsen
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from lam.calculator import LAMCalculator
from lam.data.validate import InvalidFrameError, validate_atoms
from lam.train.distill.labelling import label_with_lightning
from lam.train.distill.options import DistillOptions


def run_md(
    start: ase.Atoms, calc: LAMCalculator, options: DistillOptions, seed: int, name: str,
    max_force: float | None = None, include_start: bool = True, rejected: list[dict] | None = None,
    temperature_K: float | None = None, pressure_GPa: float | None = None,
) -> list[ase.Atoms]:
    """Langevin NVT (or Berendsen NPT) from ``start``; every ``sample_every``-th frame, unlabelled.

    Every kept frame must pass :func:`~lam.data.validate.validate_atoms` (no two atoms closer than
    ``options.min_distance``): a trajectory that collapses stops there, and the frame is recorded in
    ``rejected`` instead of being labelled and trained on.

    Args:
        start: starting structure (not modified).
        calc: the MD driver (teacher or student).
        options: temperature, steps, time step, friction, strain.
        seed: seed of the strain, initial velocities and the thermostat noise.
        name: prefix of the frames' ``frame_id`` (``{name}-step{n}``).
        max_force: stop early when a force component exceeds this (eV/Å); None: never.
        include_start: keep step 0 (off when another trajectory already sampled this start).
        rejected: receives ``{"frame_id", "field", "reason"}`` for each frame refused by validation.
        temperature_K: thermostat temperature (None: the first of ``options.temperatures``).
        pressure_GPa: run NPT at this pressure (periodic cells only); None: NVT.
    """
    temperature = options.temperatures[0] if temperature_K is None else temperature_K
    rng = np.random.default_rng(seed)
    atoms = start.copy()
    if options.strain > 0 and atoms.pbc.all():
        strain = rng.uniform(-options.strain, options.strain, (3, 3))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.5 * (strain + strain.T)), scale_atoms=True)
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    md = _integrator(atoms, options, temperature, pressure_GPa, rng)
    frames = []
    for _ in md.irun(steps=options.md_steps):  # yields after the forces of step md.nsteps
        runaway = max_force is not None and float(np.abs(atoms.get_forces()).max()) > max_force
        if (md.nsteps % options.sample_every == 0 and (md.nsteps > 0 or include_start)) or runaway:
            # geometry only (no calculator, no velocities): the teacher labels it later
            frame = ase.Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc,
                              info={"frame_id": f"{name}-step{md.nsteps}"})
            try:
                validate_atoms(frame, name, md.nsteps, min_distance=options.min_distance)
            except InvalidFrameError as error:  # collapsed: atoms on top of each other
                if rejected is not None:
                    rejected.append(error.to_dict())
                break
            frames.append(frame)
        if runaway:
            break
    return frames


def _integrator(
    atoms: ase.Atoms, options: DistillOptions, temperature: float, pressure_GPa: float | None,
    rng: np.random.Generator,
) -> MolecularDynamics:
    """Langevin NVT, or for a periodic cell at a pressure, Berendsen NPT (isotropic cell scaling).

    Berendsen's barostat does not sample the NPT ensemble exactly, but exploration needs the volumes
    a pressure reaches, not their exact distribution; it is in every ASE version lam supports.
    """
    timestep = options.timestep_fs * units.fs
    if pressure_GPa is None:
        return Langevin(atoms, timestep=timestep, temperature_K=temperature,
                        friction=options.friction_per_fs / units.fs, fixcm=False, rng=rng)
    if not atoms.pbc.all():
        raise ValueError(f"NPT needs a periodic cell; {atoms.get_chemical_formula()} is not periodic")
    return NPTBerendsen(atoms, timestep=timestep, temperature_K=temperature,
                        pressure_au=pressure_GPa * units.GPa, taut=100 * units.fs, taup=500 * units.fs,
                        compressibility_au=1.0 / (100 * units.GPa))  # a typical solid's bulk modulus


def label_frames(
    frames: Sequence[ase.Atoms], teacher: LAMCalculator, devices: int = 1, accelerator: str | None = None,
) -> list[ase.Atoms]:
    """Attach the teacher's energy (eV), forces (eV/Å) and, for bulk cells, stress (eV/Å^3).

    The frames go through Lightning's predict loop in batches (:mod:`.labelling`) with the
    calculator's model, head and precision: the numbers of one calculator call per frame, at a
    fraction of the per-call overhead, on ``devices`` processes of ``accelerator``.
    """
    return label_with_lightning(frames, teacher.model, teacher.head, devices, accelerator,
                                allow_unseen_elements=teacher.allow_unseen_elements)


def split_holdout(frames: Sequence[ase.Atoms], fraction: float, seed: int) -> tuple[list, list]:
    """Seeded (train, held-out) split with at least one frame on each side when there are two."""
    order = np.random.default_rng(seed).permutation(len(frames))
    n_held = min(max(1, round(fraction * len(frames))), len(frames) - 1) if len(frames) > 1 else 0
    return [frames[i] for i in sorted(order[n_held:])], [frames[i] for i in sorted(order[:n_held])]
