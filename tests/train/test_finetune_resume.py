"""A fine-tuning killed mid-run and resumed ends with the weights of an uninterrupted run."""

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import ase.io
import torch
from conftest import kill_at_step
from safetensors.torch import load_file

from lam.model.config import HeadSpec, preset
from lam.testing import build_model, emt_labelled_cells


def _run(parent: Path, data: Path, out: Path, resume: bool, kill_after: int | None = None):
    """Fine-tune in a fresh process; ``kill_after`` ends it like ``kill -9`` at that step."""
    killer = "" if kill_after is None else kill_at_step("lam.train.finetune.fit", "build_trainer", kill_after)
    code = killer + textwrap.dedent(f"""
        import torch; torch.set_num_threads(1)
        from lam.train.finetune import FinetuneOptions, finetune
        finetune(FinetuneOptions(model={str(parent)!r}, data={str(data)!r}, out={str(out)!r}, head="a",
                                 max_steps=8, val_every=2, checkpoint_every=2, batch_size=2, lr=1e-2,
                                 patience=10, resume={resume}, progress=False))
        """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_killed_finetuning_resumes_to_the_same_weights(tmp_path: Path) -> None:
    model = build_model(dataclasses.replace(preset("student"), heads=(HeadSpec("a"),)))
    model.heads["a"].set_energy_references({29: -4.0})
    model.save_pretrained(tmp_path / "parent")
    frames = emt_labelled_cells("Cu", 12, seed=0, stress=False)
    ase.io.write(tmp_path / "data.extxyz", frames)
    parent, data = tmp_path / "parent", tmp_path / "data.extxyz"
    straight = _run(parent, data, tmp_path / "straight", resume=False)
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed = _run(parent, data, tmp_path / "killed", resume=False, kill_after=5)
    assert killed.returncode == 9, killed.stderr[-3000:]
    assert not (tmp_path / "killed" / "model.safetensors").exists()
    again = _run(parent, data, tmp_path / "killed", resume=False)  # not resuming: the folder is taken
    assert again.returncode != 0 and "already holds" in again.stderr
    resumed = _run(parent, data, tmp_path / "killed", resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    start = model.state_dict()
    moved = [k for k in a if k.startswith("descriptor") and not torch.equal(a[k], start[k].to(a[k].dtype))]
    assert moved  # training changed the weights: the comparison is not between untouched copies


def test_a_truncated_checkpoint_is_named_not_a_traceback(tmp_path: Path) -> None:
    import pytest

    from lam.train.trainer import readable_checkpoint

    damaged = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1000)}}, damaged)
    damaged.write_bytes(damaged.read_bytes()[:500])
    with pytest.raises(ValueError, match="last.ckpt is truncated or damaged"):
        readable_checkpoint(damaged)
