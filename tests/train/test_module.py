"""LAMTask: reference fit before step 0, head routing, metrics per head, freezing, dtype, EMA, NaN guard."""

import lightning.pytorch as pl
import pytest
import torch

from lam.data.datamodule import MultiTaskDataModule
from lam.data.statistics import fit_energy_references
from lam.testing import emt_labelled_cells
from lam.train.callbacks import NaNLossError, NaNLossGuard
from lam.train.module import LAMTask
from lam.train.schedules import LRSchedule

torch.set_num_threads(1)
emt_frames = emt_labelled_cells


def _data(frames_cu=None, steps=4):
    return MultiTaskDataModule(
        {"cu": frames_cu or emt_frames("Cu", 10, 0), "al": emt_frames("Al", 8, 1, stress=False)},
        batch_size=2,
        val_fraction=0.25,
        cutoff=4.0,
        steps_per_epoch=steps,
    )


def _fit(task, data, steps, callbacks=(), **kwargs):
    trainer = pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        inference_mode=False,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        callbacks=list(callbacks),
        **kwargs,
    )
    trainer.fit(task, datamodule=data)
    return trainer


def _validate(task, data):
    trainer = pl.Trainer(
        accelerator="cpu",
        inference_mode=False,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    trainer.validate(task, datamodule=data, verbose=False)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def _task(**kwargs):
    base = dict(model="student", heads=["cu", "al"], lr=5e-3, lr_schedule=LRSchedule("exp", 0, 40, 0.1))
    return LAMTask(**{**base, **kwargs})


def test_references_before_step_zero_training_and_metrics_per_head():
    torch.manual_seed(0)
    data, task = _data(steps=60), _task(ema_decay=None, lr=2e-2, lr_schedule=LRSchedule("exp", 0, 60, 0.1))
    _fit(task, data, steps=1, limit_val_batches=0)
    data.setup()
    cu_train = [
        a for a in emt_frames("Cu", 10, 0) if a.info["frame_id"] in set(data.train_sets["cu"]["frame_id"])
    ]
    assert task.model.heads["cu"].energy_references() == pytest.approx(fit_energy_references(cu_train))
    assert float(task.model.heads["cu"].energy_scale) > 0
    metrics = _validate(task, data)
    assert {
        "val/cu/energy_mae_per_atom",
        "val/cu/force_rmse",
        "val/cu/stress_rmse",
        "val/al/energy_mae_per_atom",
        "val/al/force_rmse",
    } <= set(metrics)
    assert "val/al/stress_rmse" not in metrics  # the Al data carry no stress
    before = metrics["val/cu/force_rmse"] + metrics["val/al/force_rmse"]
    _fit(task, data, steps=60, limit_val_batches=0, gradient_clip_val=10.0)
    after = _validate(task, data)
    assert after["val/cu/force_rmse"] + after["val/al/force_rmse"] < 0.85 * before  # it learns


def test_frozen_descriptor_float64_and_ema():
    task = _task(trainable="heads", dtype="float64", ema_decay=0.5)
    assert next(task.model.parameters()).dtype == torch.float64
    descriptor = {k: v.clone() for k, v in task.model.descriptor.state_dict().items()}
    heads = {k: v.clone() for k, v in task.model.heads.state_dict().items() if "mlp" in k}
    _fit(task, _data(), steps=4, limit_val_batches=0)
    for key, value in task.model.descriptor.state_dict().items():
        assert torch.equal(value, descriptor[key]), key
    assert any(not torch.equal(v, heads[k]) for k, v in task.model.heads.state_dict().items() if k in heads)
    assert [type(c).__name__ for c in task.configure_callbacks()] == ["EMA"]


def test_nan_loss_stops_naming_the_batch_before_any_update():
    frames = emt_frames("Cu", 10, 0)
    for atoms in frames:  # poison every Cu frame
        atoms.calc.results["energy"] = float("nan")
    task = _task(ema_decay=None, fit_energy_references=False)
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    data = MultiTaskDataModule({"cu": frames}, batch_size=2, val_fraction=0.0, cutoff=4.0, steps_per_epoch=4)
    task = LAMTask("student", heads=["cu"], ema_decay=None, fit_energy_references=False)
    task.model.load_state_dict({k: v for k, v in before.items() if not k.startswith("heads.al")})
    with pytest.raises(NaNLossError, match=r"step 0, batch head 'cu', frames \['Cu#\d+', 'Cu#\d+'\]"):
        _fit(task, data, steps=2, callbacks=[NaNLossGuard()], limit_val_batches=0)
    for key, value in task.model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_validation_under_inference_mode_is_refused():
    with pytest.raises(RuntimeError, match="inference_mode=False"):
        trainer = pl.Trainer(
            accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
        )
        trainer.validate(_task(), datamodule=_data(), verbose=False)
