"""MD speed of a distilled lam student next to DeePMD-kit ``se_e2_a`` on the same water box; ONE JSON object.

DeePMD-kit runs in its own virtual environment (``bash ../shared/peers/setup.sh``, beside the project;
lam never depends on it): its harness trains ``se_e2_a`` for a few steps (speed does not depend on the
weights), freezes it and times ASE Velocity Verlet with DeePMD-kit's calculator on the 192-atom
frame of ``water_deepmd_example``, 2 threads, float64. Right after, in this process, the student runs
the same ASE integrator on the same frame with 2 threads, in float64 (like for like) and float32
(lam's default for students). Medians of ``--reps`` runs each.

    python scripts/bench_student_vs_deepmd.py --student DIR   # a water student from lam distill
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import statistics
import subprocess
import tempfile
from datetime import date
from pathlib import Path

import ase.io
import torch

from lam.model.lam import LAM
from lam.train.distill.student import md_atom_steps_per_s

ROOT = Path(__file__).resolve().parent.parent
WATER = ROOT / "data_registry" / "data" / "water_deepmd_example" / "test.extxyz.xz"
PEERS = ROOT.parent / "shared" / "peers"


def deepmd_md_speed(venv: Path, reps: int) -> dict:
    """DeePMD-kit ``se_e2_a`` MD on the 192-atom water frame, through the peers' own harness."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peer.json"
        command = [str(venv / "bin" / "python"), str(PEERS / "run_bench.py"), "--models", "se_e2_a",
                   # a training variant makes the harness prime and freeze the model; 4 timed steps
                   "--train-variants", "t2", "--steps", "se_e2_a=4", "--infer-variants", "", "--md-variants", "t2",
                   "--reps", str(reps), "--out", str(out)]
        subprocess.run(command, check=True, env={**os.environ, "PEERS_VENV": str(venv)},
                       stdout=subprocess.DEVNULL)
        results = json.loads(out.read_text())
    md = results["models"]["se_e2_a"]["variants"]["t2"]["md"]
    return {"atom_steps_per_s": md["median_atom_steps_per_s"], "steps_per_s": md["all_steps_per_s"],
            "dtype": "float64", "threads": 2, "versions": results.get("versions")}


def student_md_speed(student: LAM, reps: int, dtype: str) -> dict:
    """The student's ASE MD speed on the same frame, 2 threads; median of ``reps`` runs."""
    with lzma.open(WATER, "rt") as handle:
        frame = ase.io.read(handle, index=0, format="extxyz")
    head = student.config.heads[0].name
    speeds = [md_atom_steps_per_s(student, head, frame, dtype, steps=50) for _ in range(reps)]
    return {"atom_steps_per_s": statistics.median(speeds), "runs": speeds, "dtype": dtype, "threads": 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", type=Path, required=True, help="a distilled water student folder")
    parser.add_argument("--peers-venv", type=Path, default=Path(os.environ.get("PEERS_VENV", "/tmp/peers")))
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    if not (args.peers_venv / "bin" / "dp").exists():
        raise SystemExit(f"no DeePMD-kit at {args.peers_venv}: run bash {PEERS / 'setup.sh'} first")
    torch.set_num_threads(2)
    peer = deepmd_md_speed(args.peers_venv, args.reps)
    student = LAM.from_pretrained(args.student).for_inference()
    ours = {dtype: student_md_speed(student, args.reps, dtype) for dtype in ("float64", "float32")}
    print(json.dumps({
        "benchmark": "student MD speed against DeePMD-kit se_e2_a", "date": date.today().isoformat(),
        "system": "water_deepmd_example test frame 0 (192 atoms), ASE Velocity Verlet 1 fs",
        "load_average_1min": os.getloadavg()[0], "student": str(args.student), "deepmd_se_e2_a": peer,
        "lam_student": ours,
        "ratio_float64": ours["float64"]["atom_steps_per_s"] / peer["atom_steps_per_s"],
        "ratio_float32": ours["float32"]["atom_steps_per_s"] / peer["atom_steps_per_s"],
    }, indent=1))


if __name__ == "__main__":
    main()
