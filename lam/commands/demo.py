"""``lam demo``: the README's main job on built-in defaults, offline.

Fine-tunes the built-in pretrained model on a downstream dataset that was kept out of pretraining
(a real DFT set shipped in ``data_registry/``) and prints zero-shot (after the energy-reference
refit) against fine-tuned errors on held-out frames.
"""

from __future__ import annotations

from pathlib import Path


def demo(
    model: str = "lam-mini",
    dataset: str = "ta_snap_pbe",
    n_train: int = 60,
    n_test: int = 60,
    max_steps: int = 300,
    out: Path = Path("lam_demo_model"),
    overwrite: bool = False,
    seed: int = 0,
) -> dict:
    """Fine-tune MODEL on N_TRAIN frames of DATASET and report errors on N_TEST held-out frames.

    Args:
        model: model to start from (built-in name, folder, or Hub id org/name[@revision]).
        dataset: registered downstream dataset (``lam data list``).
        n_train: training frames (a fine-tuning user typically has tens to hundreds).
        n_test: held-out test frames.
        max_steps: optimiser steps at most.
        out: folder for the fine-tuned model.
        overwrite: replace a model already in OUT.
        seed: seed of the frame sample and training.
    """
    import numpy as np

    from lam.data.registry import get_card, load_registered
    from lam.data.training_format import row_to_atoms
    from lam.train.evaluate import format_table
    from lam.train.finetune import FinetuneOptions, finetune

    card = get_card(dataset)
    print(
        f"dataset {card.name}: {card.frame_count} frames, {card.level_of_theory.functional} "
        f"({card.level_of_theory.code}); license {card.license}"
    )
    table = load_registered(dataset)
    order = np.random.default_rng(seed).permutation(len(table))
    if n_train + n_test > len(order):
        raise ValueError(f"{dataset} has {len(order)} frames; asked for {n_train} + {n_test}")
    frames = [row_to_atoms(table[int(i)]) for i in order[: n_train + n_test]]
    options = FinetuneOptions(
        head="auto", max_steps=max_steps, seed=seed, val_fraction=0.15, test_fraction=0.0
    )
    result = finetune(model, frames[:n_train], out, options, dataset, frames[n_train:], overwrite)
    print(f"\nzero-shot, after the energy-reference refit (head {result.prepared.parent_head!r}):")
    print(
        format_table(result.step0_test) if getattr(result, "step0_test", None) else format_table(result.step0)
    )
    print(f"\nfine-tuned, {result.steps} steps on {n_train} frames:")
    print(format_table(result.test))
    print(f"\nmodel saved in {out}/ (config.json, model.safetensors, README.md)")
    return {"step0": result.step0, "test": result.test}


COMMANDS = {"demo": demo}
