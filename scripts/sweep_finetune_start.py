"""Fine-tune one training subset of ``bench_finetune.py`` from several starting points; one JSON object.

Where ``--head auto`` has little to rank on (Ta at N=10: a few symmetric cells), this shows how much
the starting head and the loss prefactors matter on their own. Each variant is a ``+``-joined list of
a pretrained head name, ``new`` (a fresh head) or ``auto``, and optionally ``pref-f=X`` (a constant
force prefactor instead of the default 1) and ``mode=full|frozen|replay``. Same split, subset, step
budget and scoring as ``bench_finetune.py --seed S`` (its ``run_one``).

    python scripts/sweep_finetune_start.py --dataset ta_snap_pbe --seed 2 --n 10 \\
        --variants auto new mptrj_random1k_pbe auto+pref-f=100 auto+mode=frozen --out DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import bench_finetune
import torch

from lam.train.finetune import FinetuneOptions


def variant_options(options: FinetuneOptions, variant: str) -> FinetuneOptions:
    """``options`` with the start head and force prefactor of ``variant`` (see the module docstring)."""
    for part in variant.split("+"):
        if part.startswith("pref-f="):
            value = float(part.removeprefix("pref-f="))
            options = dataclasses.replace(options, start_pref_f=value, limit_pref_f=value)
        elif part.startswith("mode="):
            options = dataclasses.replace(options, mode=part.removeprefix("mode="))
        else:
            options = dataclasses.replace(options, head=part)
    return options


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ta_snap_pbe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=10, help="training frames (the first N of the seeded pool)")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--variants", nargs="+", default=["auto", "new"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="folder of sweep.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    bench_args = bench_finetune.parse_args(
        ["--steps", str(args.steps), "--seed", str(args.seed), "--datasets", args.dataset]
    )
    pool, test = bench_finetune.test_split(
        args.dataset, bench_args.split_seed, args.seed, bench_args.test_frames
    )
    batch_size = bench_finetune.batch_size_for(pool, bench_args.batch_atoms, bench_args.batch_size)
    base = bench_finetune.run_options(bench_args, "finetuned", args.dataset, batch_size)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:  # the fine-tuned model folders are not kept
        for variant in args.variants:
            options = variant_options(base, variant)
            row = bench_finetune.run_one(bench_args.model, pool[: args.n], test, options, Path(tmp), variant)
            runs[variant] = {k: row[k] for k in ("force_rmse", "energy_mae_per_atom", "parent_head", "steps")}
            print(variant, json.dumps(runs[variant]), file=sys.stderr)
    result = {
        "dataset": args.dataset,
        "seed": args.seed,
        "n_train": args.n,
        "train_frames_with_forces": bench_finetune.force_frames_of(pool[: args.n]),
        "steps": args.steps,
        "runs": runs,
    }
    (args.out / "sweep.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
