"""Few-shot benchmark: fine-tuned from the built-in model vs trained from scratch, on downstream data.

For each downstream dataset (never in pretraining) and each train size N, the same step budget is
spent twice through :func:`lam.train.finetune.finetune`: from the pretrained model (``--head auto``)
and from a randomly initialised model of the same architecture (``--head new``, references from the
data, environment normalisation fitted on the training frames as a fresh pretraining run does).
Both use the fine-tuning defaults of :class:`~lam.train.finetune.FinetuneOptions` (loss prefactors,
LR schedule) unless ``--scratch-loss deepmd`` / ``--scratch-lr`` give scratch its own. Batches hold
about ``--batch-atoms`` atoms (DeePMD's ``auto`` batch size). Both are scored on a fixed, seeded
test split. The step-0 energy error of the pretrained model is reported with and without the
energy-reference refit. Sizes larger than a dataset's train pool are listed under ``skipped``.

Prints ONE JSON object on stdout (progress goes to stderr) and writes ``bench_finetune.json`` and a
learning-curve ``bench_finetune.png`` into ``--out`` (rewritten after each dataset).

    python scripts/bench_finetune.py --threads 1 --steps 1200 --seed 0 \
        --out scripts/results/bench_finetune/seed0                                  # full, ~50 min
    python scripts/bench_finetune.py --quick --out /tmp/bench                      # a few minutes
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lam.data.sources import load_frames
from lam.data.splits import frame_groups, stratified_holdout
from lam.hub.models import load_model
from lam.train.finetune import FinetuneOptions, finetune
from lam.train.finetune.prepare import force_frames_of, scratch_model
from lam.train.refit import model_energies, refit_energy_references

DATASETS = ("water_deepmd_example", "mapbi3_scan", "ta_snap_pbe")
SIZES = (10, 30, 100, 300, 1000)
# DeePMD-kit's from-scratch prefactors (force-dominated start, energy-weighted end): the recipe a
# scratch model is normally trained with; ``--scratch-loss finetune`` gives it the fine-tuning loss.
SCRATCH_PREFACTORS = {"start_pref_e": 0.02, "limit_pref_e": 1.0, "start_pref_f": 1000.0, "limit_pref_f": 1.0}


def test_split(name: str, split_seed: int, seed: int, n_test: int) -> tuple[list, list]:
    """(train pool, fixed test frames): the card's test split when it has one, else a holdout drawn
    with ``split_seed`` (stratified by ``config_type`` when the frames have one); the pool is then
    shuffled with ``seed`` (its first N frames train a run)."""
    from lam.data.registry import get_card
    from lam.data.training_format import row_to_atoms

    card = get_card(name)
    if "test" in card.files and "train" in card.files:
        from lam.data.registry import load_registered

        pool, test = (load_registered(name, split) for split in ("train", "test"))
        pool, test = [row_to_atoms(r) for r in pool], [row_to_atoms(r) for r in test]
    else:
        frames = load_frames(name)
        groups = frame_groups(frames)
        if groups is not None:
            held = stratified_holdout(groups, n_test, split_seed)
        else:
            held = np.random.default_rng(split_seed).permutation(len(frames))[:n_test]
        rest = np.setdiff1d(np.arange(len(frames)), held)
        pool, test = [frames[i] for i in rest], [frames[i] for i in held]
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


def scratch_folder(model_ref: str, train: list, path: Path, seed: int) -> str:
    """A randomly initialised model of ``model_ref``'s architecture (``scratch_model``), saved to ``path``."""
    scratch_model(load_model(model_ref), train, seed).save_pretrained(path)
    return str(path)


def run_one(parent: str, train: list, test: list, options: FinetuneOptions, root: Path, tag: str) -> dict:
    """Fine-tune ``parent`` on ``train``, score on ``test``; returns the test metrics + bookkeeping."""
    start = time.time()
    with contextlib.redirect_stdout(sys.stderr):  # Lightning chatter must not pollute the JSON
        result = finetune(dataclasses.replace(options, model=parent, out=root / tag, data=tag), train, test)
    metrics = result.test[result.prepared.head]
    return {
        **metrics,
        "steps": result.steps,
        "seconds": round(time.time() - start, 1),
        "parent_head": result.prepared.parent_head,
    }


