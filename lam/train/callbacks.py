"""Callbacks for what Lightning does not ship: EMA settings, a NaN-loss guard, export of the model.

The EMA itself is Lightning's :class:`~lightning.pytorch.callbacks.WeightAveraging` with torch's EMA
update; it already checkpoints both the averaged and the current weights, so resume is exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, WeightAveraging
from torch import Tensor
from torch.optim.swa_utils import get_ema_multi_avg_fn

from lam import keys
from lam.errors import LamError
from lam.hub.outputs import refuse_existing_model


class EMA(WeightAveraging):
    """Exponential moving average of the weights: ``avg = decay * avg + (1 - decay) * w`` every step.

    Validation, the end of training and hence exported models use the averaged weights; buffers
    (the per-element energy references) are averaged too, which leaves constants unchanged.

    Args:
        decay: EMA decay per optimizer step, in [0, 1).
    """

    def __init__(self, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        super().__init__(multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.decay = decay


class NaNLossError(LamError, FloatingPointError):
    """The loss became NaN or infinite; the message names the step, head and frames of the batch."""


class NaNLossGuard(Callback):
    """Stop before a non-finite loss is back-propagated, naming the batch.

    The check runs before ``backward``, so the weights are never touched by the bad batch and the last
    checkpoint written by ``ModelCheckpoint`` stays the last good one.
    """

    def __init__(self) -> None:
        self._batch_info = ""

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Remember which frames this batch holds."""
        self._batch_info = f"head {batch[keys.HEAD][0]!r}, frames {list(batch[keys.FRAME_ID])}"

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: Tensor) -> None:
        """Raise :class:`NaNLossError` when the loss is not finite."""
        if not bool(loss.isfinite()):
            last = getattr(trainer.checkpoint_callback, "last_model_path", "") or "none written yet"
            raise NaNLossError(
                f"non-finite loss ({float(loss)}) at step {trainer.global_step}, batch {self._batch_info}; "
                f"training stopped, last good checkpoint: {last}"
            )


class ExportModel(Callback):
    """At the end of fitting, write the trained ``LAM`` as a ``save_pretrained`` folder (rank 0 only).

    Runs in ``on_fit_end``, after every ``on_train_end`` (so after EMA weights are copied in).

    Args:
        directory: the model folder to write (``config.json``, ``model.safetensors``).
        overwrite: replace a folder that already holds a model.
    """

    def __init__(self, directory: str | Path, overwrite: bool = False) -> None:
        self.directory, self.overwrite = Path(directory), overwrite

    def check_writable(self) -> None:
        """Refuse early (before training) when the folder holds a model and ``overwrite`` is off."""
        refuse_existing_model(self.directory, self.overwrite)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Fail fast rather than after hours of training."""
        self.check_writable()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Save ``pl_module.model``."""
        if trainer.is_global_zero:
            self.directory.mkdir(parents=True, exist_ok=True)
            pl_module.model.save_pretrained(self.directory)
