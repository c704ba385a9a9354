"""Exploration trajectories as independent jobs: in this process, or in ``--workers`` processes.

Each :class:`Trajectory` is a whole MD run with its own seed, so its frames do not depend on which
process runs it or in which order. With workers, the drivers (teacher and student) are saved once per
round to a temporary folder as lam model folders (safetensors + JSON, loaded exactly in their dtype)
and loaded by each worker process (started with ``spawn``, so nothing of this process but the task
is inherited); the frames come back in task order.
Progress: one line per finished trajectory with the running MD speed in atom-steps/s.
"""

from __future__ import annotations

import copy
import multiprocessing
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import ase

from lam.calculator import LAMCalculator
from lam.model.lam import LAM
from lam.train.distill.explore import run_md
from lam.train.distill.options import DistillOptions


@dataclass(frozen=True)
class Trajectory:
    """One MD run: which driver, from which start, with which seed, name and conditions."""

    driver: str  # "teacher" or "student"
    start: int
    seed: int
    name: str
    include_start: bool
    temperature_K: float
    pressure_GPa: float | None = None


def _run(
    job: Trajectory, start: ase.Atoms, calc: LAMCalculator, options: DistillOptions
) -> tuple[list, list]:
    rejected: list[dict] = []
    frames = run_md(
        start,
        calc,
        options,
        job.seed,
        job.name,
        max_force=options.max_force,
        include_start=job.include_start,
        rejected=rejected,
        temperature_K=job.temperature_K,
        pressure_GPa=job.pressure_GPa,
    )
    return frames, rejected


_WORKER: dict = {}  # per worker process: its drivers' calculators, the starts and the options


def _init_worker(folders: dict[str, str], dtypes: dict[str, str], head: str, starts: list, options) -> None:  # noqa: ANN001
    import torch

    torch.set_num_threads(1)  # one core per worker: the workers are the parallelism
    _WORKER["calcs"] = {
        name: LAMCalculator(LAM.from_pretrained(path), head=head, dtype=dtypes[name])
        for name, path in folders.items()
    }
    _WORKER["starts"], _WORKER["options"] = starts, options


def _work(job: Trajectory) -> tuple[list, list]:
    return _run(job, _WORKER["starts"][job.start], _WORKER["calcs"][job.driver], _WORKER["options"])


def run_trajectories(
    jobs: Sequence[Trajectory],
    starts: Sequence[ase.Atoms],
    calcs: dict[str, LAMCalculator],
    options: DistillOptions,
) -> tuple[dict[str, list], list[dict]]:
    """Frames of every job grouped by driver (in job order), and the rejected frames."""
    results: list[tuple[list, list] | None] = [None] * len(jobs)
    started, atom_steps = time.perf_counter(), 0
    for index, outcome in _outcomes(jobs, starts, calcs, options):
        results[index] = outcome
        atom_steps += len(starts[jobs[index].start]) * options.md_steps
        if options.progress and len(jobs) > 1:
            speed = atom_steps / max(time.perf_counter() - started, 1e-9)
            print(
                f"  explored {sum(r is not None for r in results)}/{len(jobs)} trajectories "
                f"({speed:,.0f} atom-steps/s)",
                flush=True,
            )
    frames: dict[str, list] = {"teacher": [], "student": []}
    rejected: list[dict] = []
    for job, (job_frames, job_rejected) in zip(jobs, results, strict=True):
        frames[job.driver] += job_frames
        rejected += job_rejected
    return frames, rejected


def _outcomes(
    jobs: Sequence[Trajectory],
    starts: Sequence[ase.Atoms],
    calcs: dict[str, LAMCalculator],
    options: DistillOptions,
) -> Iterator[tuple[int, tuple[list, list]]]:
    """(job index, (frames, rejected)) as jobs finish: here, or in ``options.workers`` processes."""
    if options.workers <= 1:
        for index, job in enumerate(jobs):
            yield index, _run(job, starts[job.start], calcs[job.driver], options)
        return
    with tempfile.TemporaryDirectory(prefix="lam-distill-") as tmp:
        folders = {name: str(Path(tmp) / name) for name in calcs}
        for name, calc in calcs.items():
            calc.model.save_pretrained(folders[name])  # safetensors + JSON, loaded exactly in its dtype
        dtypes = {name: str(calc.torch_dtype).removeprefix("torch.") for name, calc in calcs.items()}
        head = next(iter(calcs.values())).head
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            options.workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(folders, dtypes, head, list(starts), options),
        ) as pool:
            futures = {pool.submit(_work, job): index for index, job in enumerate(jobs)}
            for future in as_completed(futures):
                yield futures[future], future.result()


def trajectories(
    round_index: int, starts: Sequence[ase.Atoms], options: DistillOptions, with_student: bool
) -> list[Trajectory]:
    """The round's MD runs: per temperature, start and copy, the teacher's (and the student's), plus NPT."""
    seed = options.seed * 1000 + round_index * 100
    # a student drives NPT only once it learns stress: its barostat follows the stress it predicts
    npt_drivers = ["teacher", "student"] if with_student and options.stress_weight > 0 else ["teacher"]
    jobs = []
    for t, temperature in enumerate(options.temperatures):
        for i, start in enumerate(starts):
            for copy_index in range(options.trajectories_per_condition):
                # copies differ in their seed (velocities, thermostat noise) only
                base = seed + 1000 * t + i + 100_000 * copy_index
                name = f"r{round_index}-{{}}-{temperature:g}K-s{i}"
                name += f"-c{copy_index}" if copy_index else ""
                # a start is kept once (round 1, teacher, first temperature, first copy): copies would
                # leak between training and held-out frames
                keep_start = round_index == 1 and t == 0 and copy_index == 0
                jobs.append(Trajectory("teacher", i, base, name.format("teacher"), keep_start, temperature))
                if with_student:
                    student = Trajectory("student", i, base + 50, name.format("student"), False, temperature)
                    jobs.append(student)
                for p, pressure in enumerate(options.pressures if start.pbc.all() else []):
                    for driver in npt_drivers:
                        npt_name = name.format(f"{driver}-{pressure:g}GPa")
                        npt_seed = base + 100 * (p + 1) + (50 if driver == "student" else 0)
                        jobs.append(Trajectory(driver, i, npt_seed, npt_name, False, temperature, pressure))
    return jobs


def explore(
    round_index: int,
    starts: Sequence[ase.Atoms],
    teacher_calc: LAMCalculator,
    student: LAM,
    head: str,
    options: DistillOptions,
    rejected: list[dict] | None = None,
) -> tuple[list[ase.Atoms], list[ase.Atoms]]:
    """This round's (teacher-driven, student-driven) frames, unlabelled (geometry only).

    ``trajectories_per_condition`` trajectories per starting structure and temperature, for each
    driver (the student from round 2); periodic starts also get NPT ones per temperature and
    pressure, driven by the teacher and, when the students learn stress (``stress_weight`` > 0),
    by the student. Both
    drivers stop a trajectory at a force above ``options.max_force`` or a frame that fails validation
    (recorded in ``rejected``).
    """
    calcs = {"teacher": teacher_calc}
    if round_index > 1:  # a copy: the calculator freezes the model it holds, and this student trains on
        calcs["student"] = LAMCalculator(copy.deepcopy(student), head=head, dtype=options.dtype)
    jobs = trajectories(round_index, starts, options, with_student="student" in calcs)
    frames, refused = run_trajectories(jobs, starts, calcs, options)
    if rejected is not None:
        rejected += refused
    return frames["teacher"], frames["student"]
