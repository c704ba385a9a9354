#!/usr/bin/env python
"""Batched prediction against a loop of calculator calls: lam.predict vs LAMCalculator on small MPtrj frames.

Prints ONE JSON object. Both paths run in this process, on the same frames, with the same model
(``lam-mini``, head ``mptrj_random1k_pbe``, float32, inference mode) and thread count, alternating
round by round (the VM's speed drifts over minutes: only an interleaved ratio compares like with like):
  * ``lam.predict``: all frames in one call, packed into batches of up to ``--batch-atoms`` atoms;
  * the loop: one ``LAMCalculator`` (float32, default 0.5 Å skin) asked for energy, forces and
    stress of each frame in turn, as a user's ``for atoms in frames`` loop does.
Frames: the frames of the shipped ``mptrj_random1k_pbe`` set with fewer than ``--max-atoms`` atoms (820
of its 1,000), cycled to ``--frames``. The JSON also records the largest difference between the two
paths' results (a speed figure of wrong numbers is worthless) and the machine's load, since another
process on the 2 cores halves either figure.

Usage:
    python scripts/bench_predict.py --quick          # 100 frames, 1 round, ~15 s
    python scripts/bench_predict.py                  # 1,000 frames, 3 rounds, a few minutes
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HEAD = "mptrj_random1k_pbe"


def small_frames(n_frames: int, max_atoms: int) -> tuple[list, int]:
    """``n_frames`` frames under ``max_atoms`` atoms (cycled), and how many distinct ones there are."""
    from lam.data import load_frames

    frames = [atoms for atoms in load_frames(HEAD) if len(atoms) < max_atoms]
    for atoms in frames:
        atoms.calc = None  # the DFT labels play no part here
    return [frames[i % len(frames)] for i in range(n_frames)], len(frames)


def time_predict(model, frames: list, batch_atoms: int) -> tuple[float, list]:
    import lam

    start = time.perf_counter()
    predicted = lam.predict(model, frames, head=HEAD, batch_atoms=batch_atoms)
    return time.perf_counter() - start, predicted


def time_calculator(calc, frames: list) -> tuple[float, list]:
    results = []
    start = time.perf_counter()
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = calc
        stress = atoms.get_stress()  # first: one evaluation then serves energy and forces too
        results.append((atoms.get_potential_energy(), atoms.get_forces(), stress))
    return time.perf_counter() - start, results


def largest_differences(predicted: list, looped: list) -> dict:
    pairs = list(zip(predicted, looped, strict=True))
    energy = max(abs(p.get_potential_energy() - e) / len(p) for p, (e, _, _) in pairs)
    forces = max(float(np.abs(p.get_forces() - f).max()) for p, (_, f, _) in pairs)
    stress = max(float(np.abs(p.get_stress() - s).max()) for p, (_, _, s) in pairs)
    return {"energy_ev_per_atom": energy, "forces_ev_per_a": forces, "stress_ev_per_a3": stress}


def busy_processes() -> list[str]:
    """Other processes using over 10% of a core during one second (what would slow this run)."""
    import psutil

    mine = os.getpid()
    processes = [p for p in psutil.process_iter(["pid", "name", "cmdline"]) if p.info["pid"] != mine]
    for process in processes:
        try:
            process.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(1.0)
    busy = []
    for process in processes:
        try:
            percent = process.cpu_percent(None)
        except psutil.Error:
            continue
        if percent > 10:
            command = " ".join(process.info["cmdline"] or [process.info["name"] or "?"])[:100]
            busy.append(f"{percent:.0f}% {command}")
    return busy


def machine() -> dict:
    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__}


def figures(seconds: list[float], n_frames: int, n_atoms: int) -> dict:
    best = statistics.median(seconds)
    return {"frames_per_s": n_frames / best, "us_per_atom": 1e6 * best / n_atoms,
            "round_seconds": [round(s, 3) for s in seconds]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 frames, 1 round")
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-atoms", type=int, default=50)
    parser.add_argument("--batch-atoms", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    n_frames, rounds = (100, 1) if args.quick else (args.frames, args.rounds)

    import torch

    import lam

    torch.set_num_threads(args.threads)
    frames, distinct = small_frames(n_frames, args.max_atoms)
    n_atoms = sum(len(atoms) for atoms in frames)
    model = lam.load("lam-mini").for_inference()
    calc = lam.LAMCalculator(model, head=HEAD, dtype="float32")
    # warm-up: the first full-size batches allocate (a 20-frame warm-up left the first round 5x slower)
    time_predict(model, frames[:200], args.batch_atoms)
    time_calculator(calc, frames[:20])
    load_before, busy = os.getloadavg(), busy_processes()
    predict_s, loop_s = [], []
    for _ in range(rounds):
        seconds, predicted = time_predict(model, frames, args.batch_atoms)
        predict_s.append(seconds)
        seconds, looped = time_calculator(calc, frames)
        loop_s.append(seconds)
    batched, loop = figures(predict_s, n_frames, n_atoms), figures(loop_s, n_frames, n_atoms)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    print(json.dumps({
        "command": "python scripts/bench_predict.py" + (" --quick" if args.quick else ""),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit.stdout.strip(), "machine": machine(), "threads": args.threads,
        "model": "lam-mini", "head": HEAD, "dtype": "float32", "frames": n_frames, "distinct_frames": distinct,
        "atoms": n_atoms, "mean_atoms_per_frame": n_atoms / n_frames, "batch_atoms": args.batch_atoms,
        "rounds": rounds, "lam_predict": batched, "calculator_loop": loop,
        "speedup_predict_over_loop": batched["frames_per_s"] / loop["frames_per_s"],
        "largest_difference": largest_differences(predicted, looped),
        "load_average_1_5_15_min": {"before": load_before, "after": os.getloadavg()},
        "other_busy_processes_before": busy,
    }, indent=2))


if __name__ == "__main__":
    sys.exit(main())
