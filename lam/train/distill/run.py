"""Distil a large teacher LAM into a fast student by on-the-fly teacher labelling (DP-GEN style).

Each round of :func:`distill`: explore (Langevin NVT with the teacher from the starting structures,
and from round 2 on also with the current student, so frames where the student goes wrong are
visited) → with a committee of students (``--committee N``, from round 2), keep only the frames they
disagree on (:mod:`.select`) → label them with the teacher (energy, forces, and stress for bulk
cells) → hold out a seeded fraction → train every student on all training frames so far
(``LAMTask``, warm start) → measure student-vs-teacher agreement on all held-out frames so far.
Rounds stop when the held-out force RMSE reaches the target, when the committee finds enough of a
round's frames learned, or when the round budget ends. The teacher stays frozen and outside the
students; the best student is saved, with its errors against the user's own data (``--test-data``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
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
from lam.train.distill.checkpoint import ROUNDS_DIR, StageStore, last_round, load_round, save_round
from lam.train.distill.ensemble import save_ensemble
from lam.train.distill.explore import label_frames, split_holdout
from lam.train.distill.options import DistillOptions, quick_budget
from lam.train.distill.parallel import explore
from lam.train.distill.report import PLOT_FILE, plot_agreement
from lam.train.distill.select import Selection, committee_deviations, select
from lam.train.distill.student import build_student, compare_speed, prepare_fresh_student, train_student
from lam.train.evaluate import error_metrics, predict

REPORT_FILE = "report.json"


def format_round(record: dict[str, Any]) -> str:
    """The progress line of one round (meV/atom, meV/Å)."""
    held = record["holdout"]
    line = (f"iteration {record['iteration']}: {record['frames_teacher_md']} teacher-MD + "
            f"{record['frames_student_md']} student-MD frames, {record['train_frames']} train / "
            f"{record['holdout_frames']} held out, {record['steps']} steps; student vs teacher (held out): "
            f"E MAE {1000 * held['energy_mae_per_atom']:.2f} meV/atom, "
            f"F RMSE {1000 * held['force_rmse']:.2f} meV/Å "
            f"(teacher force RMS {1000 * record['holdout_teacher_force_rms']:.1f} meV/Å)")
    chosen = record["selection"]
    if chosen["by"] == "committee":
        line += (f"; committee: {chosen['accurate']} learned, {chosen['selected']} labelled, "
                 f"{chosen['failed']} failed of {chosen['candidates']} explored")
    if record.get("rejected_frames"):
        line += f"; {len(record['rejected_frames'])} collapsed frame(s) not labelled"
    before = record["new_frames_before_training"]
    if before is not None:
        line += f"; new frames before training: F RMSE {1000 * before['force_rmse']:.2f} meV/Å"
    return line


@dataclass
class RoundState:
    """What the rounds accumulate: the committee (member 0 drives the student MD) and the labels."""

    members: list[LAM]
    train_frames: list[ase.Atoms] = field(default_factory=list)
    holdout: list[ase.Atoms] = field(default_factory=list)


def _choose(new: list[ase.Atoms], round_index: int, state: RoundState, head: str,
            options: DistillOptions) -> tuple[list[ase.Atoms], dict[str, Any]]:
    """The explored frames to label: all of them, or (committee, round 2 on) DP-GEN's selection."""
    if len(state.members) < 2 or round_index == 1 or not new:
        return new, Selection.everything(len(new)).counts()
    deviations = committee_deviations(new, state.members, head, options.dtype)
    chosen = select(deviations, options.trust_lo, options.trust_hi, options.max_selected,
                    options.seed + round_index)
    return [new[i] for i in chosen.selected], chosen.counts()


def _train_committee(state: RoundState, head: str, options: DistillOptions, log_dir: Path,
                     round_index: int, stages: StageStore) -> int:
    """Train every member on all training frames so far (:func:`train_student`).

    A member a killed run had finished is read back instead of trained again.
    """
    for k, member in enumerate(state.members):
        trained = stages.member(k, member)
        if trained is None:
            member_options = replace(options, seed=options.seed + k)  # a different batch order per member
            train_student(member, head, state.train_frames, member_options, log_dir,
                          f"round_{round_index}_member_{k}")
            stages.save_member(k, member)
        else:
            state.members[k] = trained
    return options.steps_per_iteration


