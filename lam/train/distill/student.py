"""The student: built from the teacher's head, trained on teacher labels, timed against the teacher."""

from __future__ import annotations

import os
import time
import timeit
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import ase
import numpy as np
import torch
from ase import units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

from lam.calculator import LAMCalculator
from lam.data.datamodule import MultiTaskDataModule
from lam.data.neighbors import neighbor_list
from lam.data.statistics import force_rms
from lam.hub.models import ModelRef
from lam.model.config import HeadSpec, preset
from lam.model.lam import LAM
from lam.train.distill.options import DistillOptions
from lam.train.losses import EnergyForceStressLoss
from lam.train.module import LAMTask
from lam.train.refit import MIN_FORCE_SCALE, fit_environment, refit_energy_references
from lam.train.schedules import LRSchedule
from lam.train.trainer import build_trainer


def build_student(teacher: LAM, head: str, teacher_ref: ModelRef, options: DistillOptions) -> LAM:
    """A fresh student with one head named like the teacher's, with the teacher head's references.

    Copying the per-element references makes isolated atoms agree exactly from step 0 (both models
    give an isolated atom its reference energy), so training only learns the interaction part.
    """
    spec = next(h for h in teacher.config.heads if h.name == head)
    level = f"distilled from {teacher_ref.describe()} head {head} ({spec.level_of_theory})"
    torch.manual_seed(options.seed)
    student = LAM(replace(preset(options.student), heads=(HeadSpec(head, level, spec.datasets),)))
    student.heads[head].set_energy_references(teacher.heads[head].energy_references())
    # the energy scale is set from the first labels (lam.train.distill.run): the teacher's fits the
    # teacher's trained MLP, and a fresh MLP's outputs under it can be hundreds of times too large
    return student.to({"float32": torch.float32, "float64": torch.float64}[options.dtype])


def prepare_fresh_student(student: LAM, head: str, frames: Sequence[ase.Atoms]) -> None:
    """Fit a fresh student's environment statistics, energy scale and references to its first labels.

    The neighbour sum is divided by the labels' mean neighbour count (DeePMD divides by its ``sel``):
    under the preset's 64 slots an ethanol student's descriptor is (8/64)^2 of a crystal's, and it
    learns slower (held-out force error 0.73 against 0.51 of the teacher's RMS after 500 steps).
    The scale is the labels' force RMS, the size of what the MLP must learn (as pretraining sets it).
    The teacher's own scale fits the teacher's trained MLP: under it a fresh MLP's outputs can be
    hundreds of times too large, and the student then spends its training shrinking them. The
    references (the teacher's isolated-atom energies) are then shifted by least squares so that the
    student's mean energy matches the labels (DeePMD-kit's change-by-statistic): otherwise the MLP
    has to learn the whole binding energy (eV per atom) through small gradient steps.
    """
    fit_environment(student, frames)
    set_neighbor_normalizer(student, mean_neighbor_count(frames, student.cutoff))
    scale = force_rms(frames)
    if scale is not None and scale >= MIN_FORCE_SCALE:
        student.heads[head].energy_scale.fill_(scale)
    refit_energy_references(student, frames, head)  # one fixed composition: the min-norm shift


def mean_neighbor_count(frames: Sequence[ase.Atoms], cutoff: float, n_frames: int = 32) -> float:
    """Mean number of neighbours within ``cutoff`` per atom over (up to ``n_frames`` of) ``frames``."""
    sample = list(frames)[:n_frames]
    edges = sum(neighbor_list(f.positions, f.cell.array, f.pbc, cutoff)[0].shape[1] for f in sample)
    return max(edges / max(sum(len(f) for f in sample), 1), 1.0)  # >= 1: an isolated atom divides by 1


def set_neighbor_normalizer(student: LAM, value: float) -> None:
    """Set the student descriptor's neighbour-sum divisor, in its config too (it is saved with the model)."""
    descriptor_config = replace(student.config.descriptor, neighbor_normalizer=round(float(value), 3))
    student.config = replace(student.config, descriptor=descriptor_config)
    student.descriptor.config = descriptor_config
    student.descriptor.two_body.normalizer = descriptor_config.neighbor_normalizer


