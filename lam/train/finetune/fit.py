"""The training run of a fine-tuning: the Lightning task built from the options, and early stopping.

:func:`lam.train.finetune.run.finetune` prepares the model (head choice, reference refit) and calls
:func:`train`; :func:`build_task` is also what tests use to check that options reach the trainer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import ase
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from lam.data.datamodule import MultiTaskDataModule
from lam.data.splits import Split
from lam.data.statistics import force_rms
from lam.model.lam import LAM
from lam.train.finetune.options import FinetuneOptions
from lam.train.losses import EnergyForceStressLoss
from lam.train.module import LAMTask
from lam.train.refit import MIN_FORCE_SCALE
from lam.train.schedules import LRSchedule
from lam.train.trainer import (
    CHECKPOINT_DIR,
    LAST_CHECKPOINT,
    ValidationProgress,
    build_trainer,
    readable_checkpoint,
)


def early_stopping_metric(head: str, frames: Sequence[ase.Atoms]) -> str:
    """Early-stopping metric: force RMSE when the frames carry force information, else energy MAE/atom.

    Forces all below :data:`~lam.train.refit.MIN_FORCE_SCALE` (symmetric cells, zero by symmetry)
    carry none: every model predicts zero there too, so their RMSE is rounding noise and would keep
    an arbitrary checkpoint. The same rule as :func:`~lam.train.refit.rank_heads`.
    """
    scale = force_rms(frames)
    informative = scale is not None and scale >= MIN_FORCE_SCALE
    return f"val/{head}/force_rmse" if informative else f"val/{head}/energy_mae_per_atom"


def build_task(model: LAM, options: FinetuneOptions) -> LAMTask:
    """The Lightning task of a fine-tuning run: loss, LR schedule and trainable part from ``options``.

    The LR decays exponentially from ``lr`` (after ``warmup_steps``) to ``final_lr_ratio * lr`` at
    ``max_steps``; the loss prefactors follow that decay from their start to their limit values.
    """
    loss = EnergyForceStressLoss(
        energy_start=options.start_pref_e,
        energy_limit=options.limit_pref_e,
        forces_start=options.start_pref_f,
        forces_limit=options.limit_pref_f,
        stress_start=options.start_pref_s,
        stress_limit=options.limit_pref_s,
    )
    schedule = LRSchedule(
        "exp",
        warmup_steps=options.warmup_steps,
        decay_steps=max(options.max_steps - options.warmup_steps, 1),
        final_ratio=options.final_lr_ratio,
    )
    return LAMTask(
        model,
        loss=loss,
        lr=options.lr,
        lr_schedule=schedule,
        ema_decay=None,
        trainable="heads" if options.mode == "frozen" else "all",
        dtype="float64" if next(model.parameters()).dtype == torch.float64 else "float32",
        fit_energy_references=False,  # the refit in prepare() already set them from the parent + data
    )




def last_checkpoint(log_dir: Path) -> Path:
    """Where a fine-tuning run keeps its latest full training state (for ``--resume``)."""
    return Path(log_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT


def callbacks_for(head: str, split: Split, options: FinetuneOptions, log_dir: Path) -> list:
    """Periodic full-state checkpoints, and with validation frames early stopping and the best weights.

    With ``options.progress`` a line per validation reports the current errors.
    """
    directory = Path(log_dir) / CHECKPOINT_DIR
    if not split.val:
        every = options.checkpoint_every
        return [ModelCheckpoint(directory, save_last=True, save_top_k=0, every_n_train_steps=every)]
    # saved right after a validation (an epoch is val_every steps), so the early-stopping and best-model
    # state in the checkpoint include it: a resumed run then decides exactly as an uninterrupted one
    # (one file, overwritten: Lightning's save_last only follows a top-k save, and there is none here)
    periodic = ModelCheckpoint(
        dirpath=directory, filename=LAST_CHECKPOINT.removesuffix(".ckpt"), save_top_k=1,
        enable_version_counter=False, save_on_train_epoch_end=False,
        every_n_epochs=max(1, options.checkpoint_every // options.val_every),
    )
    monitor = early_stopping_metric(head, split.val)
    # all three act at the end of a validation (Lightning runs checkpoint callbacks last), never at the
    # end of a training epoch, which a resumed run would replay without validation metrics
    best = ModelCheckpoint(
        dirpath=directory, filename="best", monitor=monitor, mode="min", save_top_k=1,
        save_on_train_epoch_end=False,
    )
    stop = EarlyStopping(monitor, patience=options.patience, mode="min", check_on_train_epoch_end=False)
    callbacks = [stop, best, periodic]
    return callbacks + ([ValidationProgress()] if options.progress else [])


def train(
    model: LAM,
    head: str,
    split: Split,
    options: FinetuneOptions,
    log_dir: Path,
    replay: dict[str, list[ase.Atoms]] | None = None,
) -> int:
    """Train ``head`` (and ``replay`` heads) with early stopping; the best validated weights are kept.

    With ``options.resume`` and a checkpoint in ``log_dir``, training continues from it exactly: the
    data order is a function of the step (:class:`~lam.data.datamodule.MultiTaskBatchSampler`) and the
    checkpoint holds the weights, optimiser, schedule, early-stopping state and the next step.

    Returns:
        The number of optimiser steps taken.
    """
    import lightning.pytorch as pl

    pl.seed_everything(options.seed, verbose=False)
    task = build_task(model, options)
    sources = {head: split.train, **(replay or {})}
    # the user's head gets half the steps however large the replay sample is
    weights = {h: 0.5 if h == head else 0.5 / max(len(sources) - 1, 1) for h in sources}
    data = MultiTaskDataModule(
        sources,
        batch_size=options.batch_size,
        weights=weights,
        val_fraction=0.0,
        seed=options.seed,
        cutoff=model.cutoff,
        steps_per_epoch=min(options.val_every, options.max_steps),
        cache_graphs=True,  # a fine-tuning set is small: its neighbour lists are built once
        val_datasets={head: split.val} if split.val else None,
    )
    callbacks = callbacks_for(head, split, options, log_dir)
    trainer = build_trainer(
        options, max_steps=options.max_steps, run_dir=log_dir, name=head, callbacks=callbacks,
        val_every=options.val_every,
    )
    last = last_checkpoint(log_dir)
    resume_from = readable_checkpoint(last) if options.resume and last.is_file() else None
    trainer.fit(task, datamodule=data, ckpt_path=resume_from)
    best = next((c for c in callbacks if isinstance(c, ModelCheckpoint) and c.monitor), None)
    if best is not None and best.best_model_path:
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        task.load_state_dict(state)
    model.cpu()
    return int(trainer.global_step)
