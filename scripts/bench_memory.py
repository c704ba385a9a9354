#!/usr/bin/env python
"""How close lam's memory estimate (``lam.model.memory``) is to the peak memory it predicts.

Each measurement runs in its own process: it builds the model, evaluates a 3-atom warm-up (so the
libraries' own memory is counted in the baseline), then one water box of 384 or 1,152 atoms (the
shipped 192-atom DFT frame, tiled), and reports the growth of peak resident memory (``ru_maxrss``)
against the estimate. Modes: ``energy`` (no gradients), ``forces`` (evaluation), ``training``
(energy + force loss, backward). Prints ONE JSON object; ``estimate / measured`` is the figure.

Usage:
    python scripts/bench_memory.py                 # lam-mini, DPA-2 small and medium (~3 min)
    python scripts/bench_memory.py --models mini --dtypes float32 float64
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WATER = ROOT / "data_registry" / "data" / "water_deepmd_example" / "test.extxyz.xz"

WORKER = """
import json, resource, sys
import ase.io, torch
from torch_geometric.data import Batch
from lam.data.graph import AtomicGraph
from lam.model.config import DPA2Config, HeadSpec, LAMConfig
from lam.model.lam import LAM
from lam.model.memory import estimate_bytes

kind, repeat, mode, dtype_name, water = sys.argv[1:6]
torch.set_num_threads(1)
dtype = getattr(torch, dtype_name)
if kind == "mini":
    model = LAM.from_pretrained("lam-mini")
else:
    descriptor = DPA2Config(pair_attention=kind == "medium", n_repformer_layers=6 if kind == "medium" else 3)
    model = LAM(LAMConfig(descriptor=descriptor, heads=(HeadSpec(name="water", elements=(1, 8)),)))
model = model.to(dtype)
head = next(iter(model.heads))
frame = ase.io.read(water, index=0)
atoms = frame.repeat((int(repeat), 1, 1))
graph = AtomicGraph.from_atoms(atoms, model.cutoff, dtype=dtype)

def run(batch):
    model.train(mode == "training")
    if mode == "energy":
        with torch.no_grad():
            model(batch, head=head, compute_forces=False)
        return
    out = model(batch, head=head, compute_forces=True)
    if mode == "training":
        (out.energy.sum() + out.forces.pow(2).sum()).backward()

run(Batch.from_data_list([AtomicGraph.from_atoms(frame[:3], model.cutoff, dtype=dtype)]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
run(Batch.from_data_list([graph]))
measured = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
widest = int(torch.bincount(graph.edge_index[0]).max())
estimate = estimate_bytes(model.config, len(atoms), graph.edge_index.shape[1], widest, dtype.itemsize, mode)
print(json.dumps({"atoms": len(atoms), "measured_mib": measured / 2**20, "estimate_mib": estimate / 2**20,
                  "estimate_over_measured": estimate / measured}))
"""


def measure(kind: str, repeat: int, mode: str, dtype: str) -> dict:
    """One measurement in a fresh process (glibc's default allocator, as a library user has it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LAM_MEMORY_LIMIT": "1TB"}
    command = [sys.executable, "-c", WORKER, kind, str(repeat), mode, dtype, str(WATER)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    return {"model": kind, "mode": mode, "dtype": dtype, **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["mini", "small", "medium"])
    parser.add_argument("--modes", nargs="+", default=["energy", "forces", "training"])
    parser.add_argument("--dtypes", nargs="+", default=["float32"])
    parser.add_argument("--repeats", nargs="+", type=int, default=[2, 6], help="tiles of the 192-atom box")
    args = parser.parse_args()
    rows = [
        measure(kind, repeat, mode, dtype)
        for kind in args.models
        for mode in args.modes
        for dtype in args.dtypes
        for repeat in args.repeats
    ]
    ratios = [row["estimate_over_measured"] for row in rows]
    print(json.dumps({"rows": rows, "ratio_min": min(ratios), "ratio_max": max(ratios)}, indent=1))


if __name__ == "__main__":
    main()
