"""Multi-task pretraining from a recipe: parse, build the Trainer, fit (resuming if killed), export.

A recipe (``recipes/pretrain_*.yaml``) has LightningCLI's layout: ``seed_everything``, ``trainer``
(``lightning.pytorch.Trainer`` arguments), ``model`` (:class:`~lam.train.module.LAMTask` arguments) and
``data`` (:class:`~lam.data.datamodule.MultiTaskDataModule` arguments); nested objects are given as
``class_path``/``init_args``. jsonargparse validates it against the constructors, so an unknown key
is an error naming the key. ``model.heads`` is linked from ``data.datasets`` (one head per dataset).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from jsonargparse import ArgumentParser, Namespace
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

from lam.data.datamodule import MultiTaskDataModule
from lam.hub.card import pretrained_card
from lam.hub.outputs import write_json
from lam.train.callbacks import ExportModel, NaNLossGuard
from lam.train.module import LAMTask
from lam.train.trainer import (
    CHECKPOINT_DIR,
    LAST_CHECKPOINT,
    TrainerOptions,
    ValidationProgress,
    build_trainer,
    readable_checkpoint,
)

# Trainer arguments that pretrain() owns (run folder, callbacks, loggers) or that LAMTask needs fixed.
_MANAGED_TRAINER_ARGS = {
    "callbacks",
    "logger",
    "default_root_dir",
    "inference_mode",
    "use_distributed_sampler",
}


def recipe_parser() -> ArgumentParser:
    """The jsonargparse parser of a pretraining recipe (unknown keys are errors)."""
    parser = ArgumentParser(prog="lam pretrain", exit_on_error=False)
    parser.add_argument("--seed_everything", type=int, default=0)
    parser.add_class_arguments(pl.Trainer, "trainer", skip=_MANAGED_TRAINER_ARGS, instantiate=False)
    parser.add_class_arguments(LAMTask, "model")
    parser.add_class_arguments(MultiTaskDataModule, "data")
    parser.link_arguments("data.datasets", "model.heads", compute_fn=lambda datasets: list(datasets))
    return parser


def read_recipe(config: str | Path, overrides: dict[str, Any] | None = None) -> Namespace:
    """Parse and validate a recipe file; ``overrides`` maps dotted keys (``trainer.max_steps``) to values."""
    parser = recipe_parser()
    try:
        cfg = parser.parse_path(str(config), defaults=True)
        for key, value in (overrides or {}).items():
            cfg[key] = value
        parser.validate(cfg)
    except Exception as error:  # jsonargparse's ArgumentError; keep the message, name the file
        raise ValueError(f"recipe {config}: {error}") from error
    return cfg


@dataclass(frozen=True)
class PretrainOptions(TrainerOptions):
    """Multi-task pretraining from a recipe (``recipes/pretrain_*.yaml``); exports a model folder.

    The recipe holds the model, data and ``trainer`` sections; these options say where the run goes
    and override the recipe's trainer settings that are given (accelerator, devices, ...).

    Attributes:
        recipe: the recipe YAML (trainer / model / data sections); also spelled ``--config``.
        max_steps: override the recipe's ``trainer.max_steps`` (e.g. for a smoke run).
        out: model folder to export (``config.json``, ``model.safetensors``, ``README.md``,
            ``metrics.json``); default ``<run_dir>/model``.
        run_dir: logs and checkpoints; default ``runs/<recipe name>``.
        overwrite: replace a model already in ``out`` / checkpoints of an earlier run.
        resume: continue from ``<run_dir>/checkpoints/last.ckpt`` when it exists (a killed run
            continues exactly where it stopped).
        checkpoint_every: write ``last.ckpt`` every this many optimizer steps.
        (and the trainer options of :class:`~lam.train.trainer.TrainerOptions`).
    """

    recipe: Path | None = None
    max_steps: int | None = None
    out: Path | None = None
    run_dir: Path | None = None
    overwrite: bool = False
    resume: bool = True
    checkpoint_every: int = 50


def build_pretrain_trainer(
    options: PretrainOptions, recipe_trainer: dict[str, Any], run_dir: Path, export_dir: Path, name: str
) -> pl.Trainer:
    """A Trainer with lam's checkpointing (``last.ckpt``), NaN guard, export and logger."""
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / CHECKPOINT_DIR, save_last=True, save_top_k=0,
        every_n_train_steps=options.checkpoint_every,
    )
    callbacks = [
        NaNLossGuard(),
        ExportModel(export_dir, options.overwrite),
        checkpoint,
        LearningRateMonitor(logging_interval="step"),
    ]
    if options.progress:
        callbacks.append(ValidationProgress())
    trainer_args = dict(recipe_trainer)
    max_steps = trainer_args.pop("max_steps")
    return build_trainer(options, max_steps=max_steps, run_dir=run_dir, name=name, callbacks=callbacks,
                         **trainer_args)


def _resume_checkpoint(run_dir: Path, resume: bool, overwrite: bool) -> Path | None:
    """``last.ckpt`` of an earlier (possibly killed) run to resume, or None for a fresh run."""
    last = run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
    if not last.is_file():
        return None
    if resume:
        return readable_checkpoint(last)
    if not overwrite:
        raise FileExistsError(
            f"{run_dir} holds checkpoints of an earlier run; pass resume=True to continue it "
            "or overwrite=True to start afresh"
        )
    last.unlink()
    return None


def pretrain(options: PretrainOptions) -> Path:
    """Pretrain a multi-head model from ``options.recipe`` and export it as a ``save_pretrained`` folder.

    Returns:
        The exported model folder.
    """
    if options.recipe is None:
        raise ValueError("lam pretrain needs a recipe: lam pretrain --config recipes/pretrain_tiny.yaml")
    recipe = Path(options.recipe)
    overrides = {"trainer.max_steps": options.max_steps} if options.max_steps is not None else None
    cfg = read_recipe(recipe, overrides)
    run_dir = Path(options.run_dir) if options.run_dir is not None else Path("runs") / recipe.stem
    out = Path(options.out) if options.out is not None else run_dir / "model"
    ExportModel(out, options.overwrite).check_writable()
    ckpt_path = _resume_checkpoint(run_dir, options.resume, options.overwrite)
    pl.seed_everything(cfg.seed_everything, verbose=False)
    init = recipe_parser().instantiate(cfg)
    task, data = init.model, init.data
    trainer = build_pretrain_trainer(options, dict(cfg.trainer), run_dir, out, recipe.stem)
    trainer.fit(task, datamodule=data, ckpt_path=ckpt_path)
    trainer.validate(task, datamodule=data, verbose=False)
    if trainer.is_global_zero:
        metrics = collect_metrics(trainer, data)
        write_json(out / "metrics.json", metrics)
        pretrained_card(task.model, metrics, recipe=recipe.name).save(out / "README.md")
    return out


def collect_metrics(trainer: pl.Trainer, data: MultiTaskDataModule) -> dict[str, Any]:
    """Held-out metrics per head from the last validation, with the split sizes and steps."""
    logged = {key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("val/")}
    heads = {}
    for head in data.heads:
        values = {
            key.split("/")[-1]: value for key, value in logged.items() if key.startswith(f"val/{head}/")
        }
        heads[head] = {
            **values,
            "train_frames": len(data.train_sets[head]),
            "val_frames": len(data.val_sets[head]),
        }
    return {"steps": int(trainer.global_step), "heads": heads}