def batch_size_for(pool: list, atoms_per_batch: int | None, fixed: int) -> int:
    """Frames per batch: ``fixed``, or DeePMD's ``auto:atoms_per_batch`` rule on the pool's mean size."""
    if not atoms_per_batch:
        return fixed
    return max(1, math.ceil(atoms_per_batch / float(np.mean([len(a) for a in pool]))))


def run_options(args: argparse.Namespace, kind: str, name: str, batch_size: int) -> FinetuneOptions:
    """The options of one run: the fine-tuning defaults, or the from-scratch loss and LR for ``scratch``."""
    options = FinetuneOptions(
        head="auto" if kind == "finetuned" else "new",
        name=name,
        max_steps=args.steps,
        val_every=max(args.steps // 10, 1),
        patience=5,
        batch_size=batch_size,
        lr=args.lr if kind == "finetuned" else args.scratch_lr,
        seed=args.seed,
        test_fraction=0.0,
    )
    if kind == "scratch" and args.scratch_loss == "deepmd":
        options = dataclasses.replace(options, **SCRATCH_PREFACTORS)
    return options


def bench_dataset(name: str, args: argparse.Namespace, root: Path) -> dict:
    """Learning curves of one dataset; sizes beyond its train pool are listed under ``skipped``."""
    pool, test = test_split(name, args.split_seed, args.seed, args.test_frames)
    batch_size = batch_size_for(pool, args.batch_atoms, args.batch_size)
    curves: dict[str, dict] = {"finetuned": {}, "scratch": {}, "step0_energy_mae_per_atom": {}}
    skipped: dict[str, list[int]] = {}
    for kind, sizes in (("finetuned", args.sizes), ("scratch", args.scratch_sizes)):
        skipped[kind] = [n for n in sizes if n > len(pool)]
        for n in [s for s in sizes if s <= len(pool)]:
            print(f"[{name}] {kind} N={n} batch {batch_size}", file=sys.stderr)
            parent = args.model
            if kind == "scratch":
                parent = scratch_folder(args.model, pool[:n], root / f"scratch_init_{n}", args.seed)
            options = run_options(args, kind, name, batch_size)
            if kind == "finetuned" and args.match_level:  # rank only heads of the data's functional
                from lam.data.registry import get_card

                functional = get_card(name).level_of_theory.functional
                options = dataclasses.replace(options, level_of_theory=functional)
            row = run_one(parent, pool[:n], test, options, root, f"{kind}_{n}")
            row["train_frames_with_forces"] = force_frames_of(pool[:n])
            curves[kind][n] = row
            if kind == "finetuned":
                curves["step0_energy_mae_per_atom"][n] = step0_energy(
                    args.model, row["parent_head"], pool[:n], test
                )
    return {
        "train_pool": len(pool),
        "test_frames": len(test),
        "batch_size": batch_size,
        "skipped": {
            kind: {"sizes": sizes, "reason": f"larger than the train pool ({len(pool)} frames)"}
            for kind, sizes in skipped.items()
            if sizes
        },
        **curves,
        "goal": goal(curves),
    }


def goal(curves: dict) -> dict[str, dict | str]:
    """Fine-tuned with N frames vs scratch with 10N (N <= 100): is each error at most scratch's?

    A pair whose scratch run is missing (10N beyond the pool) is reported as such, not dropped.
    """
    verdicts: dict[str, dict | str] = {}
    for n, row in curves["finetuned"].items():
        if n > 100:
            continue
        other = curves["scratch"].get(10 * n)
        key = f"N={n}_vs_scratch_{10 * n}"
        if other is None:
            verdicts[key] = "no scratch run with 10N frames (beyond the train pool or not requested)"
            continue
        verdicts[key] = {
            metric: bool(row[metric] <= other[metric]) for metric in ("force_rmse", "energy_mae_per_atom")
        }
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
    defaults = FinetuneOptions()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="one dataset, sizes 10/30 (scratch 10..300), few steps"
    )
    parser.add_argument(
        "--model", default="lam-mini", help="pretrained model (built-in name, folder or Hub id)"
    )
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=None, help="step budget per run (same for all runs)")
    parser.add_argument("--batch-size", type=int, default=4, help="frames per batch without --batch-atoms")
    parser.add_argument(
        "--batch-atoms",
        type=int,
        default=64,
        help="DeePMD 'auto:K' batches: ceil(K / mean atoms per frame) frames (0: use --batch-size)",
    )
    parser.add_argument("--lr", type=float, default=defaults.lr, help="fine-tuning peak LR")
    parser.add_argument("--scratch-lr", type=float, default=None, help="from-scratch peak LR (default: --lr)")
    parser.add_argument(
        "--scratch-loss",
        choices=("deepmd", "finetune"),
        default="finetune",
        help="scratch prefactors: DeePMD's from-scratch 0.02->1 / 1000->1, or the fine-tuning defaults",
    )
    parser.add_argument("--seed", type=int, default=0, help="train subsets, initialisation, batches")
    parser.add_argument(
        "--match-level",
        action="store_true",
        help="--head auto ranks only pretrained heads of the dataset card's functional (--level-of-theory)",
    )
    parser.add_argument(
        "--split-seed", type=int, default=0, help="the held-out test split (keep it fixed across --seed)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--test-frames", type=int, default=None, help="fixed test split size (60; quick: 30)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder of bench_finetune.{png,json} (default: a new temp folder)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing bench_finetune.* in --out")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="fine-tuning train sizes N")
    parser.add_argument("--scratch-sizes", type=int, nargs="+", default=None, help="from-scratch train sizes")
    args = parser.parse_args(argv)
    quick = args.quick
    args.datasets = args.datasets or (["ta_snap_pbe"] if quick else list(DATASETS))
    args.steps = args.steps or (60 if quick else 2000)
    args.test_frames = args.test_frames or (30 if quick else 60)
    args.sizes = tuple(args.sizes or ((10, 30) if quick else SIZES))
    args.scratch_sizes = tuple(args.scratch_sizes or ((10, 30, 100, 300) if quick else SIZES))
    args.scratch_lr = args.scratch_lr or args.lr
    return args


