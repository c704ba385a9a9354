#!/usr/bin/env python
"""Model speed and memory benchmark: lam's DPA-2 presets and student, and DeePMD-kit in the same run.

Prints ONE JSON object. Every measurement runs in its own subprocess (so peak RSS is per measurement)
with 2 torch threads:
  * inference: µs per atom per evaluation of energy + forces + virial (+ the neighbour list, as
    DeePMD's ``DeepPot.eval`` also builds its own), median over repeats after warm-up;
  * training: ms per optimizer step at batch size 1 (energy + force loss, double backward, Adam);
  * scaling: inference time per atom from 192 to 12,288 atoms (must stay flat: linear cost).
Systems: the 192-atom liquid-water box (real DFT data shipped in data_registry/) and its 2x2x2
supercell (1536 atoms). ``--quick`` measures a subset in under a minute. The full run also runs the
DeePMD-kit harness (``--peers-dir``, default ../shared/peers, venv from its setup.sh) and reports
lam/DeePMD-kit ratios at equal hyperparameters and precision (float64, DeePMD's water examples).

Usage:
    python scripts/bench_model.py --quick
    python scripts/bench_model.py --out bench_model.json          # full, ~30-40 min
    python scripts/bench_model.py --parts ratios student scaling  # DeePMD ratios, student, scaling
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WATER = ROOT / "data_registry" / "data" / "water_deepmd_example" / "test.extxyz.xz"


def water_system(repeat: int = 1):  # noqa: ANN201
    """The first test frame of the shipped water data (192 atoms), optionally tiled."""
    from ase.io import read

    atoms = read(WATER, index=0)
    return atoms * (repeat, repeat, repeat) if repeat > 1 else atoms


def start_process(threads: int) -> None:
    """What every measuring process does first: thread count, allocator, seed (as the lam command)."""
    import torch

    from lam.cpu_memory import reuse_freed_memory

    torch.set_num_threads(threads)
    reuse_freed_memory()
    torch.manual_seed(0)


def worker(task: dict) -> dict:
    """Run one measurement in this process and return its figures."""
    import torch

    from lam.data.graph import AtomicGraph
    from lam.model.config import preset
    from lam.model.lam import LAM

    start_process(task["threads"])
    dtype = {"float32": torch.float32, "float64": torch.float64}[task["dtype"]]
    model = LAM(preset(task["preset"])).to(dtype)
    atoms = water_system(task.get("repeat", 1))
    n = len(atoms)
    n_params = sum(p.numel() for p in model.parameters())

    def graph():  # noqa: ANN202
        return AtomicGraph.from_atoms(atoms, model.cutoff, dtype=dtype)  # as the ASE calculator does

    times = []
    if task["mode"] == "infer":
        model.for_inference()  # as LAMCalculator and DeePMD-kit's DeepPot hold a model
        for i in range(task["warmup"] + task["reps"]):
            start = time.perf_counter()
            # energy + forces + virial, as DeePMD-kit's DeepPot.eval computes
            out = model(graph(), compute_forces=True, compute_stress=True)
            out.forces.sum().item()
            if i >= task["warmup"]:
                times.append(time.perf_counter() - start)
        per = statistics.median(times)
        figures = {"us_per_atom": per / n * 1e6, "s_per_eval": per}
    else:
        model.train()
        batch = graph()
        batch.energy = batch.energy.new_tensor([float(n) * -1.0])
        batch.forces = torch.randn_like(batch.pos) * 0.5
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        for i in range(task["warmup"] + task["reps"]):
            start = time.perf_counter()
            optimizer.zero_grad()
            out = model(batch, compute_forces=True)
            loss = ((out.energy - batch.energy) / n).square().mean() + (out.forces - batch.forces).square().mean()
            loss.backward()
            optimizer.step()
            if i >= task["warmup"]:
                times.append(time.perf_counter() - start)
        figures = {"ms_per_step": statistics.median(times) * 1e3}
    return {**task, "atoms": n, "params": n_params, **figures, "all_s": [round(t, 5) for t in times]}


def paired_worker(task: dict) -> dict:
    """Student and ``small`` in one process, alternating for several rounds (their ratio per round).

    This VM's single-core speed drifts by up to 2x over minutes, so two models measured in separate
    processes minutes apart can be off by that much; alternating them keeps both in the same window.
    """
    import torch

    from lam.data.graph import AtomicGraph
    from lam.model.config import preset
    from lam.model.lam import LAM

    start_process(task["threads"])
    atoms = water_system(task["repeat"])
    n = len(atoms)
    models = {name: LAM(preset(name)).float().for_inference() for name in ("student", "small")}

    def evaluate(model: LAM) -> None:
        graph = AtomicGraph.from_atoms(atoms, model.cutoff, dtype=torch.float32)
        model(graph, compute_forces=True, compute_stress=True).forces.sum().item()

    per_round = {name: [] for name in models}
    for model in models.values():  # warm-up
        for _ in range(2):
            evaluate(model)
    for _ in range(task["rounds"]):
        for name, model in models.items():
            times, start = [], time.perf_counter()
            while len(times) < 3 or time.perf_counter() - start < task["seconds_per_round"]:
                tick = time.perf_counter()
                evaluate(model)
                times.append(time.perf_counter() - tick)
            per_round[name].append(statistics.median(times) / n * 1e6)
    ratios = [t / s for t, s in zip(per_round["small"], per_round["student"], strict=True)]
    return {**task, "atoms": n, "us_per_atom": {k: [round(v, 1) for v in vals] for k, vals in per_round.items()},
            "ratio_per_round": [round(r, 2) for r in ratios], "ratio_median": statistics.median(ratios)}


def measure(task: dict) -> dict:
    """Run :func:`worker` (or :func:`paired_worker`) in a fresh subprocess; add its peak RSS."""
    cmd = [sys.executable, __file__, "--worker", json.dumps(task)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        return {**task, "error": err[-2000:]}
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)
    result["minor_page_faults"] = usage.ru_minflt  # whole process: lam.cpu_memory keeps this low
    if task["mode"] == "paired":
        print(f"[bench_model] student vs small, {result['atoms']} atoms: ratios {result['ratio_per_round']}",
              file=sys.stderr, flush=True)
        return result
    print(f"[bench_model] {task['mode']} {task['preset']} {task['dtype']} {result['atoms']} atoms: "
          + (f"{result['us_per_atom']:.1f} us/atom" if task["mode"] == "infer" else f"{result['ms_per_step']:.1f} ms/step"),
          file=sys.stderr, flush=True)
    return result


def scaling_tasks(base: dict) -> list[dict]:
    """Inference cost from 192 to 12,288 atoms (the water box tiled 1 to 4 times along each axis).

    Tiles keep the density, so the neighbour counts and the work per atom stay the same; a cut of
    fewer than 192 atoms from the box would have fewer neighbours per atom and look cheaper.
    """
    return [
        # three warm-ups: the first evaluations of a large system still grow the heap (page faults)
        {**base, "mode": "infer", "preset": preset_name, "dtype": "float32", "repeat": repeat,
         "warmup": 3, "reps": 3, "scaling": True}
        for preset_name in ("student", "small")
        for repeat in (1, 2, 3, 4)
    ]


PARTS = ("presets", "ratios", "student", "scaling")


def plan(quick: bool, parts: tuple[str, ...] = PARTS, threads: int = 2) -> list[dict]:
    """The list of measurements.

    Parts: ``presets`` (every preset, float32/float64, inference and training), ``ratios`` (the
    presets compared with DeePMD-kit, float64), ``student`` (student vs ``small``, float32, 192 and
    1536 atoms), ``scaling`` (192 to 12,288 atoms). ``quick`` overrides them with a small subset.
    """
    base = {"threads": threads}
    if quick:
        return [
            {**base, "mode": "infer", "preset": p, "dtype": "float32", "repeat": 1, "warmup": 1, "reps": 2}
            for p in ("student", "small")
        ] + [{**base, "mode": "train", "preset": "student", "dtype": "float32", "repeat": 1, "warmup": 1, "reps": 2}]
    tasks = []
    if "presets" in parts:
        for preset_name in ("student", "small", "medium", "deepmd-small", "deepmd-medium"):
            for dtype in ("float32", "float64"):
                for mode in ("infer", "train"):
                    tasks.append({**base, "mode": mode, "preset": preset_name, "dtype": dtype, "repeat": 1,
                                  "warmup": 2, "reps": 5})
    elif "ratios" in parts:
        tasks += [
            {**base, "mode": mode, "preset": p, "dtype": "float64", "repeat": 1, "warmup": 2, "reps": 5}
            for p in ("student", "deepmd-small", "deepmd-medium")
            for mode in ("infer", "train")
        ]
    if "student" in parts:  # interleaved in one process: see paired_worker
        tasks += [
            {**base, "mode": "paired", "preset": "student+small", "dtype": "float32", "repeat": repeat,
             "rounds": 9, "seconds_per_round": 1.5 if repeat == 1 else 3.0}
            for repeat in (1, 2)
        ]
    if "scaling" in parts:
        tasks += scaling_tasks(base)
    return tasks


def run_deepmd(peers_dir: Path, out: Path) -> dict | None:
    """DeePMD-kit's se_e2_a / dpa2_small / dpa2_medium through the peers harness, same run."""
    venv = Path(os.environ.get("PEERS_VENV", "/tmp/peers"))
    if not (venv / "bin" / "dp").exists() or not (peers_dir / "run_bench.py").exists():
        return {"skipped": f"no DeePMD-kit harness at {peers_dir} / venv {venv} (run its setup.sh)"}
    cmd = [str(venv / "bin" / "python"), str(peers_dir / "run_bench.py"), "--models", "se_e2_a,dpa2_small,dpa2_medium",
           "--reps", "1", "--train-variants", "t2", "--infer-variants", "t2", "--md-variants", "",
           "--steps", "se_e2_a=20,dpa2_small=20,dpa2_medium=10", "--eval-n", "15", "--eval-warmup", "10",
           "--train-timeout", "600", "--out", str(out)]
    subprocess.run(cmd, check=False, stdout=sys.stderr, stderr=sys.stderr)
    return json.loads(out.read_text()) if out.exists() else None


