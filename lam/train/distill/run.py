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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ase

from lam.calculator import LAMCalculator
from lam.data.sources import load_frames
from lam.data.statistics import force_rms
from lam.hub.card import CARD_FILE, Lineage, distilled_card
from lam.hub.models import load_model_and_ref
from lam.hub.outputs import json_ready, refuse_existing_model, write_json
from lam.model.lam import LAM
from lam.train.distill.explore import explore, split_holdout
from lam.train.distill.options import DistillOptions
from lam.train.distill.report import PLOT_FILE, plot_agreement
from lam.train.distill.student import build_student, compare_speed, train_student
from lam.train.evaluate import error_metrics, predict
from lam.train.refit import fit_environment

REPORT_FILE = "distill.json"


def format_round(record: dict[str, Any]) -> str:
    """The progress line of one round (meV/atom, meV/Å)."""
    held = record["holdout"]
    line = (f"round {record['round']}: {record['frames_teacher_md']} teacher-MD + "
            f"{record['frames_student_md']} student-MD frames, {record['train_frames']} train / "
            f"{record['holdout_frames']} held out, {record['steps']} steps; student vs teacher (held out): "
            f"E MAE {1000 * held['energy_mae_per_atom']:.2f} meV/atom, "
            f"F RMSE {1000 * held['force_rmse']:.2f} meV/Å "
            f"(teacher force RMS {1000 * record['holdout_teacher_force_rms']:.1f} meV/Å)")
    if record.get("rejected_frames"):
        line += f"; {len(record['rejected_frames'])} collapsed frame(s) not labelled"
    before = record["new_frames_before_training"]
    if before is not None:
        line += f"; new frames before training: F RMSE {1000 * before['force_rmse']:.2f} meV/Å"
    return line


def run_round(
    round_index: int, train_frames: list[ase.Atoms], holdout: list[ase.Atoms], starts: Sequence[ase.Atoms],
    teacher_calc: LAMCalculator, student: LAM, head: str, options: DistillOptions, log_dir: Path,
) -> dict[str, Any]:
    """Explore, label, split (extends ``train_frames``, ``holdout``), train, measure: the round's record."""
    rejected: list[dict] = []
    by_teacher, by_student = explore(round_index, starts, teacher_calc, student, head, options, rejected)
    new = by_teacher + by_student
    if round_index == 1:  # a fresh student: normalise its environments on what it will learn
        fit_environment(student, new)
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
              "holdout_teacher_force_rms": force_rms(holdout),  # eV/Å: the scale errors compare to
              "rejected_frames": rejected}  # collapsed MD frames, never labelled
    return record


@dataclass
class DistillResult:
    """What :func:`distill` did: the student folder, per-round records, convergence, speed."""

    out: Path
    rounds: list[dict[str, Any]]
    converged: bool
    speed: dict[str, Any]


def distill(
    options: DistillOptions, structures: Sequence[ase.Atoms] | None = None,
    progress: Callable[[dict], None] | None = None,
) -> DistillResult:
    """Distil ``options.teacher`` into a student saved as a model folder (see the module docstring).

    Args:
        options: the whole run (see :class:`DistillOptions`).
        structures: starting structures from Python; None reads ``options.structures``.
        progress: called with each round's record; None prints :func:`format_round` when
            ``options.progress`` is on.
    """
    if options.structures is None or options.out is None:
        raise ValueError("lam distill needs --structures FILE and --out DIR")
    out = Path(options.out)
    refuse_existing_model(out, options.overwrite)
    structures = list(structures) if structures is not None else load_frames(options.structures)
    if len(structures) * (options.md_steps // options.sample_every + 1) < 2:  # 1 to train, 1 held out
        raise ValueError(f"distill: {len(structures)} structure(s) in {options.structures} with md_steps "
                         f"{options.md_steps} / sample_every {options.sample_every}: < 2 frames per round")
    if progress is None and options.progress:
        progress = lambda record: print(format_round(record), flush=True)  # noqa: E731
    teacher, parent = load_model_and_ref(options.teacher)
    teacher.for_inference()
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
    save_distilled(student, result, Lineage(parent, head, head, "distill"), options)
    return result


def save_distilled(
    student: LAM, result: DistillResult, lineage: Lineage, options: DistillOptions,
) -> None:
    """Write the student (config.json, model.safetensors), its card, ``distill.json`` and the plot."""
    card = distilled_card(lineage, result.rounds, result.converged, result.speed, json_ready(options))
    card.save(result.out / CARD_FILE)
    report = {"lineage": lineage.to_dict(), "structures": options.structures, "options": json_ready(options),
              "converged": result.converged, "rounds": result.rounds, "speed": result.speed}
    write_json(result.out / REPORT_FILE, report)
    plot_agreement(result.rounds, options.target_force_rmse, result.out / PLOT_FILE)
    student.save_pretrained(result.out)  # last: the folder holds a model only once it is complete
