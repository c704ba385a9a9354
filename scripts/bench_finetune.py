"""Few-shot benchmark: fine-tuned from the built-in model vs trained from scratch, on downstream data.

For each downstream dataset (never in pretraining) and each train size N, the same step budget is
spent twice through :func:`lam.train.finetune.finetune`: from the pretrained model (``--head auto``)
and from a randomly initialised model of the same architecture (``--head new``, references from the
data). Both are scored on a fixed, seeded test split. The step-0 energy error of the pretrained
model is reported with and without the energy-reference refit.

Prints ONE JSON object on stdout (progress goes to stderr) and writes a learning-curve PNG.

    python scripts/bench_finetune.py            # full: 3 datasets, N = 10..1000 (the lead runs it)
    python scripts/bench_finetune.py --quick    # one dataset, small budget, a few minutes
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lam.hub.models import load_model
from lam.model.lam import LAM
from lam.train.evaluate import load_frames
from lam.train.finetune import FinetuneOptions, finetune
from lam.train.refit import model_energies, refit_energy_references

DATASETS = ("water_deepmd_example", "mapbi3_scan", "ta_snap_pbe")
SIZES = (10, 30, 100, 300, 1000)


def test_split(name: str, seed: int, n_test: int) -> tuple[list, list]:
    """(train pool, fixed test frames): the card's test split when it has one, else a seeded holdout."""
    from lam.data.registry import get_card
    from lam.data.training_format import row_to_atoms

    card = get_card(name)
    if "test" in card.files and "train" in card.files:
        from lam.data.registry import load_registered

        pool, test = (load_registered(name, split) for split in ("train", "test"))
        pool, test = [row_to_atoms(r) for r in pool], [row_to_atoms(r) for r in test]
    else:
        frames = load_frames(name)
        order = np.random.default_rng(seed).permutation(len(frames))
        pool, test = [frames[i] for i in order[n_test:]], [frames[i] for i in order[:n_test]]
    order = np.random.default_rng(seed + 1).permutation(len(pool))
    return [pool[i] for i in order], test[:n_test]


def step0_energy(model_ref: str, head: str, train: list, test: list) -> dict[str, float]:
    """Test energy MAE/atom of the pretrained ``head`` before and after the refit on ``train``."""
    model = load_model(model_ref)
    targets = np.array([a.get_potential_energy() for a in test])
    n_atoms = np.array([len(a) for a in test])
    mae = lambda: float(np.mean(np.abs(model_energies(model, test, head) - targets) / n_atoms))  # noqa: E731
    before = mae()
    refit_energy_references(model, train, head)
    return {"no_refit": before, "refit": mae()}


def scratch_folder(model_ref: str, root: Path, seed: int) -> str:
    """A randomly initialised model of the same architecture as ``model_ref``, saved to a folder."""
    torch.manual_seed(seed)
    parent = load_model(model_ref)
    fresh = LAM(parent.config).to(next(parent.parameters()).dtype)
    fresh.save_pretrained(root / "scratch")
    return str(root / "scratch")


def run_one(parent: str, train: list, test: list, options: FinetuneOptions, root: Path, tag: str) -> dict:
    """Fine-tune ``parent`` on ``train``, score on ``test``; returns the test metrics + bookkeeping."""
    start = time.time()
    with contextlib.redirect_stdout(sys.stderr):  # Lightning chatter must not pollute the JSON
        result = finetune(parent, train, root / tag, options, tag, test_frames=test)
    metrics = result.test[result.prepared.head]
    return {
        **metrics,
        "steps": result.steps,
        "seconds": round(time.time() - start, 1),
        "parent_head": result.prepared.parent_head,
    }