def ratios(results: list[dict], deepmd: dict) -> dict:
    """lam / DeePMD-kit at equal hyperparameters, float64, 192-atom water (lower = lam faster)."""
    pairs = {"deepmd-small": "dpa2_small", "deepmd-medium": "dpa2_medium", "student": "se_e2_a"}
    found = {}
    for ours, theirs in pairs.items():
        peer = deepmd.get("models", {}).get(theirs, {}).get("variants", {}).get("t2", {})
        mine = {r["mode"]: r for r in results if r["preset"] == ours and r["dtype"] == "float64"
                and r.get("repeat") == 1 and "error" not in r}
        entry = {}
        if peer.get("eval") and "infer" in mine:
            entry["deepmd_us_per_atom"] = peer["eval"]["median_us_per_atom"]
            entry["lam_us_per_atom"] = mine["infer"]["us_per_atom"]
            entry["speedup_infer"] = entry["deepmd_us_per_atom"] / entry["lam_us_per_atom"]
        if peer.get("train") and "train" in mine:
            entry["deepmd_ms_per_step"] = peer["train"]["median_s_per_step"] * 1e3
            entry["lam_ms_per_step"] = mine["train"]["ms_per_step"]
            entry["speedup_train"] = entry["deepmd_ms_per_step"] / entry["lam_ms_per_step"]
        found[f"{ours}_vs_{theirs}"] = entry
    return found


