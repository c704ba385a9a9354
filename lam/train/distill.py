"""Distil a large teacher LAM into a fast student by on-the-fly teacher labelling (DP-GEN style).

Each round of :func:`distill`: explore (Langevin NVT with the teacher from the starting structures,
and from round 2 on also with the current student, so frames where the student goes wrong are
visited) → label every sampled frame with the teacher (energy, forces, and stress for bulk cells) →
hold out a seeded fraction → train the student on all training frames so far (``LAMTask``, warm
start) → measure student-vs-teacher agreement on all held-out frames so far. Rounds stop when the
held-out force RMSE reaches the target or the round budget ends. The teacher stays frozen and
outside the student: only the student's ``LAM`` is trained and saved.
"""

from __future__ import annotations

import copy
import json
import os
import timeit
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import ase
import numpy as np
import torch
from ase import units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from lam.calculator import LAMCalculator
from lam.data.statistics import force_rms
from lam.hub.card import CARD_FILE, Lineage
from lam.hub.models import ModelRef
from lam.model.config import HeadSpec, preset
from lam.model.lam import LAM
from lam.train.evaluate import error_metrics, predict

REPORT_FILE = "distill.json"
PLOT_FILE = "agreement.png"


@dataclass(frozen=True)
class DistillOptions:
    """How to distil (the flags of ``lam distill``).

    Attributes:
        head: teacher head to distil (None: the teacher's only head); also the student's head name.
        student: preset of the student (``student``: the two-body (repinit-only) descriptor).
        temperature_K: Langevin thermostat temperature, K.
        rounds: exploration / labelling / training rounds at most.
        md_steps: MD steps per trajectory (one per starting structure and driver).
        sample_every: keep every this many MD steps (the starting frame included).
        timestep_fs: MD time step, fs.
        friction_per_fs: Langevin friction, 1/fs.
        strain: periodic cells start each trajectory from a random strain of up to this fraction per
            component (samples the stress response without an NPT barostat); 0 = off.
        target_force_rmse: stop once the held-out student-vs-teacher force RMSE is at most this, eV/Å.
        max_steps_per_round: optimiser steps of student training per round.
        lr: peak learning rate of each round.
        batch_size: frames per training batch.
        holdout_fraction: fraction of each round's labelled frames held out (at least one frame).
        max_force: a student-driven trajectory stops at a force component above this, eV/Å (it
            has left the region it knows; that frame is still labelled and trained on).
        stress_weight: loss prefactor of the stress term ((eV/Å^3)^-2); 0 trains on energy and forces.
        dtype: floating dtype of the student (training, student MD and the speed comparison).
        seed: seed of the student's initialisation, MD, splits and training.
    """

    head: str | None = None
    student: str = "student"
    temperature_K: float = 300.0
    rounds: int = 3
    md_steps: int = 200
    sample_every: int = 10
    timestep_fs: float = 1.0
    friction_per_fs: float = 0.01
    strain: float = 0.0
    target_force_rmse: float = 0.05
    max_steps_per_round: int = 500
    lr: float = 1e-3
    batch_size: int = 4
    holdout_fraction: float = 0.2
    max_force: float = 20.0
    stress_weight: float = 0.0
    dtype: Literal["float32", "float64"] = "float32"
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.rounds, self.md_steps, self.sample_every) < 1 or self.max_steps_per_round < 0:
            raise ValueError(f"distill: rounds, md_steps, sample_every must be >= 1 and "
                             f"max_steps_per_round >= 0, got {self}")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(f"distill: holdout_fraction must be in (0, 1), got {self.holdout_fraction}")


# ---- exploration and labelling ------------------------------------------------------------------
def run_md(
    start: ase.Atoms, calc: LAMCalculator, options: DistillOptions, seed: int, name: str,
    max_force: float | None = None, include_start: bool = True,
) -> list[ase.Atoms]:
    """Langevin NVT from ``start``; every ``sample_every``-th frame (unlabelled, no calculator).

    Args:
        start: starting structure (not modified).
        calc: the MD driver (teacher or student).
        options: temperature, steps, time step, friction, strain.
        seed: seed of the strain, initial velocities and the thermostat noise.
        name: prefix of the frames' ``frame_id`` (``{name}-step{n}``).
        max_force: stop early when a force component exceeds this (eV/Å); None: never.
        include_start: keep step 0 (off when another trajectory already sampled this start).
    """
    rng = np.random.default_rng(seed)
    atoms = start.copy()
    if options.strain > 0 and atoms.pbc.all():
        strain = rng.uniform(-options.strain, options.strain, (3, 3))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.5 * (strain + strain.T)), scale_atoms=True)
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=options.temperature_K, rng=rng)
    md = Langevin(atoms, timestep=options.timestep_fs * units.fs, temperature_K=options.temperature_K,
                  friction=options.friction_per_fs / units.fs, fixcm=False, rng=rng)
    frames = []
    for _ in md.irun(steps=options.md_steps):  # yields after the forces of step md.nsteps
        runaway = max_force is not None and float(np.abs(atoms.get_forces()).max()) > max_force
        if (md.nsteps % options.sample_every == 0 and (md.nsteps > 0 or include_start)) or runaway:
            # geometry only (no calculator, no velocities): the teacher labels it later
            frames.append(ase.Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc,
                                    info={"frame_id": f"{name}-step{md.nsteps}"}))
        if runaway:
            break
    return frames


