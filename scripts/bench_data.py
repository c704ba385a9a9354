"""Throughput of the data pipeline; prints ONE JSON object.

Measured for a 64-atom periodic system (rattled fcc Cu) and a 512-atom periodic system (rattled
random Cu-Pd fcc alloy), EMT-labelled, in frames (or graphs) per second:

- ``read_extxyz``: ``ase.io.read`` of an extxyz file; ``read_frames``: the same through
  ``lam.data.readers.read_frames`` (validation included);
- ``neighbor_list``: ``lam.data.neighbors.neighbor_list`` at 6 Å;
- ``graph_build``: ``AtomicGraph.from_atoms`` at 6 Å (neighbour list included);
- ``collate_bs1`` / ``collate_bs8``: ``torch_geometric`` ``Batch.from_data_list`` of prebuilt graphs;
- ``dataloader_bs1`` / ``dataloader_bs8``: ``GraphDataset`` over the training format + ``torch_geometric``
  ``DataLoader`` (graph building included), when those modules are available.

Each number is the best of ``--repeats`` runs. Other engineers share the cores, so the load
average before and after is recorded. ``--quick`` takes well under a minute.

Usage: ``python scripts/bench_data.py [--quick] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import ase
import ase.io
import numpy as np
import torch
from ase.build import bulk

from lam.data.graph import AtomicGraph
from lam.data.labelers import label_frames
from lam.data.neighbors import neighbor_list

CUTOFF = 6.0  # Å


def make_frames(system: str, n_frames: int) -> list[ase.Atoms]:
    """EMT-labelled rattled frames of ``cu_fcc_64`` or ``cupd_alloy_512``."""
    rng = np.random.default_rng(0)
    if system == "cu_fcc_64":
        ideal = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 4))
    else:
        ideal = bulk("Cu", "fcc", a=3.75, cubic=True).repeat((8, 4, 4))
        symbols = np.array(ideal.get_chemical_symbols())
        symbols[rng.permutation(len(ideal))[: len(ideal) // 2]] = "Pd"
        ideal.set_chemical_symbols(symbols.tolist())
    frames = []
    for _ in range(n_frames):
        atoms = ideal.copy()
        atoms.rattle(0.05, rng=rng)
        frames.append(atoms)
    return label_frames(frames, "emt", progress=False)


def best_rate(work: Callable[[], int], repeats: int) -> float:
    """Items per second of ``work`` (which returns how many items it processed), best of ``repeats``."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        items = work()
        rates.append(items / (time.perf_counter() - start))
    return round(max(rates), 2)


def _collate_rate(graphs: list[AtomicGraph], batch_size: int, repeats: int) -> float:
    from torch_geometric.data import Batch

    def work() -> int:
        for start in range(0, len(graphs), batch_size):
            Batch.from_data_list(graphs[start : start + batch_size])
        return len(graphs)

    return best_rate(work, repeats)


def _dataloader_rates(frames: list[ase.Atoms], tmp: Path, repeats: int) -> dict[str, float | str]:
    """Rates through GraphDataset + DataLoader, or why they could not be measured."""
    try:
        import datasets
        from torch_geometric.loader import DataLoader

        from lam.data.datasets import GraphDataset
        from lam.data.training_format import write_training_dataset
    except ImportError as error:
        return {"dataloader": f"unavailable: {error}"}
    datasets.disable_progress_bars()  # stdout/stderr carry only the JSON report
    dataset = GraphDataset(write_training_dataset(frames, tmp / "training", head="bench"), cutoff=CUTOFF)
    rates: dict[str, float | str] = {}
    for batch_size in (1, 8):
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
        rates[f"dataloader_bs{batch_size}"] = best_rate(
            lambda loader=loader: sum(b.num_graphs for b in loader), repeats)
    return rates


def bench_system(system: str, n_frames: int, repeats: int) -> dict:
    """All rates for one system."""
    frames = make_frames(system, n_frames)
    result: dict = {"atoms": len(frames[0]), "frames": n_frames}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{system}.extxyz"
        ase.io.write(path, frames, format="extxyz")
        result["read_extxyz"] = best_rate(lambda: len(ase.io.read(path, index=":")), repeats)
        try:
            from lam.data.readers import read_frames

            result["read_frames"] = best_rate(lambda: sum(1 for _ in read_frames(path)), repeats)
        except ImportError as error:
            result["read_frames"] = f"unavailable: {error}"
        result["edges_per_frame"] = int(neighbor_list(frames[0].positions, frames[0].cell.array,
                                                      frames[0].pbc, CUTOFF)[0].shape[1])
        result["neighbor_list"] = best_rate(
            lambda: len([neighbor_list(a.positions, a.cell.array, a.pbc, CUTOFF) for a in frames]), repeats)
        result["graph_build"] = best_rate(
            lambda: len([AtomicGraph.from_atoms(a, CUTOFF) for a in frames]), repeats)
        graphs = [AtomicGraph.from_atoms(a, CUTOFF) for a in frames]
        result["collate_bs1"] = _collate_rate(graphs, 1, repeats)
        result["collate_bs8"] = _collate_rate(graphs, 8, repeats)
        result.update(_dataloader_rates(frames, Path(tmp), repeats))
    return result


def main() -> None:
    """Parse arguments, run the benchmark, print the JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames (well under a minute)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (best is kept)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    sizes = {"cu_fcc_64": 16, "cupd_alloy_512": 8} if args.quick else {"cu_fcc_64": 128, "cupd_alloy_512": 32}
    load_before, start = os.getloadavg(), time.perf_counter()
    systems = {name: bench_system(name, n, args.repeats) for name, n in sizes.items()}
    report = {
        "units": "frames or graphs per second (higher is better); cutoff 6 Å",
        "quick": args.quick,
        "repeats": args.repeats,
        "systems": systems,
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "torch": torch.__version__,
            "wall_s": round(time.perf_counter() - start, 1),
        },
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
