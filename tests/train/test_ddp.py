"""DDP through Lightning: two CPU processes (gloo) train together and end with identical weights."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import torch
    import lightning.pytorch as pl
    from safetensors.torch import save_file
    from lam.data.datamodule import MultiTaskDataModule
    from lam.testing import emt_labelled_cells as emt_frames
    from lam.train.module import LAMTask

    torch.set_num_threads(1)

    class Record(pl.Callback):
        """What each rank trained on, step by step."""
        def __init__(self):
            self.seen = []
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.seen.append([batch.head[0], list(batch.frame_id)])

    out = Path(sys.argv[1])
    pl.seed_everything(0)
    data = MultiTaskDataModule({"cu": emt_frames("Cu", 12, 0), "al": emt_frames("Al", 12, 1, stress=False)},
                               batch_size=2, val_fraction=0.25, cutoff=4.0, steps_per_epoch=3)
    task = LAMTask("student", heads=["cu", "al"], lr=5e-3, ema_decay=0.9)
    record = Record()
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_find_unused_parameters_true",
                         max_steps=5,
                         inference_mode=False, use_distributed_sampler=False, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, callbacks=[record])
    trainer.fit(task, datamodule=data)
    rank = trainer.global_rank
    weights = {k: v.contiguous() for k, v in task.model.state_dict().items()}
    save_file(weights, str(out / f"rank{rank}.safetensors"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    report = {"seen": record.seen, "metrics": metrics}
    report.update(world=trainer.world_size, step=trainer.global_step)
    (out / f"rank{rank}.json").write_text(json.dumps(report))
''')


def test_two_cpu_processes_agree(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2] and [r["step"] for r in ranks] == [5, 5]
    for (head0, frames0), (head1, frames1) in zip(ranks[0]["seen"], ranks[1]["seen"], strict=False):
        assert head0 == head1  # one dataset per global step
        assert frames0 != frames1  # each rank its own part of the global batch
    assert ranks[0]["metrics"] and ranks[0]["metrics"] == ranks[1]["metrics"]  # synced validation metrics
    w0, w1 = (load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    for key in w0:
        torch.testing.assert_close(w0[key], w1[key], rtol=0, atol=0, msg=key)
