"""``lam distill`` killed by SIGKILL mid-iteration, then ``--resume``: an uninterrupted run's weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import pytest
import torch
from safetensors.torch import load_file
from test_distill import starts, teacher_folder

FLAGS = ["--iterations", "2", "--md-steps", "12", "--sample-every", "2", "--steps-per-iteration", "60",
         "--lr", "3e-3", "--batch-size", "2", "--target-force-rmse", "1e-5", "--committee", "2",
         "--trust-lo", "0", "--trust-hi", "1e9", "--logger", "csv"]


def lam_distill(root: Path, out: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-c", "from lam.cli import main; main()", "distill",
               "--teacher", str(root / "teacher"), "--structures", str(root / "starts.extxyz"),
               "--out", str(root / out), *FLAGS, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, process: subprocess.Popen, timeout_s: float = 300.0) -> None:
    began = time.monotonic()
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"lam distill ended before {path.name} appeared: {process.stderr.read()}")
        if time.monotonic() - began > timeout_s:
            raise AssertionError(f"{path} did not appear in {timeout_s} s")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The folder with the teacher and the starts, and the weights of a whole run from them."""
    root = tmp_path_factory.mktemp("kill")
    teacher_folder(root)
    ase.io.write(root / "starts.extxyz", starts())
    whole = lam_distill(root, "whole")
    assert whole.wait() == 0, whole.stderr.read()
    return root, load_file(root / "whole" / "model.safetensors")


@pytest.mark.parametrize("marker", ["round_1.stages/member_0", "round_2.stages/explored.json"],
                         ids=["training round 1", "after exploring round 2"])
def test_sigkill_then_resume_gives_the_uninterrupted_weights(marker: str, uninterrupted: tuple) -> None:
    root, expected = uninterrupted
    out = f"killed_{marker.split('.')[0]}"
    killed = lam_distill(root, out)
    wait_for(root / out / "rounds" / marker, killed)
    killed.send_signal(signal.SIGKILL)  # kill -9: no handler, no cleanup
    killed.wait()
    assert not (root / out / "model.safetensors").exists()  # it died before the end
    resumed = lam_distill(root, out, "--resume")
    assert resumed.wait() == 0, resumed.stderr.read()
    got = load_file(root / out / "model.safetensors")
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert torch.equal(got[key], value), key
