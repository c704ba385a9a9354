"""``DistillOptions``: the one definition of a distillation run (flags, recipe keys and Python API)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from lam.train.trainer import TrainerOptions, is_distributed, lightning_args

# beyond the pressure at Earth's centre (~360 GPa): a pressure in bar given as GPa
MAX_PRESSURE_GPA = 500.0
# what --quick caps: a try-out of a few minutes, not a useful student
QUICK_LIMITS = {"md_steps": 100, "steps_per_iteration": 1000, "iterations": 2}


@dataclass(frozen=True)
class DistillOptions(TrainerOptions):
    """Distil a teacher LAM into a fast student (DP-GEN-style iterations of MD, teacher labels, training).

    Attributes:
        teacher: teacher model: built-in name (``lam-mini``), local folder or Hub id ``org/name[@revision]``.
        structures: starting structures of the MD (any file ``lam data convert`` reads; labels are ignored).
        out: output model folder of the student.
        overwrite: replace a model already in ``out``.
        resume: continue a run killed in ``out`` at the stage it was in (checkpoints in ``out/rounds/``);
            with the same options it ends with the weights of an uninterrupted run.
        head: teacher head to distil (None: the teacher's only head); also the student's head name.
        student: preset of the student (``student``: the two-body (repinit-only) descriptor).
        temperatures: Langevin thermostat temperatures, K: one trajectory per starting structure
            and temperature (``--temperatures 300,600`` or ``--temperatures 300 --temperatures 600``).
        trajectories_per_condition: independent trajectories (their own velocities and thermostat
            noise) per starting structure, temperature, pressure and driver.
        label_devices: processes (one device of ``accelerator`` each) the teacher's labelling is
            spread over, through Lightning's predict loop (spawned from this process).
        workers: exploration processes (each trajectory is an independent job on one core); 1 runs
            them in this process.
        pressures: periodic starts also run Berendsen NPT at each of these pressures, GPa (not bar:
            1 GPa = 10^4 bar), and temperatures, driven by the teacher and (from iteration 2, when
            ``stress_weight`` > 0 so that the students learn stress) by the student; empty: NVT only.
        iterations: exploration / selection / labelling / training iterations (DP-GEN's) at most.
        quick: a run of minutes, to try the workflow: at most :data:`QUICK_LIMITS` MD steps per
            trajectory, training steps per iteration and iterations.
        md_steps: MD steps per trajectory (one per starting structure and driver).
        sample_every: keep every this many MD steps (the starting frame included).
        timestep_fs: MD time step, fs.
        friction_per_fs: Langevin friction, 1/fs.
        strain: periodic cells start each trajectory from a random strain of up to this fraction per
            component (samples the stress response without an NPT barostat); 0 = off.
        target_force_rmse: stop once the held-out student-vs-teacher force RMSE is at most this, eV/Å.
        steps_per_iteration: optimiser steps of student training per iteration. A fresh student learns
            slowly (ethanol from ``lam-mini``: 0.75 of the teacher's force RMS off after 50 steps, 0.57
            after 2,000, 0.53 after 4,000; scripts/results/distill_student_learning.json), so the
            default is DeePMD-kit's order of a short run, not a demo's.
        lr: peak learning rate of each iteration.
        batch_size: frames per training batch.
        holdout_fraction: fraction of each iteration's labelled frames held out (at least one frame).
        max_force: a trajectory (teacher- or student-driven) stops at a force component above this,
            eV/Å (it has left the region the models know; that frame is still labelled and trained on).
        min_distance: a trajectory stops at a frame with two atoms closer than this, Å; that frame is
            not labelled but listed in the report (``rejected_frames``).
        start_pref_e: energy-per-atom loss prefactor at the start of each iteration ((eV/atom)^-2). The
            default is DeePMD's from-scratch schedule (energy 0.02 -> 1, forces 1000 -> 1), which
            learns forces first. Constant 1 and 1 trained ethanol's energies far better in 500-step
            rounds (23 against 87 meV/atom held out, forces alike;
            scripts/results/distill_env_statistics.json) but the forces of a 40-step test round
            worse: one measurement each, so the default stays DeePMD's.
        limit_pref_e: energy prefactor at the end of the iteration's learning-rate decay.
        start_pref_f: force prefactor at the start ((eV/Å)^-2).
        limit_pref_f: force prefactor at the end of the decay.
        stress_weight: loss prefactor of the stress term ((eV/Å^3)^-2); 0 trains on energy and forces.
        dtype: floating dtype of the student (training, student MD and the speed comparison).
        committee: students trained side by side from different seeds. With 2 or more, from iteration 2
            on only the explored frames they disagree on are labelled (DP-GEN; see ``trust_lo``) and
            the saved student is the member with the lowest held-out error; 1 labels every frame.
        trust_lo: committee force deviation (max over atoms, eV/Å) below which a frame counts as
            learned and is not labelled. None: the teacher's own force RMSE against ``test_data``
            when given (students need not agree more closely than the teacher is right), else
            DP-GEN2's 0.05.
        trust_hi: deviation above which a frame counts as failed: reported, not labelled. None: three
            times ``trust_lo`` (DP-GEN2's 0.05 / 0.15).
        ensemble: also save every committee member (``out/committee/member_K``) and report the
            errors of their mean: ``LAMCalculator([...member folders])`` predicts with the mean and
            its uncertainty. ``out`` itself holds the member with the lowest held-out error.
        max_selected: frames labelled per iteration at most (a seeded subset); 0: no cap.
        accurate_fraction: with a committee, stop once this fraction of an iteration's explored frames is
            learned (below ``trust_lo``).
        test_data: labelled frames of the user's own reference (DFT) data: the report gives the
            student's and the teacher's errors against them.
        seed: seed of the student's initialisation, MD, splits and training.
        (and the trainer options of :class:`~lam.train.trainer.TrainerOptions`).
    """

    teacher: str = "lam-mini"
    structures: str | None = None
    out: Path | None = None
    overwrite: bool = False
    resume: bool = False
    head: str | None = None
    student: str = "student"
    temperatures: list[float] = field(default_factory=lambda: [300.0])
    pressures: list[float] = field(default_factory=list)
    trajectories_per_condition: int = 1
    workers: int = 1
    label_devices: int = 1
    iterations: int = 3
    quick: bool = False
    md_steps: int = 200
    sample_every: int = 10
    timestep_fs: float = 1.0
    friction_per_fs: float = 0.01
    strain: float = 0.0
    target_force_rmse: float = 0.05
    steps_per_iteration: int = 2000
    lr: float = 1e-3
    batch_size: int = 4
    holdout_fraction: float = 0.2
    max_force: float = 20.0
    min_distance: float = 0.5
    start_pref_e: float = 0.02
    limit_pref_e: float = 1.0
    start_pref_f: float = 1000.0
    limit_pref_f: float = 1.0
    stress_weight: float = 0.0
    dtype: Literal["float32", "float64"] = "float32"
    committee: int = 1
    trust_lo: float | None = None
    trust_hi: float | None = None
    max_selected: int = 0
    ensemble: bool = False
    accurate_fraction: float = 0.95
    test_data: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.iterations, self.md_steps, self.sample_every) < 1 or self.steps_per_iteration < 0:
            raise ValueError(f"distill: iterations, md_steps, sample_every must be >= 1 and "
                             f"steps_per_iteration >= 0, got {self}")
        if not self.temperatures or min(self.temperatures) <= 0:
            raise ValueError(f"distill: temperatures must be positive, got {self.temperatures}")
        lo, hi = self.trust_lo or 0.0, self.trust_hi if self.trust_hi is not None else float("inf")
        if self.pressures and max(abs(p) for p in self.pressures) > MAX_PRESSURE_GPA:
            raise ValueError(f"distill: pressures are in GPa (1 GPa = 10^4 bar); {self.pressures} has one "
                             f"beyond {MAX_PRESSURE_GPA:g} GPa")
        if min(self.workers, self.trajectories_per_condition, self.label_devices) < 1:
            raise ValueError(f"distill: workers, trajectories_per_condition and label_devices must be >= 1, "
                             f"got {self.workers}, {self.trajectories_per_condition}, {self.label_devices}")
        if self.committee < 1 or self.max_selected < 0 or not 0.0 <= lo < hi:
            raise ValueError(f"distill: need committee >= 1, max_selected >= 0 and 0 <= trust_lo < trust_hi, "
                             f"got {self.committee}, {self.max_selected}, {self.trust_lo}, {self.trust_hi}")
        if is_distributed(lightning_args(self)):
            raise ValueError(f"distill: the loop runs in one process, so devices={self.devices!r} and "
                             f"num_nodes={self.num_nodes!r} (several processes) are not supported yet; "
                             "explore in parallel with --workers")
        if self.ensemble and self.committee < 2:
            raise ValueError(f"distill: an ensemble needs a committee of 2 or more, got {self.committee}")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(f"distill: holdout_fraction must be in (0, 1), got {self.holdout_fraction}")



def quick_budget(options: DistillOptions) -> DistillOptions:
    """``options`` with the :data:`QUICK_LIMITS` caps applied when ``options.quick`` is on.

    A function, not a method: the command line makes every public method of the options a subcommand.
    """
    if not options.quick:
        return options
    return replace(options, **{name: min(getattr(options, name), cap) for name, cap in QUICK_LIMITS.items()})
