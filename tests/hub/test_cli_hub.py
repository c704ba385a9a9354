"""``lam list | info | predict`` as a user runs them, and heads that refuse elements they never saw."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk, molecule

from lam.calculator import LAMCalculator
from lam.hub.coverage import UnseenElementError
from lam.hub.models import load_model

LAM = str(Path(sys.executable).parent / "lam")
LAM_MINI = Path(__file__).resolve().parents[2] / "lam" / "resources" / "models" / "lam-mini"


def lam(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([LAM, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_list_shows_the_builtin_model() -> None:
    result = lam("list")
    assert result.returncode == 0, result.stderr
    assert "lam-mini" in result.stdout and "built-in" in result.stdout


def test_info_shows_heads_elements_metrics_and_the_weights_hash() -> None:
    text = lam("info", "lam-mini")
    assert text.returncode == 0, text.stderr
    assert "s66x8_wb97x" in text.stdout and "H C N O" in text.stdout and "held-out" in text.stdout
    info = json.loads(lam("info", "lam-mini", "--json").stdout)
    assert info["weights"]["sha256"] == json.loads((LAM_MINI / "config.json").read_text())["weights_sha256"]
    heads = {head["name"]: head for head in info["heads"]}
    assert heads["s66x8_wb97x"]["elements"] == ["H", "C", "N", "O"]
    assert heads["s66x8_wb97x"]["metrics"]["force_rmse"] > 0
    assert info["parameters"] > 1000 and info["descriptor"]["kind"] == "dpa2"


def test_info_of_a_damaged_copy_exits_2_naming_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(LAM_MINI, copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = lam("info", str(copy))
    assert result.returncode == 2
    assert str(weights) in result.stderr and "Traceback" not in result.stderr


def test_predict_writes_energy_and_forces_for_every_frame(tmp_path: Path) -> None:
    frames = [molecule(name) for name in ("H2O", "CH4", "C2H6", "NH3")]
    frames[1].rattle(0.05, seed=1)
    ase.io.write(tmp_path / "in.extxyz", frames)
    result = lam("predict", "lam-mini", "in.extxyz", "--head", "s66x8_wb97x", "-o", "out.extxyz",
                 "--batch-atoms", "10", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = ase.io.read(tmp_path / "out.extxyz", ":")
    assert [a.get_chemical_formula() for a in out] == [a.get_chemical_formula() for a in frames]
    model = load_model("lam-mini")
    for atoms, predicted in zip(frames, out, strict=True):  # batched = one frame at a time
        atoms.calc = LAMCalculator(model, head="s66x8_wb97x")
        assert predicted.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=1e-3)
        np.testing.assert_allclose(predicted.get_forces(), atoms.get_forces(), atol=1e-4)
    again = lam("predict", "lam-mini", "in.extxyz", "--head", "s66x8_wb97x", "-o", "out.extxyz", cwd=tmp_path)
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_predict_refuses_elements_the_head_never_saw_and_writes_nothing(tmp_path: Path) -> None:
    ase.io.write(tmp_path / "cu.extxyz", [bulk("Cu", cubic=True)])
    result = lam("predict", "lam-mini", "cu.extxyz", "--head", "s66x8_wb97x", "-o", "o.extxyz", cwd=tmp_path)
    assert result.returncode == 2 and "not trained on Cu" in result.stderr
    assert "mptrj_random1k_pbe" in result.stderr  # a head that does cover copper
    assert not (tmp_path / "o.extxyz").exists() and not list(tmp_path.glob(".o.*"))


def test_calculator_refuses_unseen_elements_unless_allowed() -> None:
    copper = bulk("Cu", cubic=True)
    copper.calc = LAMCalculator("lam-mini", head="s66x8_wb97x")
    with pytest.raises(UnseenElementError, match="not trained on Cu.*mlearn_elemental_pbe"):
        copper.get_potential_energy()
    copper.calc = LAMCalculator("lam-mini", head="s66x8_wb97x", allow_unseen_elements=True)
    assert np.isfinite(copper.get_potential_energy())
    copper.calc = LAMCalculator("lam-mini", head="mlearn_elemental_pbe")
    assert np.isfinite(copper.get_potential_energy())
