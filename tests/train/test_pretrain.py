"""Pretraining from a recipe: recipe validation, export, and exact resume after the process is killed."""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from conftest import kill_at_step
from safetensors.torch import load_file

from lam.model.lam import LAM
from lam.testing import emt_labelled_cells
from lam.train.pretrain import PretrainOptions, pretrain, read_recipe

torch.set_num_threads(1)
emt_frames = emt_labelled_cells
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """A tiny two-head recipe over EMT data written to extxyz files."""
    folder = tmp_path_factory.mktemp("recipe")
    for symbol, seed in (("Cu", 0), ("Al", 1)):
        ase.io.write(folder / f"{symbol}.extxyz", emt_frames(symbol, 10, seed))
    text = (REPO / "recipes" / "pretrain_tiny.yaml").read_text()
    head, _, _ = text.partition("\ndata:\n")
    for key, value in {
        "max_steps": 6,
        "ema_decay": 0.5,
        "warmup_steps": 2,
        "decay_steps": 6,
        "lr": 0.002,
    }.items():
        head = re.sub(rf"(\n *{key}): [^\n]*", rf"\1: {value}", head)
    path = folder / "recipe.yaml"
    path.write_text(
        head
        + "\n"
        + textwrap.dedent(f"""\
        data:
          datasets:
            cu: {folder / "Cu.extxyz"}
            al: {folder / "Al.extxyz"}
          batch_size: 2
          val_fraction: 0.2
          cutoff: 5.0
          steps_per_epoch: 4
        """)
    )
    return path


def test_shipped_recipes_parse_and_unknown_keys_are_named(tmp_path):
    for name in ("pretrain_tiny", "pretrain_small"):
        cfg = read_recipe(REPO / "recipes" / f"{name}.yaml")
        assert cfg.model.heads == list(cfg.data.datasets)  # one head per dataset
        assert not {"water_deepmd_example", "mapbi3_scan", "ta_snap_pbe"} & set(cfg.data.datasets)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (REPO / "recipes" / "pretrain_tiny.yaml").read_text().replace("  lr: ", "  learning_rat: 1\n  lr: ")
    )
    with pytest.raises(ValueError, match="learning_rat"):
        read_recipe(bad)


def _run(recipe: Path, run_dir: Path, kill_after: int | None = None) -> subprocess.CompletedProcess:
    """Pretrain in a fresh process; ``kill_after`` ends it abruptly (os._exit) after that many steps."""
    killer = ""
    if kill_after is not None:
        killer = kill_at_step("lam.train.pretrain", "build_pretrain_trainer", kill_after)
    code = killer + textwrap.dedent(f"""
        import torch; torch.set_num_threads(1)
        from lam.train.pretrain import PretrainOptions, pretrain
        pretrain(PretrainOptions(recipe={str(recipe)!r}, run_dir={str(run_dir)!r}, checkpoint_every=1))
        """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_killed_run_resumes_to_the_same_weights(recipe, tmp_path):
    straight = _run(recipe, tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed = _run(recipe, tmp_path / "killed", kill_after=3)
    assert killed.returncode == 9, killed.stderr[-3000:]
    assert not (tmp_path / "killed" / "model").exists()
    resumed = _run(recipe, tmp_path / "killed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_file(tmp_path / "straight" / "model" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-7, msg=key)
    fresh = LAM(LAM.from_pretrained(tmp_path / "straight" / "model").config)
    moved = [k for k, v in fresh.state_dict().items() if "mlp" in k and not torch.equal(v, a[k])]
    assert moved  # training changed the weights (the comparison above is not vacuous)


def test_export_writes_model_card_metrics_and_refuses_to_overwrite(recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = pretrain(PretrainOptions(recipe=recipe, max_steps=2, run_dir=tmp_path / "run", logger="wandb"))
    assert {p.name for p in out.iterdir()} >= {
        "config.json",
        "model.safetensors",
        "README.md",
        "metrics.json",
    }
    model = LAM.from_pretrained(out)
    assert list(model.heads) == ["cu", "al"]
    assert model.heads["cu"].energy_references()[29] == pytest.approx(
        np.mean([a.get_potential_energy() / 4 for a in emt_frames("Cu", 10, 0)]), abs=0.05
    )
    card = (out / "README.md").read_text()
    assert "| `cu` |" in card and "| `al` |" in card
    assert (tmp_path / "run" / "wandb").is_dir()  # the wandb run kept on disk (offline)
    with pytest.raises(FileExistsError, match="already holds a model"):
        pretrain(PretrainOptions(recipe=recipe, max_steps=2, run_dir=tmp_path / "run2", out=out))


def test_builtin_lam_mini_matches_its_recipe():
    from lam.hub.models import load_model

    folder = REPO / "lam" / "resources" / "models" / "lam-mini"
    model = load_model("lam-mini")
    recipe = read_recipe(REPO / "recipes" / "pretrain_tiny.yaml")
    assert list(model.heads) == recipe.model.heads  # one head per pretraining dataset
    assert model.config.descriptor.kind == "dpa2"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics["heads"]) == set(model.heads) and metrics["steps"] > 0
    card = (folder / "README.md").read_text()
    assert all(f"| `{head}` |" in card for head in model.heads) and "Licenses" in card
    assert sum(p.stat().st_size for p in folder.iterdir()) < 5_000_000  # a few MB at most
