"""The installed ``lam`` console script, as a user runs it (exit status and output)."""

import subprocess
import sys
from pathlib import Path

LAM = str(Path(sys.executable).parent / "lam")


def lam(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LAM, *args], capture_output=True, text=True, timeout=300)


def test_help_lists_every_subcommand() -> None:
    result = lam("--help")
    assert result.returncode == 0, result.stderr
    for command in ("data", "pretrain", "finetune", "eval", "change-bias", "distill", "demo"):
        assert command in result.stdout


def test_data_list_shows_the_registry_and_exits_cleanly() -> None:
    result = lam("data", "list")
    assert result.returncode == 0, result.stderr
    for name in ("mptrj", "ani1x", "oc20_s2ef", "water_deepmd_example", "emt_bulk_alloys"):
        assert name in result.stdout


def test_data_show_prints_a_card_and_unknown_names_fail() -> None:
    shown = lam("data", "show", "ta_snap_pbe")
    assert shown.returncode == 0 and "GPL-2.0" in shown.stdout
    missing = lam("data", "show", "no_such_dataset")
    assert missing.returncode != 0 and "ta_snap_pbe" in missing.stderr + missing.stdout


def test_user_errors_are_one_line_with_status_two(tmp_path: Path) -> None:
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    frames = Path(__file__).resolve().parents[1] / "data_registry" / "data" / "ta_snap_pbe" / "data.extxyz.xz"
    result = lam("data", "convert", str(frames), str(out) + "/")
    assert result.returncode == 2
    assert "lam: error:" in result.stderr and "Traceback" not in result.stderr
    assert (out / "keep.txt").read_text() == "user data"