def _explore_and_label(
    round_index: int, state: RoundState, starts: Sequence[ase.Atoms], teacher_calc: LAMCalculator,
    head: str, options: DistillOptions, stages: StageStore,
) -> tuple[list[ase.Atoms], dict[str, Any]]:
    """The round's teacher-labelled frames and what to report about them; each stage stored once done."""
    labelled = stages.frames("labelled")
    if labelled is not None:
        return labelled
    explored = stages.frames("explored")
    if explored is None:
        rejected: list[dict] = []
        by_teacher, by_student = explore(round_index, starts, teacher_calc, state.members[0], head, options,
                                         rejected)
        notes = {"frames_teacher_md": len(by_teacher), "frames_student_md": len(by_student),
                 "rejected_frames": rejected}  # collapsed MD frames, never labelled
        explored = stages.save_frames("explored", by_teacher + by_student, notes), notes
    frames, notes = explored
    chosen, selection = _choose(frames, round_index, state, head, options)
    notes = {**notes, "selection": selection}
    labelled = label_frames(chosen, teacher_calc, options.label_devices, options.accelerator)
    return stages.save_frames("labelled", labelled, notes), notes


def run_round(
    round_index: int, state: RoundState, starts: Sequence[ase.Atoms], teacher_calc: LAMCalculator,
    head: str, options: DistillOptions, out: Path,
) -> dict[str, Any]:
    """Explore, select, label, split (extends ``state``), train the committee, measure: the round's record."""
    stages = StageStore(out, round_index)
    new, notes = _explore_and_label(round_index, state, starts, teacher_calc, head, options, stages)
    if round_index == 1:  # fresh students: environments and scale fitted to what they will learn
        for member in state.members:
            prepare_fresh_student(member, head, new)
    # the current student on frames it has never seen: where it goes wrong (DP-GEN's signal)
    before = error_metrics(predict(state.members[0], new, head)) if round_index > 1 and new else None
    train, held = split_holdout(new, options.holdout_fraction, options.seed + round_index)
    state.train_frames += train
    state.holdout += held
    trains = new or round_index == 1
    steps = _train_committee(state, head, options, out / "logs", round_index, stages) if trains else 0
    members = [error_metrics(predict(member, state.holdout, head)) for member in state.members]
    best = min(range(len(members)), key=lambda k: members[k]["force_rmse"])
    return {"iteration": round_index, "frames_teacher_md": notes["frames_teacher_md"],
            "frames_student_md": notes["frames_student_md"],
            "selection": notes["selection"], "labelled": len(new), "train_frames": len(state.train_frames),
            "holdout_frames": len(state.holdout), "steps": steps, "new_frames_before_training": before,
            "holdout": members[best],  # student vs teacher, the best member
            "best_member": best, "committee_holdout_force_rmse": [m["force_rmse"] for m in members],
            "holdout_teacher_force_rms": force_rms(state.holdout),  # eV/Å: the scale errors compare to
            "rejected_frames": notes["rejected_frames"]}


def _converged(record: dict[str, Any], options: DistillOptions) -> bool:
    selection = record["selection"]
    learned = selection["by"] == "committee" and selection["accurate_fraction"] >= options.accurate_fraction
    return learned or record["holdout"]["force_rmse"] <= options.target_force_rmse


