"""``FinetuneOptions``: the one definition of a fine-tuning run.

``lam finetune``'s flags, the keys of ``recipes/finetune_*.yaml`` and the Python API all come from this
dataclass (the CLI builds its parser from it with jsonargparse), so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lam.train.trainer import TrainerOptions

Mode = Literal["full", "frozen", "replay"]


@dataclass(frozen=True)
class FinetuneOptions(TrainerOptions):
    """Fine-tune a pretrained model on your labelled frames and save it as a model folder.

    Attributes:
        model: parent model (also ``--from``): built-in name (``lam-mini``), local folder or Hub id
            ``org/name[@revision]``.
        data: labelled frames: any file ``lam data convert`` reads (extxyz, .db, DeePMD folder...) or a
            registered dataset name. From Python with frames given, the name recorded in the card.
        out: output model folder (default: ``finetuned_<head name>``).
        overwrite: write into an ``out`` folder that already holds files (lam replaces only its own).
        resume: continue a killed run from ``out/logs/checkpoints/last.ckpt`` (same options and data);
            without a checkpoint there it starts afresh.
        test_data: separate labelled test frames (then ``data`` is split into train and validation only).
        require_labels: refuse data in which some frame lacks an energy or forces (otherwise a warning
            counts them and names the first; they train only the labels they have).
        head: pretrained head to start from, ``auto`` (best zero-shot after the energy refit) or ``new``.
        name: name of the fine-tuned head (default: from the data's file or dataset name).
        mode: ``full`` (all weights train), ``frozen`` (descriptor fixed, head only) or ``replay`` (also
            keep training a sample of the pretraining data on its own heads).
        level_of_theory: functional of your data (e.g. ``PBE``); ``head=auto`` then ranks only the
            pretrained heads of that functional, when the model has any (a few symmetric frames rank
            heads by noisy energies alone and can pick another functional's head).
        max_steps: optimiser steps at most (early stopping may end sooner).
        lr: peak learning rate.
        batch_size: frames per batch.
        val_fraction: fraction of the frames held out for validation and early stopping.
        test_fraction: fraction held out for the final test report (ignored with ``test_data``).
        seed: seed of the split, the replay sample and the training.
        patience: validation checks without improvement before early stopping.
        val_every: optimiser steps between validation checks.
        checkpoint_every: optimiser steps between checkpoints of the whole training state (for resume).
        replay_frames: frames sampled from each pretraining dataset under ``mode=replay``.
        auto_frames: training frames used to rank heads under ``head=auto``.
        final_lr_ratio: learning rate at ``max_steps`` over ``lr`` (exponential decay, DeePMD's
            ``stop_lr / start_lr``).
        warmup_steps: linear learning-rate warmup at the start.
        start_pref_e: energy-per-atom loss prefactor at the start ((eV/atom)^-2, DeePMD's name). The
            fine-tuning default is DeePMD's *limit* values from step 0 (energy 1, forces 1): the
            from-scratch start (0.02 / 1000) learns a force field's shape first, which a pretrained
            model has, and with a short budget that phase never ends while the energies drift by
            0.1-0.3 eV/atom (water, MAPbI3, 30 frames, 300 steps).
        limit_pref_e: energy-per-atom prefactor at the end of the learning-rate decay.
        start_pref_f: force prefactor at the start ((eV/Å)^-2).
        limit_pref_f: force prefactor at the end of the decay.
        start_pref_s: stress prefactor at the start ((eV/Å^3)^-2); 0 with limit 0: no stress term.
        limit_pref_s: stress prefactor at the end of the decay.
        (and the trainer options of :class:`~lam.train.trainer.TrainerOptions`).
    """

    model: str = "lam-mini"
    data: str | None = None
    out: Path | None = None
    overwrite: bool = False
    resume: bool = False
    test_data: str | None = None
    require_labels: bool = False
    head: str = "auto"
    name: str | None = None
    mode: Mode = "full"
    level_of_theory: str | None = None
    max_steps: int = 1000
    lr: float = 1e-3
    batch_size: int = 4
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0
    patience: int = 10
    val_every: int = 50
    checkpoint_every: int = 50
    replay_frames: int = 100
    auto_frames: int = 20
    final_lr_ratio: float = 0.05
    warmup_steps: int = 0
    start_pref_e: float = 1.0
    limit_pref_e: float = 1.0
    start_pref_f: float = 1.0
    limit_pref_f: float = 1.0
    start_pref_s: float = 0.0
    limit_pref_s: float = 0.0

    def __post_init__(self) -> None:
        positive = (self.batch_size, self.val_every, self.patience, self.checkpoint_every)
        if self.max_steps < 0 or min(positive) < 1:
            raise ValueError(
                f"finetune: max_steps must be >= 0 and batch_size, val_every, patience, checkpoint_every "
                f">= 1, got max_steps={self.max_steps}, batch_size={self.batch_size}, "
                f"val_every={self.val_every}, patience={self.patience}, "
                f"checkpoint_every={self.checkpoint_every}"
            )
        if not (0.0 <= self.val_fraction < 1.0 and 0.0 <= self.test_fraction < 1.0):
            raise ValueError(
                f"finetune: val_fraction and test_fraction must be in [0, 1), got {self.val_fraction} "
                f"and {self.test_fraction}"
            )