def label_frames(frames: Sequence[ase.Atoms], teacher: LAMCalculator) -> list[ase.Atoms]:
    """Attach the teacher's energy (eV), forces (eV/Å) and, for bulk cells, stress (eV/Å^3)."""
    for atoms in frames:
        atoms.calc = teacher
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        if atoms.pbc.all():
            results["stress"] = atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, **results)
    return list(frames)


def split_holdout(frames: Sequence[ase.Atoms], fraction: float, seed: int) -> tuple[list, list]:
    """Seeded (train, held-out) split with at least one frame on each side when there are two."""
    order = np.random.default_rng(seed).permutation(len(frames))
    n_held = min(max(1, round(fraction * len(frames))), len(frames) - 1) if len(frames) > 1 else 0
    return [frames[i] for i in sorted(order[n_held:])], [frames[i] for i in sorted(order[:n_held])]


# ---- student ------------------------------------------------------------------------------------
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
    # the teacher's scale is the size of its learned interaction energy: the same PES for the student
    student.heads[head].energy_scale.fill_(float(teacher.heads[head].energy_scale))
    return student.to({"float32": torch.float32, "float64": torch.float64}[options.dtype])


def train_student(
    student: LAM, head: str, frames: Sequence[ase.Atoms], options: DistillOptions, log_dir: Path,
    version: str,
) -> int:
    """Train ``student`` in place on teacher-labelled ``frames`` with ``LAMTask``; returns the steps taken."""
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    from lam.data.datamodule import MultiTaskDataModule
    from lam.train.losses import EnergyForceStressLoss
    from lam.train.module import LAMTask
    from lam.train.schedules import LRSchedule

    steps = options.max_steps_per_round
    if steps == 0:
        return 0
    loss = EnergyForceStressLoss(stress_start=options.stress_weight, stress_limit=options.stress_weight)
    task = LAMTask(student, loss=loss, lr=options.lr, lr_schedule=LRSchedule("exp", decay_steps=steps,
                   final_ratio=0.05), ema_decay=None, dtype=options.dtype, fit_energy_references=False)
    data = MultiTaskDataModule({head: list(frames)}, batch_size=options.batch_size, val_fraction=0.0,
                               seed=options.seed, cutoff=student.cutoff, steps_per_epoch=steps)
    trainer = pl.Trainer(
        max_steps=steps, max_epochs=-1, logger=CSVLogger(log_dir, name="", version=version),
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        log_every_n_steps=min(50, steps), inference_mode=False,
        accelerator="auto" if torch.cuda.is_available() else "cpu", devices=1,
    )
    student.train()  # Lightning keeps the mode it is given: after speed checks that is eval
    trainer.fit(task, train_dataloaders=data.train_dataloader())
    student.cpu()
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


def compare_speed(teacher: LAM, student: LAM, head: str, start: ase.Atoms, dtype: str) -> dict[str, Any]:
    """Teacher and student µs/atom in this process, on ``start`` (bulk repeated to >= 64 atoms)."""
    atoms = start.copy()
    if atoms.pbc.all():
        atoms = atoms.repeat(int(np.ceil((64 / len(atoms)) ** (1 / 3))))
    teacher_us = speed_us_per_atom(teacher, head, atoms, dtype)
    student_us = speed_us_per_atom(student, head, atoms, dtype)
    return {"teacher_us_per_atom": teacher_us, "student_us_per_atom": student_us,
            "speedup": teacher_us / student_us, "n_atoms": len(atoms), "dtype": dtype, "device": "cpu",
            "torch_threads": torch.get_num_threads(), "load_average_1min": os.getloadavg()[0],
            "cpu_count": os.cpu_count()}