def output_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """(PNG, JSON) under ``--out``; refuses to replace existing ones without ``--overwrite``."""
    if args.out is None:
        args.out = Path(tempfile.mkdtemp(prefix="bench_finetune_"))
    paths = (args.out / "bench_finetune.png", args.out / "bench_finetune.json")
    held = [str(p) for p in paths if p.exists()]
    if held and not args.overwrite:
        raise SystemExit(f"bench_finetune: {', '.join(held)} already exist; pass --overwrite to replace")
    return paths


def make_report(args: argparse.Namespace, results: dict, png: Path, seconds: float, complete: bool) -> dict:
    """The JSON report: settings of both kinds of run, then the per-dataset curves and verdicts."""
    ft, scratch = run_options(args, "finetuned", "", 0), run_options(args, "scratch", "", 0)
    drop = ("name", "batch_size", "head")
    return {
        "model": args.model,
        "steps": args.steps,
        "quick": args.quick,
        "complete": complete,
        "seed": args.seed,
        "split_seed": args.split_seed,
        "match_level": args.match_level,
        "threads": torch.get_num_threads(),
        "finetune_options": {k: v for k, v in dataclasses.asdict(ft).items() if k not in drop},
        "scratch_options": {k: v for k, v in dataclasses.asdict(scratch).items() if k not in drop},
        "plot": str(png),
        "json": str(png.with_suffix(".json")),
        "seconds": round(seconds, 1),
        "datasets": results,
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, write the plot and the JSON file, print and return the JSON report."""
    args = parse_args(argv)
    png, json_path = output_paths(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    start, results = time.time(), {}
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:  # the files are rewritten after each dataset: a long run shows progress
            results[name] = bench_dataset(name, args, Path(tmp) / name)
            plot(results, png)
            report = make_report(args, results, png, time.time() - start, len(results) == len(args.datasets))
            text = json.dumps(report, indent=2)
            json_path.write_text(text + "\n")
    print(text)
    return report


if __name__ == "__main__":
    main()
