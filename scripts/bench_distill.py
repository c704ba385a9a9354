"""Benchmark distillation: student-vs-teacher speed (single point and MD) over system sizes, and a distill run.

Speed is measured in this process through ``LAMCalculator`` (energy + forces, median of repeats after a
warm-up) on periodic Cu/Au fcc supercells; the 1-minute load average is printed with it because the
machine may be shared. Without ``--teacher`` a seeded, untrained DPA-2 of ``--teacher_preset`` stands in
(fine for speed, meaningless for accuracy).

    python scripts/bench_distill.py --sizes 32 108 256 --teacher_preset small
    python scripts/bench_distill.py --teacher lam-mini --head mptrj_random1k_pbe --distill_out /tmp/student
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from pathlib import Path

import ase
import numpy as np
import torch
from ase.build import bulk

from lam.hub.models import load_model
from lam.model.config import HeadSpec, preset
from lam.model.lam import LAM
from lam.train.distill import DistillOptions, distill, format_round, speed_us_per_atom
from lam.train.distill.student import md_atom_steps_per_s


def alloy(n_atoms: int, seed: int = 0) -> ase.Atoms:
    """A rattled fcc Cu/Au supercell with about ``n_atoms`` atoms (4 per cubic cell)."""
    repeat = max(1, round((n_atoms / 4) ** (1 / 3)))
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(repeat)
    rng = np.random.default_rng(seed)
    atoms.numbers[rng.random(len(atoms)) < 0.4] = 79
    atoms.rattle(0.05, seed=seed)
    return atoms


def stand_in_teacher(name: str) -> LAM:
    """A seeded untrained DPA-2 with Cu/Au references (speed only)."""
    torch.manual_seed(0)
    model = LAM(dataclasses.replace(preset(name), heads=(HeadSpec("pbe"),)))
    model.heads["pbe"].set_energy_references({29: -3.5, 79: -4.2})
    model.heads["pbe"].energy_scale.fill_(300.0)  # forces of tens of meV/Å instead of ~0
    return model


def speed_table(teacher: LAM, student: LAM, head: str, sizes: list[int], dtype: str) -> list[dict]:
    """µs/atom (single point) and MD atom-steps/s (ASE Velocity Verlet) of both models per system size."""
    rows = []
    for size in sizes:
        atoms = alloy(size)
        t_us = speed_us_per_atom(teacher, head, atoms, dtype)
        s_us = speed_us_per_atom(student, head, atoms, dtype)
        t_md = md_atom_steps_per_s(teacher, head, atoms, dtype)
        s_md = md_atom_steps_per_s(student, head, atoms, dtype)
        rows.append({"n_atoms": len(atoms), "teacher_us_per_atom": t_us, "student_us_per_atom": s_us,
                     "speedup": t_us / s_us, "teacher_md_atom_steps_per_s": t_md,
                     "student_md_atom_steps_per_s": s_md, "md_speedup": s_md / t_md,
                     "load_average_1min": os.getloadavg()[0]})
        print(f"{len(atoms):>5} atoms: teacher {t_us:8.0f} µs/atom, student {s_us:7.0f} µs/atom "
              f"({t_us / s_us:5.1f}x); MD {t_md:8.0f} / {s_md:8.0f} atom-steps/s ({s_md / t_md:5.1f}x) "
              f"(load {os.getloadavg()[0]:.1f})", flush=True)
    return rows


def main() -> None:
    """Parse the flags, print the speed table (and distil when asked), write JSON when asked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teacher", help="teacher model reference (default: untrained stand-in)")
    parser.add_argument("--teacher_preset", default="small")
    parser.add_argument("--head", default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 108, 256])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--distill_out", type=Path, help="also run a distillation into this folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--md_steps", type=int, default=100)
    parser.add_argument("--steps_per_iteration", type=int, default=300)
    parser.add_argument("--target_force_rmse", type=float, default=0.05)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    teacher = load_model(args.teacher) if args.teacher else stand_in_teacher(args.teacher_preset)
    head = teacher.resolve_head(args.head or (None if args.teacher else "pbe"))
    torch.manual_seed(0)
    student = LAM(dataclasses.replace(preset("student"), heads=(HeadSpec(head),)))
    results: dict = {"threads": args.threads, "dtype": args.dtype,
                     "speed": speed_table(teacher, student, head, args.sizes, args.dtype)}
    if args.distill_out is not None:
        with tempfile.TemporaryDirectory() as tmp:
            ref = args.teacher
            if ref is None:
                teacher.save_pretrained(Path(tmp) / "teacher")
                ref = str(Path(tmp) / "teacher")
            options = DistillOptions(teacher=ref, structures="bench: Cu/Au fcc 32 atoms", out=args.distill_out,
                                     overwrite=True, head=head, rounds=args.rounds, md_steps=args.md_steps,
                                     steps_per_iteration=args.steps_per_iteration, dtype=args.dtype,
                                     target_force_rmse=args.target_force_rmse)
            result = distill(options, [alloy(32, seed=0), alloy(32, seed=1)],
                             progress=lambda record: print(format_round(record), flush=True))
            results["distill"] = {"rounds": result.rounds, "converged": result.converged,
                                  "speed": result.speed}
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