# ---- the loop -----------------------------------------------------------------------------------
def explore(
    round_index: int, starts: Sequence[ase.Atoms], teacher_calc: LAMCalculator, student: LAM, head: str,
    options: DistillOptions,
) -> tuple[list[ase.Atoms], list[ase.Atoms]]:
    """This round's (teacher-driven, student-driven) frames, labelled by the teacher."""
    seed = options.seed * 1000 + round_index * 100
    # a start is kept once (round 1, teacher): copies would leak between training and held-out frames
    by_teacher = [f for i, s in enumerate(starts)
                  for f in run_md(s, teacher_calc, options, seed + i, f"r{round_index}-teacher-s{i}",
                                  include_start=round_index == 1)]
    by_student = []
    if round_index > 1:
        # a copy: the calculator freezes the model it holds, and this student trains on
        student_calc = LAMCalculator(copy.deepcopy(student), head=head, dtype=options.dtype)
        by_student = [f for i, s in enumerate(starts)
                      for f in run_md(s, student_calc, options, seed + 50 + i, f"r{round_index}-student-s{i}",
                                      max_force=options.max_force, include_start=False)]
    return label_frames(by_teacher, teacher_calc), label_frames(by_student, teacher_calc)


def run_round(
    round_index: int, train_frames: list[ase.Atoms], holdout: list[ase.Atoms], starts: Sequence[ase.Atoms],
    teacher_calc: LAMCalculator, student: LAM, head: str, options: DistillOptions, log_dir: Path,
) -> dict[str, Any]:
    """Explore, label, split (extends ``train_frames``, ``holdout``), train, measure: the round's record."""
    by_teacher, by_student = explore(round_index, starts, teacher_calc, student, head, options)
    new = by_teacher + by_student
    # the current student on frames it has never seen: where it goes wrong (DP-GEN's signal)
    before = error_metrics(predict(student, new, head)) if round_index > 1 else None
    train, held = split_holdout(new, options.holdout_fraction, options.seed + round_index)
    train_frames += train
    holdout += held
    steps = train_student(student, head, train_frames, options, log_dir, f"round_{round_index}")
    record = {"round": round_index, "frames_teacher_md": len(by_teacher),
              "frames_student_md": len(by_student), "train_frames": len(train_frames),
              "holdout_frames": len(holdout), "steps": steps, "new_frames_before_training": before,
              "holdout": error_metrics(predict(student, holdout, head)),  # student vs teacher
              "holdout_teacher_force_rms": force_rms(holdout)}  # eV/Å: the scale errors compare to
    return record


@dataclass
class DistillResult:
    """What :func:`distill` did: the student folder, per-round records, convergence, speed."""

    out: Path
    rounds: list[dict[str, Any]]
    converged: bool
    speed: dict[str, Any]


