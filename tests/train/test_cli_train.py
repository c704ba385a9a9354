"""``lam finetune | eval | change-bias`` through jsonargparse, with the flags users type."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT

from lam.cli import components, normalize_argv
from lam.cli import run as run_cli
from lam.hub.card import read_lineage
from lam.hub.models import load_model
from lam.model.config import HeadSpec, preset
from lam.model.lam import LAM

torch.set_num_threads(1)


def run(argv: list[str]) -> object:
    """What the ``lam`` console script does with these arguments."""
    return run_cli(argv)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A saved two-head student model and an EMT-labelled extxyz file of 8 Cu/Al frames."""
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    model = LAM(dataclasses.replace(preset("student"), heads=(HeadSpec("a"), HeadSpec("b")))).double()
    for head in model.heads.values():
        head.set_energy_references({13: -3.0, 29: -4.0})
    model.save_pretrained(root / "parent")
    frames = []
    for i in range(8):
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
        atoms.symbols[: i % 4] = "Al"
        atoms.rattle(0.05, seed=i)
        atoms.calc = EMT()
        atoms.get_forces()
        frames.append(atoms)
    ase.io.write(root / "data.extxyz", frames)
    return root / "parent", root / "data.extxyz"


def test_normalize_argv_spells_flags_for_jsonargparse() -> None:
    argv = ["finetune", "--from", "lam-mini", "--data", "x--y.xyz", "--max-steps=20", "--overwrite"]
    assert normalize_argv(argv, components()) == [
        "finetune",
        "--model",
        "lam-mini",
        "--data",
        "x--y.xyz",
        "--max_steps=20",
        "--overwrite",
        "true",
    ]
    assert normalize_argv(["eval", "M", "D", "--json", "false"], components())[-2:] == ["--json", "false"]
    argv = normalize_argv(["data", "convert", "a", "b", "--overwrite"], components())
    assert argv[-2:] == ["--overwrite", "true"]


def test_finetune_then_eval_json(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    parent, data = setup
    out = tmp_path / "ft"
    run(
        [
            "finetune",
            "--from",
            str(parent),
            "--data",
            str(data),
            "--max-steps",
            "2",
            "--out",
            str(out),
            "--head",
            "a",
            "--val-every",
            "2",
            "--batch-size",
            "2",
        ]
    )
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    assert "saved" in capsys.readouterr().out
    run(["eval", str(out), str(data), "--json", "--plots", str(tmp_path / "plots")])
    metrics = json.loads(capsys.readouterr().out)
    assert list(metrics) == ["data"]  # only the fine-tuned head, named after the data file
    assert {"energy_mae_per_atom", "force_rmse", "stress_rmse"} <= set(metrics["data"])
    assert (
        metrics["data"]["n_frames_energy"] == 8 and metrics["data"]["n_frames_stress"] == 8
    )  # EMT gives stress
    assert (tmp_path / "plots" / "parity_data.png").is_file()
    with pytest.raises(FileExistsError, match="overwrite"):
        run(["finetune", "--from", str(parent), "--data", str(data), "--max-steps", "0", "--out", str(out)])


def test_eval_unknown_head_lists_heads(setup: tuple[Path, Path]) -> None:
    parent, data = setup
    with pytest.raises(KeyError, match=r"\['a', 'b'\]"):
        run(["eval", str(parent), str(data), "--head", "pbe", "--plots", "null"])


def test_change_bias_only_moves_references(setup: tuple[Path, Path], tmp_path: Path) -> None:
    parent, data = setup
    run(["change-bias", str(parent), str(data), "--head", "b", "--out", str(tmp_path / "cb")])
    before, after = load_model(str(parent)), load_model(str(tmp_path / "cb"))
    assert after.heads["a"].energy_references() == before.heads["a"].energy_references()
    shifted = after.heads["b"].energy_reference - before.heads["b"].energy_reference
    assert set(torch.nonzero(shifted).flatten().tolist()) == {13, 29}
    weights = {k: v for k, v in after.state_dict().items() if "energy_reference" not in k}
    assert all(torch.equal(v, before.state_dict()[k]) for k, v in weights.items())
    assert read_lineage(tmp_path / "cb")["mode"] == "change-bias"
    frames = ase.io.read(data, ":")
    targets = np.array([a.get_potential_energy() / len(a) for a in frames])
    n_atoms = np.array([len(a) for a in frames])
    errors = [np.mean(energies_of(m, frames) / n_atoms - targets) for m in (before, after)]
    assert abs(errors[1]) < 1e-6 < abs(errors[0])  # the refit removes the mean energy error


def energies_of(model: LAM, frames: list) -> np.ndarray:
    from lam.train.refit import model_energies

    return model_energies(model, frames, "b")


@pytest.mark.parametrize("mode", ["full", "frozen"])
def test_finetune_recipes_are_valid_flag_files(setup: tuple[Path, Path], tmp_path: Path, mode: str) -> None:
    parent, data = setup
    recipe = Path(__file__).resolve().parents[2] / "recipes" / f"finetune_{mode}.yaml"
    run(
        [
            "finetune",
            "--config",
            str(recipe),
            "--from",
            str(parent),
            "--data",
            str(data),
            "--head",
            "b",
            "--max-steps",
            "0",
            "--out",
            str(tmp_path / "m"),
        ]
    )
    assert read_lineage(tmp_path / "m")["mode"] == mode
    assert read_lineage(tmp_path / "m")["parent_head"] == "b"
