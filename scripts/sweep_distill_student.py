#!/usr/bin/env python
"""Why the distilled student is far from its teacher: how its error falls with training, per setting.

Labels 150 frames of teacher-driven Langevin MD (``lam-mini`` head ``s66x8_wb97x``, ethanol, 300 K,
1 fs, every 10th of 1,500 steps), trains students exactly as ``lam distill`` does
(``build_student``, ``prepare_fresh_student``, ``train_student``) on the first 120 and reports the
force RMSE over the teacher's force RMS on the first 30 training frames and the 30 held-out ones.
Prints ONE JSON object.

    python scripts/sweep_distill_student.py                  # the default sweep (~6 min on 2 cores)
    python scripts/sweep_distill_student.py '{"steps_per_iteration": 4000, "lr": 3e-3}'
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import ase.build
import numpy as np
import torch
from ase import units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from lam.calculator import LAMCalculator
from lam.hub.models import parse_model_ref
from lam.model.lam import LAM
from lam.predict import predict
from lam.train.distill.options import DistillOptions
from lam.train.distill.student import build_student, prepare_fresh_student, train_student

HEAD = "s66x8_wb97x"
SWEEP = [{"steps_per_iteration": 50, "lr": 3e-3}, {"steps_per_iteration": 500},
         {"steps_per_iteration": 1000, "lr": 3e-3}, {"steps_per_iteration": 2000, "lr": 3e-3},
         {"steps_per_iteration": 4000, "lr": 3e-3}, {"steps_per_iteration": 1000, "lr": 3e-3, "student": "tiny"}]


def teacher_frames(teacher: LAM) -> list[ase.Atoms]:
    atoms = ase.build.molecule("CH3CH2OH")
    atoms.calc = LAMCalculator(teacher, head=HEAD)
    rng = np.random.default_rng(0)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=rng)
    dyn = Langevin(atoms, 1.0 * units.fs, temperature_K=300, friction=0.01, rng=rng)
    frames = []

    def keep() -> None:
        frame = atoms.copy()
        frame.calc = SinglePointCalculator(frame, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
        frames.append(frame)

    dyn.attach(keep, interval=10)
    dyn.run(1500)
    return frames


def relative_force_error(model: LAM, frames: list[ase.Atoms]) -> float:
    true = np.concatenate([f.get_forces() for f in frames])
    pred = np.concatenate([p.get_forces() for p in predict(model.float(), frames, head=HEAD)])
    return float(np.sqrt(((pred - true) ** 2).mean()) / np.sqrt((true**2).mean()))


def main() -> None:
    torch.set_num_threads(1)
    settings = [json.loads(arg) for arg in sys.argv[1:]] or SWEEP
    teacher = LAM.from_pretrained("lam-mini")
    frames = teacher_frames(teacher)
    train, test = frames[:120], frames[120:]
    rows = []
    with tempfile.TemporaryDirectory() as logs:
        for setting in settings:
            options = dataclasses.replace(DistillOptions(), **setting)
            student = build_student(teacher, HEAD, parse_model_ref("lam-mini"), options)
            prepare_fresh_student(student, HEAD, train)
            train_student(student, HEAD, train, options, Path(logs), "sweep")
            rows.append({"setting": setting, "train_force_rmse_over_rms": relative_force_error(student, train[:30]),
                         "heldout_force_rmse_over_rms": relative_force_error(student, test)})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    force_rms = float(np.sqrt(np.mean(np.concatenate([f.get_forces() for f in test]) ** 2)))
    print(json.dumps({"teacher_force_rms_eV_per_A": force_rms, "frames": [len(train), len(test)], "rows": rows},
                     indent=1))


if __name__ == "__main__":
    main()