@dataclass
class DistillResult:
    """What :func:`distill` did: the student folder, per-iteration records, convergence, speed."""

    out: Path
    iterations: list[dict[str, Any]]
    converged: bool
    speed: dict[str, Any]
    reference: dict[str, Any] | None = None  # student and teacher against the user's --test-data
    ensemble: dict[str, Any] | None = None  # the committee's folders and its mean's errors (--ensemble)


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
    options = quick_budget(options)
    if options.structures is None or options.out is None:
        raise ValueError("lam distill needs --structures FILE and --out DIR")
    out = Path(options.out)
    resumed = last_round(out) if options.resume else 0
    if not options.resume:  # a resumed run writes into the folder its first part made
        refuse_existing_model(out, options.overwrite)
        shutil.rmtree(out / ROUNDS_DIR, ignore_errors=True)  # an overwritten run's checkpoints are not ours
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
    # the teacher's errors on the user's reference data: trust levels now, the report at the end
    test_frames = load_frames(options.test_data) if options.test_data is not None else None
    teacher_test = error_metrics(predict(teacher, test_frames, head)) if test_frames else None
    options = with_trust_levels(options, teacher_test)
    state = RoundState([build_student(teacher, head, parent, replace(options, seed=options.seed + k))
                        for k in range(options.committee)])
    records: list[dict[str, Any]] = []
    if resumed:
        state.members, state.train_frames, state.holdout, records = load_round(out, resumed, state.members)
    out.mkdir(parents=True, exist_ok=True)
    for round_index in range(resumed + 1, options.iterations + 1):
        if records and _converged(records[-1], options):
            break
        records.append(run_round(round_index, state, structures, teacher_calc, head, options, out))
        state.train_frames, state.holdout = save_round(out, round_index, state.members, state.train_frames,
                                                       state.holdout, records)
        if progress is not None:
            progress(records[-1])
    converged = _converged(records[-1], options)
    student = state.members[records[-1]["best_member"]]
    speed = compare_speed(teacher, student, head, max(structures, key=len), options.dtype)
    reference = reference_errors(options.test_data, test_frames, teacher_test, student, head)
    ensemble = None if not options.ensemble else save_ensemble(state.members, state.holdout, test_frames,
                                                                head, out)
    result = DistillResult(out, records, converged, speed, reference, ensemble)
    save_distilled(student, result, Lineage(parent, head, head, "distill"), options)
    return result


DP_GEN_TRUST_LO = 0.05  # eV/Å, DP-GEN2's default lower trust level (the upper: three times it)


def with_trust_levels(options: DistillOptions, teacher_test: dict[str, Any] | None) -> DistillOptions:
    """``options`` with both trust levels set: the user's, else from the teacher's test-data errors.

    Args:
        options: the run's options.
        teacher_test: the teacher's :func:`error_metrics` on ``options.test_data`` (None without).
    """
    lo = options.trust_lo
    if lo is None and teacher_test is not None and options.committee > 1:
        lo = teacher_test["force_rmse"]
    lo = DP_GEN_TRUST_LO if lo is None else lo
    hi = options.trust_hi if options.trust_hi is not None else 3.0 * lo
    if not 0.0 <= lo < hi:
        raise ValueError(f"distill: need 0 <= trust_lo < trust_hi, got {lo} and {hi} eV/Å")
    return replace(options, trust_lo=lo, trust_hi=hi)


def reference_errors(
    test_data: str | None, frames: list[ase.Atoms] | None, teacher_test: dict[str, Any] | None, student: LAM,
    head: str,
) -> dict[str, Any] | None:
    """Student and teacher errors against the user's labelled frames (their own DFT), or None."""
    if test_data is None or frames is None:
        return None
    return {"test_data": test_data, "frames": len(frames),
            "student": error_metrics(predict(student, frames, head)), "teacher": teacher_test}


def summary(result: DistillResult) -> dict[str, Any]:
    """The figures a user looks at first: labels spent, selection per iteration, agreement, MD speed."""
    last = result.iterations[-1]
    return {
        "teacher_labels": sum(r["labelled"] for r in result.iterations),
        "selection": [{k: r["selection"][k] for k in ("by", "candidates", "accurate_fraction",
                                                          "selected_fraction", "failed_fraction")}
                      for r in result.iterations],
        "holdout_force_rmse": last["holdout"]["force_rmse"],
        "holdout_teacher_force_rms": last["holdout_teacher_force_rms"],
        "md_speed_ratio": result.speed["md_speedup"],
        "converged": result.converged,
    }


def save_distilled(
    student: LAM, result: DistillResult, lineage: Lineage, options: DistillOptions,
) -> None:
    """Write the student (config.json, model.safetensors), its card, ``report.json`` and the plot."""
    card = distilled_card(lineage, result.iterations, result.converged, result.speed, json_ready(options),
                          result.reference)
    card.save(result.out / CARD_FILE)
    report = {"lineage": lineage.to_dict(), "structures": options.structures, "summary": summary(result),
              "options": json_ready(options), "converged": result.converged, "iterations": result.iterations,
              "speed": result.speed, "against_test_data": result.reference, "ensemble": result.ensemble}
    write_json(result.out / REPORT_FILE, report)
    plot_agreement(result.iterations, options.target_force_rmse, result.out / PLOT_FILE)
    student.save_pretrained(result.out)  # last: the folder holds a model only once it is complete
