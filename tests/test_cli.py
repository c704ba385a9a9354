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