def distill(
    teacher_ref: str, structures: Sequence[ase.Atoms], out: str | Path, options: DistillOptions,
    structures_name: str, overwrite: bool = False, progress: Callable[[dict], None] | None = None,
) -> DistillResult:
    """Distil ``teacher_ref`` into a student saved as a model folder ``out`` (see the module docstring).

    Args:
        teacher_ref: built-in name, local folder or Hub id with optional ``@revision``.
        structures: starting structures of the MD (labels, if any, are ignored).
        out: model folder to write (config.json, model.safetensors, README.md, distill.json, agreement.png).
        options: see :class:`DistillOptions`.
        structures_name: the structures' source as the user named it (card and report).
        overwrite: replace a model already in ``out``.
        progress: called with each round's record (e.g. to print a progress line).
    """
    from lam.hub.models import load_model, parse_model_ref
    from lam.train.finetune import refuse_existing_model

    out = Path(out)
    refuse_existing_model(out, overwrite)
    if len(structures) * (options.md_steps // options.sample_every + 1) < 2:  # 1 to train, 1 held out
        raise ValueError(f"distill: {len(structures)} structure(s) in {structures_name} with md_steps "
                         f"{options.md_steps} / sample_every {options.sample_every}: < 2 frames per round")
    parent, teacher = parse_model_ref(teacher_ref), load_model(teacher_ref).requires_grad_(False).eval()
    head = teacher.resolve_head(options.head)
    teacher_calc = LAMCalculator(teacher, head=head, dtype="float64")
    student = build_student(teacher, head, parent, options)
    train_frames, holdout, rounds = [], [], []
    out.mkdir(parents=True, exist_ok=True)
    for round_index in range(1, options.rounds + 1):
        rounds.append(run_round(round_index, train_frames, holdout, structures, teacher_calc, student, head,
                                options, out / "logs"))
        if progress is not None:
            progress(rounds[-1])
        if rounds[-1]["holdout"]["force_rmse"] <= options.target_force_rmse:
            break
    converged = rounds[-1]["holdout"]["force_rmse"] <= options.target_force_rmse
    speed = compare_speed(teacher, student, head, max(structures, key=len), options.dtype)
    result = DistillResult(out, rounds, converged, speed)
    save_distilled(student, result, Lineage(parent, head, head, "distill"), options, structures_name)
    return result


# ---- outputs ------------------------------------------------------------------------------------
def plot_agreement(rounds: Sequence[dict[str, Any]], target: float, path: Path) -> Path:
    """PNG of held-out student-vs-teacher force RMSE and energy MAE per round, with the target."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    index = [r["round"] for r in rounds]
    fig, (ax_f, ax_e) = plt.subplots(1, 2, figsize=(9, 3.6))
    ax_f.plot(index, [1000 * r["holdout"]["force_rmse"] for r in rounds], "o-", label="held out")
    before = [(r["round"], 1000 * r["new_frames_before_training"]["force_rmse"])
              for r in rounds if r["new_frames_before_training"] is not None]
    ax_f.plot(*(zip(*before, strict=True) if before else ([], [])), "s--", label="new frames, untrained")
    ax_f.axhline(1000 * target, color="k", ls=":", label="target")
    ax_e.plot(index, [1000 * r["holdout"]["energy_mae_per_atom"] for r in rounds], "o-")
    for ax, label in ((ax_f, "force RMSE vs teacher (meV/Å)"), (ax_e, "energy MAE vs teacher (meV/atom)")):
        ax.set(xlabel="round", ylabel=label, xticks=index)
    ax_f.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

A fast `lam` student potential distilled from the teacher **{{ parent }}**
(revision `{{ revision or 'n/a' }}`, head `{{ head }}`): a `{{ student }}` model trained on frames the
teacher labelled along Langevin MD at {{ temperature }} K (DP-GEN-style rounds; from round 2 the
student also drives the MD).
Energies in eV, forces in eV/Å, stress in eV/Å³. The teacher is not part of this model.

## Agreement with the teacher (held-out teacher-labelled frames)

| round | train / held-out frames | steps | energy MAE (meV/atom) | force RMSE (meV/Å) | teacher force RMS |
|---|---|---|---|---|---|
{{ rows }}

Target force RMSE {{ target }} meV/Å: {{ 'reached' if converged else 'not reached' }}. Speed
(`distill.json`): teacher {{ speed.teacher_us_per_atom | round | int }}, student
{{ speed.student_us_per_atom | round | int }} µs/atom ({{ speed.n_atoms }} atoms, {{ speed.dtype }}, CPU).

Limitations: the student is only as good as the teacher, and only near the configurations visited
(starting structures `{{ structures }}`, {{ temperature }} K). Check it before production use.
"""


def distilled_card(lineage: Lineage, result: DistillResult, options: DistillOptions, structures: str) -> Any:
    """``README.md`` of the student: lineage (teacher ref, revision, head), settings, agreement, speed."""
    from huggingface_hub import ModelCard, ModelCardData

    settings = {k: v for k, v in asdict(options).items() if k != "head"}
    data = ModelCardData(
        library_name="lam", tags=["interatomic-potential", "lam", "distilled"],
        base_model=lineage.parent_name, model_name=f"{Path(lineage.parent_name).name}-student",
        lam_lineage={**lineage.to_dict(), "structures": structures, "distillation": settings})
    rows = "\n".join(
        f"| {r['round']} | {r['train_frames']} / {r['holdout_frames']} | {r['steps']} | "
        f"{1000 * r['holdout']['energy_mae_per_atom']:.2f} | {1000 * r['holdout']['force_rmse']:.2f} | "
        f"{1000 * r['holdout_teacher_force_rms']:.1f} |" for r in result.rounds)
    return ModelCard.from_template(
        data, template_str=CARD_TEMPLATE, model_name=data.model_name, parent=lineage.parent_name,
        revision=lineage.parent.revision, head=lineage.head, student=options.student,
        temperature=options.temperature_K, rows=rows, target=1000 * options.target_force_rmse,
        converged=result.converged, speed=result.speed, structures=structures,
    )


def save_distilled(
    student: LAM, result: DistillResult, lineage: Lineage, options: DistillOptions, structures: str,
) -> None:
    """Write the student (config.json, model.safetensors), its card, ``distill.json`` and the plot."""
    student.save_pretrained(result.out)
    distilled_card(lineage, result, options, structures).save(result.out / CARD_FILE)
    report = {"lineage": lineage.to_dict(), "structures": structures, "options": asdict(options),
              "converged": result.converged, "rounds": result.rounds, "speed": result.speed}
    (result.out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    plot_agreement(result.rounds, options.target_force_rmse, result.out / PLOT_FILE)
