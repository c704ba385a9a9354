"""Benchmark a real distillation on the shipped water data; prints ONE JSON object.

Teacher: ``lam-mini`` fine-tuned on 100 DFT frames of ``water_deepmd_example`` (the mission's step 2:
a user's fine-tuned model, not a ``small`` model trained from scratch, which 100 frames cannot make
accurate). ``lam distill`` then runs at 300 and 400 K from a 192-atom DFT frame, with a committee of
students selecting what the teacher labels, and is scored against the 80 held-out DFT frames. Reported:

- ``accuracy``: student and teacher force RMSE against DFT, and their ratio (goal <= 1.3);
- ``selection``: teacher labels used, and those a run without selection (every explored frame labelled)
  used for its student's error: the value of selection;
- ``md_speed``: student / teacher MD speed (ASE Velocity Verlet, atom-steps/s, this process, one thread)
  on 192- and 1,536-atom water boxes, for the fine-tuned teacher and for a ``small`` DPA-2 (speed only:
  an untrained stand-in; goal >= 20x, stretch >= 50x);
- ``deepmd_se_e2_a``: the peer comparison needs DeePMD-kit (``../shared/peers``), not installed with lam.

    python scripts/bench_distill.py            # ~1 h on 2 cores
    python scripts/bench_distill.py --quick    # minutes: a short fine-tune, one quick iteration, 192 atoms
    python scripts/bench_distill.py --teacher DIR   # reuse a fine-tuned teacher
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import lzma
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import ase
import ase.io
import torch

from lam.model.config import HeadSpec, preset
from lam.model.lam import LAM
from lam.train.distill import DistillOptions, distill
from lam.train.distill.student import md_atom_steps_per_s
from lam.train.finetune.options import FinetuneOptions
from lam.train.finetune.run import finetune

WATER = Path(__file__).resolve().parent.parent / "data_registry" / "data" / "water_deepmd_example"


def water_frames(split: str) -> list[ase.Atoms]:
    """The shipped DFT frames of one split (``train``: 320, ``test``: 80; 192 atoms each)."""
    with lzma.open(WATER / f"{split}.extxyz.xz", "rt") as handle:
        return list(ase.io.read(handle, index=":", format="extxyz"))


def fine_tuned_teacher(work: Path, quick: bool) -> Path:
    """``lam-mini`` fine-tuned on 100 (quick: 20) training frames, every third of the shipped 320."""
    frames = water_frames("train")[::3][: 20 if quick else 100]
    options = FinetuneOptions(model="lam-mini", data="water_deepmd_example (every 3rd training frame)",
                              out=work / "teacher", max_steps=60 if quick else 1000, progress=False)
    return finetune(options, frames).out


def run_distill(teacher: Path, work: Path, name: str, quick: bool, committee: int) -> dict:
    """One distillation from the first held-out DFT frame; its summary and errors against DFT."""
    start = water_frames("test")[0]
    structures = work / "start.extxyz"
    ase.io.write(structures, start)
    options = DistillOptions(teacher=str(teacher), structures=str(structures), out=work / name,
                             temperatures=[300.0, 400.0], iterations=1 if quick else 3, quick=quick,
                             committee=committee, test_data=str(work / "dft_test.extxyz"), progress=False)
    began = time.perf_counter()
    result = distill(options)
    reference = result.reference or {}
    student, teacher_err = reference["student"]["force_rmse"], reference["teacher"]["force_rmse"]
    return {"committee": committee, "seconds": time.perf_counter() - began,
            "teacher_labels": sum(r["labelled"] for r in result.iterations),
            "iterations": len(result.iterations),
            "selection": [r["selection"] for r in result.iterations],
            "student_force_rmse_vs_dft": student, "teacher_force_rmse_vs_dft": teacher_err,
            "student_over_teacher": student / teacher_err,
            "holdout_force_rmse_vs_teacher": result.iterations[-1]["holdout"]["force_rmse"],
            "md_speed_in_run": result.speed}


def stand_in_small(head: str) -> LAM:
    """A seeded, untrained ``small`` DPA-2 with water's references: the speed of a larger teacher."""
    torch.manual_seed(0)
    model = LAM(dataclasses.replace(preset("small"), heads=(HeadSpec(head),)))
    model.heads[head].set_energy_references({1: -13.6, 8: -432.0})
    return model


def md_speed(teachers: dict[str, LAM], student: LAM, head: str, sizes: list[int]) -> list[dict]:
    """Student / teacher ASE MD speed on water boxes of ``sizes`` atoms (192 repeated), one thread."""
    start = water_frames("test")[0]
    rows = []
    for size in sizes:
        repeat = round((size / len(start)) ** (1 / 3))
        box = start.repeat(repeat)
        student_speed = md_atom_steps_per_s(student, head, box, "float32", steps=10)
        for name, teacher in teachers.items():
            teacher_speed = md_atom_steps_per_s(teacher, head, box, "float32", steps=5)
            rows.append({"n_atoms": len(box), "teacher": name, "teacher_atom_steps_per_s": teacher_speed,
                         "student_atom_steps_per_s": student_speed, "ratio": student_speed / teacher_speed,
                         "load_average_1min": os.getloadavg()[0]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="minutes: the workflow, not the figures")
    parser.add_argument("--teacher", type=Path, help="a fine-tuned water teacher to reuse")
    parser.add_argument("--work", type=Path, help="keep the run folders here (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    # stdout carries only the JSON object: what the runs print goes to stderr
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        ase.io.write(work / "dft_test.extxyz", water_frames("test")[1:])  # frame 0 starts the MD
        teacher = args.teacher or fine_tuned_teacher(work, args.quick)
        selected = run_distill(teacher, work, "student", args.quick, committee=2 if args.quick else 4)
        everything = None if args.quick else run_distill(teacher, work, "student_no_selection", False, 1)
        fine_tuned, student = LAM.from_pretrained(teacher), LAM.from_pretrained(work / "student")
        head = student.config.heads[0].name
        teachers = {"fine-tuned lam-mini": fine_tuned.for_inference(), "small (untrained stand-in)":
                    stand_in_small(head).for_inference()}
        speed = md_speed(teachers, student.for_inference(), head, [192] if args.quick else [192, 1536])
    value = None if everything is None else {
        "labels_with_selection": selected["teacher_labels"], "labels_without": everything["teacher_labels"],
        "student_error_with": selected["student_force_rmse_vs_dft"],
        "student_error_without": everything["student_force_rmse_vs_dft"],
        "labels_saved_ratio": everything["teacher_labels"] / max(selected["teacher_labels"], 1)}
    print(json.dumps({
        "benchmark": "distill", "date": date.today().isoformat(), "quick": args.quick,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads 1",
        "teacher": str(args.teacher or "lam-mini fine-tuned on 100 water_deepmd_example frames"),
        "distill": selected, "no_selection": everything, "value_of_selection": value, "md_speed": speed,
        "deepmd_se_e2_a": "not measured here: needs DeePMD-kit from ../shared/peers",
    }, indent=1))


if __name__ == "__main__":
    sys.exit(main())
