"""The one place a ``lightning.pytorch.Trainer`` is built: pretraining, fine-tuning and distillation.

Every workflow takes the same :class:`TrainerOptions` (where to run and at what precision) and the same
``logger`` choice, so a fine-tuning of a large imported model moves to a GPU node with the flags a
pretraining job uses. What each workflow adds (checkpoints, early stopping, export) comes in as callbacks.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger

LoggerName = Literal["csv", "tensorboard", "wandb"]
# where a workflow keeps its resumable training state: <run dir>/checkpoints/last.ckpt
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"


@dataclass(frozen=True)
class TrainerOptions:
    """Where and how Lightning runs a workflow: the options every workflow's options start with.

    ``FinetuneOptions``, ``DistillOptions`` and ``PretrainOptions`` extend this class, so ``lam
    finetune``, ``lam distill`` and ``lam pretrain`` take the same ``--accelerator``, ``--devices``,
    ``--num-nodes``, ``--precision``, ``--logger`` and ``--progress`` flags.

    Attributes:
        accelerator: ``cpu``, ``gpu``/``cuda``, ``mps`` or ``auto``; None: ``auto`` (a pretraining
            recipe's own value when it has one).
        devices: devices per node (an int, a list like ``[0, 2]`` or ``auto``); more than one runs DDP.
            None: 1 (or the recipe's).
        num_nodes: machines of a multi-node DDP job (launched by SLURM or ``torchrun``); None: 1.
        precision: Lightning precision (``32-true``, ``64-true``, ``bf16-mixed``...); None keeps the
            model's own dtype (or the recipe's precision).
        logger: training logs: ``csv``, ``tensorboard`` or ``wandb`` (``WANDB_MODE=offline`` keeps a
            wandb run on disk for a later ``wandb sync``).
        progress: print one line per validation (per round when distilling) with the current errors.
    """

    accelerator: str | None = None
    devices: int | str | list[int] | None = None
    num_nodes: int | None = None
    precision: str | None = None
    logger: LoggerName = "csv"
    progress: bool = True
    # no public methods: the CLI builds these options (and the workflows' subclasses) from their fields


def lightning_args(options: TrainerOptions) -> dict[str, Any]:
    """The ``pl.Trainer`` arguments ``options`` set (those left at None are not set)."""
    args = {"accelerator": options.accelerator, "devices": options.devices, "num_nodes": options.num_nodes,
            "precision": options.precision}
    return {key: value for key, value in args.items() if value is not None}


def is_distributed(trainer_args: dict[str, Any]) -> bool:
    """True when ``pl.Trainer`` arguments ask for more than one process (DDP)."""
    devices = trainer_args.get("devices", 1)
    several = devices not in (1, "1") and not (isinstance(devices, list) and len(devices) == 1)
    return several or int(trainer_args.get("num_nodes", 1)) > 1


def quiet_lightning() -> None:
    """Silence Lightning's start-up tips and the deprecation warnings of third-party packages.

    The user sees lam's own progress lines; Lightning's ``GPU available`` banner, its advertising tip
    and deprecation notices from packages lam does not control say nothing about their run.
    """
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    third_party = r"(lightning|torch|torch_geometric|wandb|jsonargparse)(\.|$)"
    for category in (DeprecationWarning, FutureWarning):  # the user's own deprecations stay visible
        warnings.filterwarnings("ignore", category=category, module=third_party)
    warnings.filterwarnings("ignore", message=r".*(does not have many workers|isinstance\(treespec).*")
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    # LAMTask casts batches to its dtype in on_after_batch_transfer on purpose, with or without a datamodule
    warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer`.*")
    # distillation rounds train without a validation loader on purpose (agreement is measured after)
    warnings.filterwarnings("ignore", message=r".*`validation_step` but have no `val_dataloader`.*")


def make_logger(kind: LoggerName, run_dir: Path, name: str, version: str | None = None) -> Logger:
    """The run's logger; every kind writes under ``run_dir``.

    ``wandb`` honours ``WANDB_MODE`` (``offline`` keeps the run on disk for a later ``wandb sync``);
    lam never writes that variable itself.
    """
    if kind == "csv":
        return CSVLogger(run_dir, name="", version=version)
    if kind == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        if not any(importlib.util.find_spec(name) for name in ("tensorboard", "tensorboardX")):
            raise ValueError("--logger tensorboard needs the tensorboard package: pip install tensorboard")

        return TensorBoardLogger(run_dir, name="", version=version)
    from lightning.pytorch.loggers import WandbLogger

    return WandbLogger(project="lam", name=name, save_dir=str(run_dir), version=version)


def build_trainer(
    options: TrainerOptions,
    *,
    max_steps: int,
    run_dir: Path,
    name: str,
    callbacks: list[Callback] | None = None,
    val_every: int | None = None,
    logger_version: str | None = None,
    **trainer_args: Any,
) -> pl.Trainer:
    """A Trainer for one lam workflow.

    Args:
        options: accelerator, devices, nodes, precision and logger (any workflow's options).
        max_steps: optimiser steps (the unit of every lam budget; epochs are open-ended).
        run_dir: logs (and the checkpoints a callback writes) go here.
        name: the run's name in the logger.
        callbacks: the workflow's callbacks (checkpoints, early stopping, export, progress).
        val_every: optimiser steps between validations (for loaders of ``val_every`` batches an epoch).
        logger_version: sub-folder of the logger (e.g. one per distillation round).
        trainer_args: further ``pl.Trainer`` arguments (a pretraining recipe's ``trainer`` section);
            they override lam's defaults, and ``options`` overrides them.
    """
    quiet_lightning()
    callbacks = callbacks or []
    args: dict[str, Any] = {
        "accelerator": "auto",
        "devices": 1,
        "max_epochs": -1,
        "enable_checkpointing": any(isinstance(c, ModelCheckpoint) for c in callbacks),
        "enable_progress_bar": False,  # lam prints one line per validation (ValidationProgress)
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    if val_every is not None:
        args["log_every_n_steps"] = min(50, val_every)  # short runs log their loss too
    # a recipe parsed with its defaults spells "Lightning's default" as None: keep lam's defaults then
    args.update({key: value for key, value in trainer_args.items() if value is not None})
    args.update(lightning_args(options))
    if is_distributed(args):
        # each step trains one head, so the other heads' parameters get no gradient on that step
        args.setdefault("strategy", "ddp_find_unused_parameters_true")
    return pl.Trainer(
        **args,
        max_steps=max_steps,
        logger=make_logger(options.logger, run_dir, name, logger_version),
        callbacks=callbacks,
        default_root_dir=run_dir,
        inference_mode=False,  # forces in validation need autograd
        use_distributed_sampler=False,  # lam's samplers shard the data themselves
    )


def readable_checkpoint(path: Path) -> Path:
    """``path`` if it holds a loadable training checkpoint (read with ``weights_only=True``: no code runs).

    Raises:
        ValueError: a truncated or damaged checkpoint, naming it and what to do.
    """
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # zipfile, pickle and runtime errors all mean the same here
        raise ValueError(
            f"{path} is truncated or damaged ({type(error).__name__}); delete it to start afresh, or "
            "restore it from a copy"
        ) from None
    return path


class ValidationProgress(Callback):
    """One line per validation: the step and the current held-out errors (meV/atom, meV/Å).

    Args:
        print_fn: where lines go (``print`` by default; tests capture them).
    """

    def __init__(self, print_fn: Any = None) -> None:
        self.print_fn = print_fn or (lambda line: print(line, flush=True))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Print ``step N/M: head E MAE .. meV/atom, F RMSE .. meV/Å`` (rank 0 only)."""
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        errors: dict[str, dict[str, float]] = {}
        for key, value in trainer.callback_metrics.items():
            parts = key.split("/")
            if len(parts) == 3 and parts[0] == "val":
                errors.setdefault(parts[1], {})[parts[2]] = 1000 * float(value)
        cells = [
            f"{head} E MAE {m.get('energy_mae_per_atom', float('nan')):.2f} meV/atom, "
            f"F RMSE {m.get('force_rmse', float('nan')):.1f} meV/Å"
            for head, m in errors.items()
        ]
        self.print_fn(f"step {trainer.global_step}/{trainer.max_steps}: " + "; ".join(cells))
