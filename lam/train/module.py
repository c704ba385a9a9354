"""``LAMTask``: the Lightning wrapper that trains a :class:`~lam.model.lam.LAM` on multi-head data.

Every batch holds frames of one dataset (see :mod:`lam.data.datamodule`) and is routed to the head of
that name. The model itself stays a pure-torch module; everything Lightning-specific lives here.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError

from lam import keys
from lam.data.statistics import fit_per_element
from lam.model.config import HeadSpec, LAMConfig, preset
from lam.model.lam import LAM
from lam.model.outputs import Predictions
from lam.train.losses import EnergyForceStressLoss, LossTerms, atoms_per_graph
from lam.train.schedules import LRSchedule

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def head_spec(name: str) -> HeadSpec:
    """A head named after a dataset; level of theory from its registry card when there is one."""
    from lam.data.registry import UnknownDatasetError, get_card

    try:
        card = get_card(name)
    except (UnknownDatasetError, FileNotFoundError):
        return HeadSpec(name)
    level = card.level_of_theory
    return HeadSpec(name, level_of_theory=f"{level.functional} ({level.code})", datasets=(name,))


def build_model(model: LAM | str | LAMConfig, heads: list[str] | None) -> LAM:
    """A ``LAM`` as given, or a fresh one from a preset name / config with one head per name."""
    if isinstance(model, LAM):
        missing = [h for h in heads or [] if h not in model.heads]
        if missing:
            raise KeyError(f"model has no head(s) {missing}; it has {list(model.heads)}")
        return model
    config = preset(model) if isinstance(model, str) else model
    if heads:
        config = LAMConfig(
            descriptor=config.descriptor, head=config.head, heads=tuple(head_spec(h) for h in heads)
        )
    return LAM(config)


class HeadMetrics(nn.Module):
    """DDP-synced error metrics of one head: energy MAE per atom, force RMSE, stress RMSE."""

    def __init__(self) -> None:
        super().__init__()
        self.energy_mae_per_atom = MeanAbsoluteError()
        self.force_rmse = MeanSquaredError(squared=False)
        self.stress_rmse = MeanSquaredError(squared=False)

    def update(self, pred: Predictions, batch: Any) -> None:
        """Accumulate the labelled parts of a batch (always called, so all ranks run the same updates)."""
        n_atoms = atoms_per_graph(batch, pred.energy.shape[0]).to(pred.energy.dtype)
        has_e, has_s = batch[keys.HAS_ENERGY], batch[keys.HAS_STRESS]
        has_f = batch[keys.HAS_FORCES][batch.batch]
        self.energy_mae_per_atom.update(
            (pred.energy / n_atoms)[has_e].detach(), (batch[keys.ENERGY] / n_atoms)[has_e]
        )
        self.force_rmse.update(pred.forces[has_f].detach().flatten(), batch[keys.FORCES][has_f].flatten())
        if pred.stress is not None:
            self.stress_rmse.update(
                pred.stress[has_s].detach().flatten(), batch[keys.STRESS][has_s].flatten()
            )

    def compute_and_reset(self) -> dict[str, float]:
        """Synced values of the metrics that saw labels (a metric with none computes to NaN)."""
        values = {}
        for name, metric in self.named_children():
            with warnings.catch_warnings():  # a head without stress labels: compute() before update()
                warnings.simplefilter("ignore", UserWarning)
                value = float(metric.compute())  # every rank calls compute, which syncs across ranks
            metric.reset()
            if math.isfinite(value):
                values[name] = value
        return values


class LAMTask(pl.LightningModule):
    """Train a ``LAM``: DeePMD-style loss, Adam with warmup + decay, per-head metrics, optional EMA.

    Args:
        model: a ``LAM``, or a preset name (``tiny``, ``small``, ``student``...) for a fresh model.
        heads: head names of a fresh model (one per dataset); for a given ``LAM``, checked to exist.
        loss: the loss; default :class:`EnergyForceStressLoss` with DeePMD's energy/force prefactors.
        lr: base (peak) learning rate of Adam.
        lr_schedule: warmup and decay; its decay factor also drives the loss prefactors.
        weight_decay: Adam's L2 weight decay.
        ema_decay: exponential moving average of the weights (evaluated and exported); None: off.
        trainable: ``"all"`` parameters, or only the fitting ``"heads"`` (frozen descriptor).
        dtype: floating dtype of the model; batches are cast to it.
        fit_energy_references: before step 0 of a fresh run, fit the descriptor's environment
            normalisation on a sample of training graphs, set each head's per-element energy
            references by least squares on its training frames, and its energy scale to their force RMS.
    """

    def __init__(
        self,
        model: LAM | str = "tiny",
        heads: list[str] | None = None,
        loss: EnergyForceStressLoss | None = None,
        lr: float = 1e-3,
        lr_schedule: LRSchedule | None = None,
        weight_decay: float = 0.0,
        ema_decay: float | None = 0.999,
        trainable: Literal["all", "heads"] = "all",
        dtype: Literal["float32", "float64"] = "float32",
        fit_energy_references: bool = True,
    ) -> None:
        super().__init__()
        if trainable not in ("all", "heads"):
            raise ValueError(f"trainable must be 'all' or 'heads', got {trainable!r}")
        # checkpoints are loaded with weights_only=True: keep hyperparameters to plain values
        self.save_hyperparameters(
            ignore=["model", "loss", "lr_schedule"] if isinstance(model, LAM) else ["loss", "lr_schedule"]
        )
        self.model = build_model(model, heads).to(DTYPES[dtype])
        self.loss_fn = loss if loss is not None else EnergyForceStressLoss()
        self.lr, self.weight_decay, self.ema_decay = lr, weight_decay, ema_decay
        self.lr_schedule = lr_schedule if lr_schedule is not None else LRSchedule()
        self.hparams["lr_schedule"] = dataclasses.asdict(self.lr_schedule)
        self.hparams["loss"] = {"starts": self.loss_fn.starts, "limits": self.loss_fn.limits}
        self.trainable, self.fit_energy_references = trainable, fit_energy_references
        # the task decides what trains: a model that went through LAMCalculator arrives in inference mode
        self.model.for_inference(False)
        if trainable == "heads":
            self.model.descriptor.requires_grad_(False)
        self.val_metrics = nn.ModuleDict({name: HeadMetrics() for name in self.model.heads})

    # ---- set-up --------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        """Adam over the trainable parameters, LR multiplied by the schedule every step."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_callbacks(self) -> list[pl.Callback]:
        """The EMA of the weights, when ``ema_decay`` is set."""
        from lam.train.callbacks import EMA

        return [EMA(self.ema_decay)] if self.ema_decay is not None else []

    def on_fit_start(self) -> None:
        """On a fresh run, fit the statistics (a resumed one has them in its checkpoint).

        Environment-matrix normalisation of the descriptor from a sample of training graphs, then the
        per-head energy references and scales.
        """
        datamodule = getattr(self.trainer, "datamodule", None)
        if (
            self.fit_energy_references
            and self.trainer.ckpt_path is None
            and hasattr(datamodule, "head_statistics")
        ):
            if self.trainable == "all":  # a frozen descriptor keeps its (pretrained) normalisation
                self.model.fit_environment_statistics(datamodule.statistics_batch().to(self.device))
            self.set_head_statistics(datamodule.head_statistics())

    def set_head_statistics(self, stats: dict[str, dict[str, Any]]) -> None:
        """Per head: references by least squares on ``numbers``/``energy``, scale from ``force_rms``."""
        for head, head_stats in stats.items():
            labelled = ~np.isnan(head_stats["energy"])
            if labelled.any():
                numbers = [n for n, keep in zip(head_stats["numbers"], labelled, strict=True) if keep]
                fit = fit_per_element(numbers, head_stats["energy"][labelled])
                self.model.heads[head].set_energy_references(fit.references)
            if head_stats.get("force_rms"):  # forces are what the learned part must first reproduce
                self.model.heads[head].energy_scale.fill_(float(head_stats["force_rms"]))

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Cast floating fields of the batch to the model's dtype."""
        dtype = next(self.model.parameters()).dtype
        return batch.apply(lambda t: t.to(dtype) if t.is_floating_point() else t)

    # ---- steps ---------------------------------------------------------------------------------
    def _predict(self, batch: Any, stress: bool, create_graph: bool | None = None) -> tuple[str, Predictions]:
        head = batch[keys.HEAD][0]
        return head, self.model(
            batch, head=head, compute_forces=True, compute_stress=stress, create_graph=create_graph
        )

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Loss of one homogeneous-head batch, prefactors from the LR decay at this step."""
        head, pred = self._predict(batch, stress=self.loss_fn.uses_stress)
        terms = self.loss_fn(pred, batch, decay=self.lr_schedule.decay(self.global_step))
        self._log_train(head, terms, pred, batch)
        return terms.total

    def _log_train(self, head: str, terms: LossTerms, pred: Predictions, batch: Any) -> None:
        n = len(batch[keys.HEAD])
        self.log("train/loss", terms.total.detach(), prog_bar=True, batch_size=n)
        self.log(f"train/{head}/loss", terms.total.detach(), batch_size=n)
        self.log("train/pref_energy", terms.prefactors[0], batch_size=n)
        self.log("train/pref_forces", terms.prefactors[1], batch_size=n)
        if bool(batch[keys.HAS_ENERGY].any()):
            self.log(f"train/{head}/energy_rmse_per_atom", terms.energy.detach().sqrt(), batch_size=n)
        if bool(batch[keys.HAS_FORCES].any()):
            self.log(f"train/{head}/force_rmse", terms.forces.detach().sqrt(), batch_size=n)
        if self.loss_fn.uses_stress and bool(batch[keys.HAS_STRESS].any()):
            self.log(f"train/{head}/stress_rmse", terms.stress.detach().sqrt(), batch_size=n)

    def on_validation_start(self) -> None:
        """Forces need autograd, which ``torch.inference_mode`` forbids."""
        if torch.is_inference_mode_enabled():
            raise RuntimeError(
                "LAMTask validation computes forces by autograd: build the Trainer with inference_mode=False"
            )

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Accumulate the head's metrics (energy per atom, forces, stress) on held-out frames."""
        head, pred = self._predict(batch, stress=True, create_graph=False)
        self.val_metrics[head].update(pred, batch)

    def on_validation_epoch_end(self) -> None:
        """Log ``val/{head}/energy_mae_per_atom``, ``val/{head}/force_rmse``, ``val/{head}/stress_rmse``."""
        for head, metrics in self.val_metrics.items():
            for name, value in metrics.compute_and_reset().items():
                self.log(f"val/{head}/{name}", value)  # already synced: same on all ranks
