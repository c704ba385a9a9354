"""``lam finetune | distill | pretrain``: the long-running workflows.

Each command *is* its options dataclass: jsonargparse builds the flags (and accepts a recipe with
``--config``) from :class:`~lam.train.finetune.options.FinetuneOptions`,
:class:`~lam.train.distill.options.DistillOptions` and :class:`~lam.train.pretrain.PretrainOptions`,
and :data:`RUNNERS` runs the options the parser built, printing what the user wants to see.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lam.train.distill.options import DistillOptions
from lam.train.finetune.options import FinetuneOptions
from lam.train.pretrain import PretrainOptions


def run_finetune(options: FinetuneOptions) -> Path:
    """Fine-tune (the run prints its decisions and one line per validation), then the test errors."""
    from lam.train.evaluate import format_table
    from lam.train.finetune.run import finetune

    result = finetune(options)
    if result.test:
        print(f"fine-tuned ({result.steps} steps), test frames:\n" + format_table(result.test))
        print(f"parity plot: {result.out / f'parity_{result.prepared.head}.png'}")
    print(f"saved {result.out}")
    return result.out


def run_distill(options: DistillOptions) -> Path:
    """Distil (one progress line per round), then print convergence and speed."""
    from lam.train.distill.run import distill

    result = distill(options)
    speed = result.speed
    state = "converged" if result.converged else "target not reached"
    print(
        f"{state} after {len(result.iterations)} iteration(s); "
        f"teacher {speed['teacher_us_per_atom']:.0f} µs/atom, "
        f"student {speed['student_us_per_atom']:.0f} µs/atom ({speed['speedup']:.1f}x); MD "
        f"{speed['student_md_atom_steps_per_s']:.0f} against {speed['teacher_md_atom_steps_per_s']:.0f} "
        f"atom-steps/s ({speed['md_speedup']:.1f}x; {speed['n_atoms']} atoms, "
        f"load {speed['load_average_1min']:.1f})"
    )
    print(f"saved {result.out}")
    return result.out


def run_pretrain(options: PretrainOptions) -> Path:
    """Pretrain from the recipe and print where the model was exported."""
    from lam.train.pretrain import pretrain

    model_dir = pretrain(options)
    print(f"saved {model_dir}")
    return model_dir


COMMANDS = {"finetune": FinetuneOptions, "distill": DistillOptions, "pretrain": PretrainOptions}
RUNNERS: dict[type, Callable[[Any], Any]] = {
    FinetuneOptions: run_finetune,
    DistillOptions: run_distill,
    PretrainOptions: run_pretrain,
}
