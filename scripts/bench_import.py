#!/usr/bin/env python
"""Speed of an imported DeePMD-kit DPA-2 in lam against DeePMD-kit itself, on the same weights.

DeePMD-kit (its venv from ``bash ../shared/peers/setup.sh``) trains one step of a DPA-2 with its
``input_torch_large`` hyperparameters on the shipped water (so the statistics are real) and freezes
it; lam imports the ``.pt`` (``lam import deepmd``). Both then evaluate energy, forces and virial of
the 192-atom water box (DeePMD-kit: ``DeepPot.eval`` of the frozen model, its production path, via
``../shared/peers/infer_worker.py``; lam: ``LAMCalculator``), and run ASE Velocity Verlet MD. Each
measurement is its own process with 2 threads. Prints ONE JSON object with the ratios.

    python scripts/bench_import.py --peers /tmp/peers [--layers 12] [--n 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from deepmd_examples import water_descriptor  # noqa: E402
from make_deepmd_fixtures import LOSS, convert_data  # noqa: E402

PEERS_HARNESS = ROOT.parent / "shared" / "peers" / "infer_worker.py"

LARGE = {  # DeePMD-kit examples/water/dpa2/input_torch_large.json, model section
    "type_map": ["O", "H"],
    "descriptor": {"type": "dpa2", **water_descriptor(12, pair_attention=True), "seed": 1},
    "fitting_net": {"neuron": [240, 240, 240], "resnet_dt": True, "precision": "float64", "seed": 1},
}

LAM_WORKER = """
import json, resource, statistics, sys, time
import ase.io, numpy as np, torch
from ase import units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet
from lam.calculator import LAMCalculator
from lam.cpu_memory import reuse_freed_memory
from lam.model.lam import LAM
reuse_freed_memory()
folder, water, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
atoms = ase.io.read(water, index=0)
atoms.calc = LAMCalculator(LAM.from_pretrained(folder), head="default")
times = []
if mode == "eval":
    for i in range(n + 3):
        atoms.positions[0, 0] += 1e-4  # a new structure each call: nothing cached
        start = time.perf_counter()
        atoms.get_forces(); atoms.get_stress()
        times.append(time.perf_counter() - start)
    median = statistics.median(times[3:])
    out = {"median_s": median, "us_per_atom_median": median / len(atoms) * 1e6}
else:
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(1234))
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    dyn.run(3)
    start = time.perf_counter()
    dyn.run(n)
    out = {"atom_steps_per_s": n * len(atoms) / (time.perf_counter() - start)}
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT_JSON=" + json.dumps(out))
"""


def _result(stdout: str) -> dict:
    line = [line for line in stdout.splitlines() if line.startswith("RESULT_JSON=")][-1]
    return json.loads(line.removeprefix("RESULT_JSON="))


def build_deepmd_model(peers: Path, workdir: Path, layers: int) -> tuple[Path, Path]:
    """One training step of the large water DPA-2 (real statistics), its .pt and its frozen .pth."""
    data = convert_data(workdir)
    model = json.loads(json.dumps(LARGE))
    model["descriptor"]["repformer"]["nlayers"] = layers
    config = {
        "model": model,
        "learning_rate": {"type": "exp", "decay_steps": 5000, "start_lr": 1e-3, "stop_lr": 3.51e-8},
        "loss": LOSS,
        "training": {
            "training_data": {"systems": data["water"], "batch_size": 1},
            "numb_steps": 1,
            "seed": 1,
            "disp_freq": 1,
            "save_freq": 1,
        },
    }
    (workdir / "input.json").write_text(json.dumps(config))
    dp = [str(peers / "bin" / "dp"), "--pt"]
    env = _env(peers)
    subprocess.run(
        [*dp, "train", "input.json", "--skip-neighbor-stat"],
        cwd=workdir,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*dp, "freeze", "-c", ".", "-o", "frozen.pth"], cwd=workdir, env=env, check=True, capture_output=True
    )
    return workdir / "model.ckpt-1.pt", workdir / "frozen.pth"


def _env(peers: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "2",
        "DP_INTRA_OP_PARALLELISM_THREADS": "2",
        "DP_INTER_OP_PARALLELISM_THREADS": "1",
        "PATH": f"{peers / 'bin'}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", type=Path, default=Path("/tmp/peers"))
    parser.add_argument("--layers", type=int, default=12, help="repformer layers (12: input_torch_large)")
    parser.add_argument("--n", type=int, default=10, help="timed evaluations and MD steps")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        checkpoint, frozen = build_deepmd_model(args.peers, workdir, args.layers)
        folder = workdir / "lam_model"
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from lam.cli import main; main()",
                "import",
                "deepmd",
                str(checkpoint),
                "--out",
                str(folder),
            ],
            check=True,
            capture_output=True,
            env=_env(args.peers),
        )
        water = sorted((workdir / "water").rglob("type.raw"))[0].parent
        water_xyz = ROOT / "data_registry" / "data" / "water_deepmd_example" / "test.extxyz.xz"
        results = {}
        for mode in ("eval", "md"):
            peer = [
                str(args.peers / "bin" / "python"),
                str(PEERS_HARNESS),
                "--mode",
                mode,
                "--model",
                str(frozen),
                "--data",
                str(water),
                "--warmup",
                "3",
                "--n",
                str(args.n),
            ]
            results[f"deepmd_{mode}"] = _result(
                subprocess.run(peer, env=_env(args.peers), check=True, capture_output=True, text=True).stdout
            )
            ours = [sys.executable, "-c", LAM_WORKER, str(folder), str(water_xyz), mode, str(args.n)]
            results[f"lam_{mode}"] = _result(
                subprocess.run(ours, env=_env(args.peers), check=True, capture_output=True, text=True).stdout
            )
    results["inference_speedup"] = results["deepmd_eval"]["median_s"] / results["lam_eval"]["median_s"]
    deepmd_md = results["deepmd_md"].get("atom_steps_per_s") or results["deepmd_md"].get(
        "atom_steps_per_s_median"
    )
    results["md_speedup"] = results["lam_md"]["atom_steps_per_s"] / deepmd_md if deepmd_md else None
    results["config"] = {"repformer_layers": args.layers, "precision": "float64", "atoms": 192, "threads": 2}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