def summary(results: list[dict]) -> dict:
    """Student-vs-teacher speed ratio and the scaling slope."""
    def infer(preset_name: str, dtype: str, repeat: int = 1) -> float | None:
        for r in results:
            if (r["mode"] == "infer" and r["preset"] == preset_name and r["dtype"] == dtype
                    and r.get("repeat") == repeat):
                return r.get("us_per_atom")
        return None

    out = {}
    for r in results:
        if r["mode"] == "paired" and "ratio_median" in r:
            out[f"student_speedup_vs_small_interleaved_{r['atoms']}_atoms"] = r["ratio_median"]
    for dtype, repeat, label in (("float32", 1, ""), ("float64", 1, ""), ("float32", 2, "_1536_atoms")):
        teacher, student = infer("small", dtype, repeat), infer("student", dtype, repeat)
        if teacher and student:
            out[f"student_speedup_vs_small_{dtype}{label}"] = teacher / student
    for preset_name in ("student", "small"):
        curve = [(r["atoms"], r["us_per_atom"]) for r in results if r.get("scaling") and r["preset"] == preset_name
                 and "us_per_atom" in r]
        if curve:
            out[f"scaling_{preset_name}_us_per_atom"] = dict(curve)
            out[f"scaling_{preset_name}_max_over_min"] = max(v for _, v in curve) / min(v for _, v in curve)
    return out


def main() -> None:
    """Parse arguments, run the plan, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a subset, under a minute")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--peers-dir", default=str(ROOT.parent / "shared" / "peers"))
    parser.add_argument("--skip-deepmd", action="store_true")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="what to measure (default: everything; see plan())")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per measurement")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    if args.worker:
        task = json.loads(args.worker)
        print(json.dumps(paired_worker(task) if task["mode"] == "paired" else worker(task)))
        return
    start = time.time()
    load_start = os.getloadavg()
    results = [measure(task) for task in plan(args.quick, tuple(args.parts), args.threads)]
    report = {"benchmark": "bench_model", "quick": args.quick, "threads": args.threads, "system": "water 192 atoms (+2x2x2)",
              "loadavg_start": load_start, "loadavg_end": os.getloadavg(), "results": results,
              "summary": summary(results)}
    if not (args.quick or args.skip_deepmd) and {"presets", "ratios"} & set(args.parts):
        deepmd = run_deepmd(Path(args.peers_dir), Path("/tmp/lam_bench_deepmd.json"))
        report["deepmd"] = deepmd
        if deepmd and "models" in deepmd:
            report["ratios_vs_deepmd"] = ratios(results, deepmd)
    report["wall_s"] = round(time.time() - start, 1)
    text = json.dumps(report, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