def bench_dataset(name: str, args: argparse.Namespace, root: Path) -> dict:
    """Learning curves of one dataset."""
    pool, test = test_split(name, args.seed, args.test_frames)
    options = FinetuneOptions(
        max_steps=args.steps,
        val_every=max(args.steps // 5, 1),
        patience=3,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        test_fraction=0.0,
    )
    scratch = scratch_folder(args.model, root, args.seed)
    curves: dict[str, dict] = {"finetuned": {}, "scratch": {}, "step0_energy_mae_per_atom": {}}
    for kind, sizes in (("finetuned", args.sizes), ("scratch", args.scratch_sizes)):
        for n in [s for s in sizes if s <= len(pool)]:
            print(f"[{name}] {kind} N={n}", file=sys.stderr)
            head = "auto" if kind == "finetuned" else "new"
            parent = args.model if kind == "finetuned" else scratch
            opts = dataclasses.replace(options, head=head, name=name)
            row = run_one(parent, pool[:n], test, opts, root, f"{kind}_{n}")
            curves[kind][n] = row
            if kind == "finetuned":
                curves["step0_energy_mae_per_atom"][n] = step0_energy(
                    args.model, row["parent_head"], pool[:n], test
                )
    return {"train_pool": len(pool), "test_frames": len(test), **curves, "goal": goal(curves)}


def goal(curves: dict) -> dict[str, bool | None]:
    """Fine-tuned with N frames at least as accurate (force RMSE) as scratch with 10N, for N <= 100."""
    verdicts = {}
    for n, row in curves["finetuned"].items():
        other = curves["scratch"].get(10 * n)
        if n <= 100 and other is not None:
            verdicts[f"N={n}_vs_scratch_{10 * n}"] = bool(row["force_rmse"] <= other["force_rmse"])
    return verdicts


def plot(results: dict, path: Path) -> None:
    """Force RMSE and energy MAE/atom vs N, fine-tuned vs scratch, one column per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(4.5 * len(results), 7), squeeze=False)
    for col, (name, data) in enumerate(results.items()):
        for row, (metric, label) in enumerate(
            (("force_rmse", "force RMSE (eV/Å)"), ("energy_mae_per_atom", "energy MAE (eV/atom)"))
        ):
            ax = axes[row][col]
            for kind, style in (("finetuned", "o-"), ("scratch", "s--")):
                sizes = sorted(data[kind])
                ax.loglog(sizes, [data[kind][n][metric] for n in sizes], style, label=kind)
            ax.set_xlabel("training frames N")
            ax.set_ylabel(label)
            ax.set_title(name)
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--quick`` sets the small defaults."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="one dataset, sizes 10/30 (scratch 10..300), few steps"
    )
    parser.add_argument(
        "--model", default="lam-mini", help="pretrained model (built-in name, folder or Hub id)"
    )
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=None, help="step budget per run (same for all runs)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-frames", type=int, default=None, help="fixed test split size (60; quick: 30)")
    parser.add_argument("--plot", type=Path, default=Path("bench_finetune.png"))
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="fine-tuning train sizes N")
    parser.add_argument("--scratch-sizes", type=int, nargs="+", default=None, help="from-scratch train sizes")
    args = parser.parse_args(argv)
    quick = args.quick
    args.datasets = args.datasets or (["ta_snap_pbe"] if quick else list(DATASETS))
    args.steps = args.steps or (60 if quick else 2000)
    args.test_frames = args.test_frames or (30 if quick else 60)
    args.sizes = tuple(args.sizes or ((10, 30) if quick else SIZES))
    args.scratch_sizes = tuple(args.scratch_sizes or ((10, 30, 100, 300) if quick else SIZES))
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, write the plot, print and return the JSON report."""
    args = parse_args(argv)
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        results = {name: bench_dataset(name, args, Path(tmp) / name) for name in args.datasets}
    plot(results, args.plot)
    report = {
        "model": args.model,
        "steps": args.steps,
        "quick": args.quick,
        "seed": args.seed,
        "plot": str(args.plot),
        "seconds": round(time.time() - start, 1),
        "datasets": results,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
