"""The memory estimate: its scaling, its agreement with measured peaks, and the refusal above the limit."""

import json
import subprocess
import sys
from pathlib import Path

import ase.io
import pytest
import torch
from torch_geometric.data import Batch

from lam.cli import main
from lam.data.graph import AtomicGraph
from lam.model.config import DPA2Config, HeadSpec, LAMConfig
from lam.model.lam import LAM
from lam.model.memory import MemoryEstimateError, check_batch_memory, estimate_bytes, parse_bytes
from lam.predict import predict

ROOT = Path(__file__).resolve().parents[1]
WATER = ROOT / "data_registry" / "data" / "water_deepmd_example" / "test.extxyz.xz"


def water(repeat: int) -> ase.Atoms:
    return ase.io.read(WATER, index=0).repeat((repeat, 1, 1))


def test_estimate_scales_with_atoms_precision_and_mode() -> None:
    config = LAMConfig(descriptor=DPA2Config(), heads=(HeadSpec(name="w", elements=(1, 8)),))
    base = estimate_bytes(config, 1000, 0, 100, 4, "forces")
    assert estimate_bytes(config, 2000, 0, 100, 4, "forces") == pytest.approx(2 * base, rel=1e-6)
    assert estimate_bytes(config, 1000, 0, 100, 8, "forces") == pytest.approx(2 * base, rel=1e-6)
    modes = [estimate_bytes(config, 1000, 0, 100, 4, mode) for mode in ("energy", "forces", "training")]
    assert modes == sorted(modes) and modes[0] < modes[2]
    # pair attention is quadratic in the repformer's slots: a denser structure costs more per atom
    assert estimate_bytes(config, 1000, 0, 150, 4, "forces") > 1.2 * base


def test_estimate_is_within_a_factor_of_the_measured_peak() -> None:
    """Peak resident memory of a 1,152-atom water box with lam-mini, measured in a fresh process."""
    command = [sys.executable, str(ROOT / "scripts" / "bench_memory.py"), "--models", "mini",
               "--modes", "forces", "training", "--repeats", "6"]
    result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    for row in result["rows"]:
        assert 0.7 < row["estimate_over_measured"] < 2.0, row


def test_a_batch_over_the_limit_is_refused_naming_the_frame(monkeypatch) -> None:
    model = LAM.from_pretrained("lam-mini")
    graph = AtomicGraph.from_atoms(water(6), model.cutoff, frame_id="box.extxyz#3")
    monkeypatch.setenv("LAM_MEMORY_LIMIT", "20MB")
    with pytest.raises(MemoryEstimateError, match=r"box\.extxyz#3 \(1152 atoms.*--batch-atoms"):
        check_batch_memory(model.config, Batch.from_data_list([graph]), torch.float32, "forces")
    monkeypatch.setenv("LAM_MEMORY_LIMIT", "1GB")
    check_batch_memory(model.config, Batch.from_data_list([graph]), torch.float32, "forces")


def test_predict_refuses_before_running_out_of_memory(monkeypatch) -> None:
    model = LAM.from_pretrained("lam-mini")
    monkeypatch.setenv("LAM_MEMORY_LIMIT", "60MB")
    with pytest.raises(MemoryEstimateError, match="frame 1 "):
        predict(model, [water(1), water(6)], head="s66x8_wb97x", batch_atoms=1000)
    # the small frame alone fits in 60 MB
    assert len(predict(model, [water(1)], head="s66x8_wb97x")) == 1


def test_the_command_exits_2_and_writes_nothing(tmp_path, capsys, monkeypatch) -> None:
    data = tmp_path / "box.extxyz"
    ase.io.write(data, water(6))
    monkeypatch.setenv("LAM_MEMORY_LIMIT", "20MB")
    out = tmp_path / "p.extxyz"
    argv = ["lam", "predict", "lam-mini", str(data), "--head", "s66x8_wb97x", "-o", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "needs about" in err and "LAM_MEMORY_LIMIT" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box.extxyz"]


def test_sizes_parse_with_units() -> None:
    assert parse_bytes("8GB") == 8 * 2**30 and parse_bytes("500 mb") == 500 * 2**20
    assert parse_bytes("123") == 123
    with pytest.raises(MemoryEstimateError, match="LAM_MEMORY_LIMIT"):
        parse_bytes("lots")