def train_student(
    student: LAM, head: str, frames: Sequence[ase.Atoms], options: DistillOptions, log_dir: Path,
    version: str,
) -> int:
    """Train ``student`` in place on teacher-labelled ``frames`` with ``LAMTask``; returns the steps taken.

    Then its energies are re-centred on ``frames``: training weighs energies little against forces
    (DeePMD's schedule) and lets the mean energy drift (0.5 eV/atom off on 192-atom water after one
    quick iteration). Forces fix energies up to a constant per element, which the least-squares
    reference shift (DeePMD's change-bias) restores.
    """
    steps = options.steps_per_iteration
    if steps == 0:
        return 0
    loss = EnergyForceStressLoss(
        energy_start=options.start_pref_e, energy_limit=options.limit_pref_e,
        forces_start=options.start_pref_f, forces_limit=options.limit_pref_f,
        stress_start=options.stress_weight, stress_limit=options.stress_weight,
    )
    task = LAMTask(student, loss=loss, lr=options.lr, lr_schedule=LRSchedule("exp", decay_steps=steps,
                   final_ratio=0.05), ema_decay=None, dtype=options.dtype, fit_energy_references=False)
    data = MultiTaskDataModule({head: list(frames)}, batch_size=options.batch_size, val_fraction=0.0,
                               seed=options.seed, cutoff=student.cutoff, steps_per_epoch=steps,
                               cache_graphs=True)
    trainer = build_trainer(options, max_steps=steps, run_dir=log_dir, name=f"student-{version}",
                            val_every=steps, logger_version=version)
    student.train()  # Lightning keeps the mode it is given: after speed checks that is eval
    trainer.fit(task, train_dataloaders=data.train_dataloader())
    student.cpu()
    refit_energy_references(student, frames, head)
    return int(trainer.global_step)


def speed_us_per_atom(model: LAM, head: str, atoms: ase.Atoms, dtype: str, repeats: int = 5) -> float:
    """Median wall time of one energy + forces call through ``LAMCalculator``, µs per atom.

    Each call searches neighbours afresh (``skin=0``), as a single-point evaluation does; in MD the
    calculator's skin skips most searches.
    """
    calc = LAMCalculator(model, head=head, dtype=dtype, skin=0.0)
    # the first call is a warm-up (allocations, lazy initialisation)
    times = timeit.repeat(lambda: calc.calculate(atoms, ["energy", "forces"]), number=1, repeat=repeats + 1)
    return float(np.median(times[1:])) * 1e6 / len(atoms)


def md_atom_steps_per_s(model: LAM, head: str, atoms: ase.Atoms, dtype: str, steps: int = 20) -> float:
    """ASE Velocity Verlet (1 fs) speed with ``LAMCalculator`` (its MD skin), atom-steps/s, after 3 steps."""
    atoms = atoms.copy()
    atoms.calc = LAMCalculator(model, head=head, dtype=dtype)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dynamics = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dynamics.run(3)  # warm-up: allocations, the first neighbour list
    start = time.perf_counter()
    dynamics.run(steps)
    return steps * len(atoms) / (time.perf_counter() - start)


def compare_speed(teacher: LAM, student: LAM, head: str, start: ase.Atoms, dtype: str) -> dict[str, Any]:
    """Teacher and student speed in this process, on ``start`` (bulk repeated to >= 64 atoms).

    Both a single point (µs/atom, fresh neighbour search) and MD (atom-steps/s, the same ASE
    integrator for both): MD is what a student is for, and its calculator reuses neighbour lists.
    """
    atoms = start.copy()
    if atoms.pbc.all():
        atoms = atoms.repeat(int(np.ceil((64 / len(atoms)) ** (1 / 3))))
    teacher_us = speed_us_per_atom(teacher, head, atoms, dtype)
    student_us = speed_us_per_atom(student, head, atoms, dtype)
    teacher_md = md_atom_steps_per_s(teacher, head, atoms, dtype)
    student_md = md_atom_steps_per_s(student, head, atoms, dtype)
    return {"teacher_us_per_atom": teacher_us, "student_us_per_atom": student_us,
            "speedup": teacher_us / student_us, "teacher_md_atom_steps_per_s": teacher_md,
            "student_md_atom_steps_per_s": student_md, "md_speedup": student_md / teacher_md,
            "n_atoms": len(atoms), "dtype": dtype, "device": "cpu",
            "torch_threads": torch.get_num_threads(), "load_average_1min": os.getloadavg()[0],
            "cpu_count": os.cpu_count()}
