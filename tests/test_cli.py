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


def test_demo_compares_zero_shot_fine_tuned_and_from_scratch(tmp_path: Path) -> None:
    """The README's main job on a tiny budget: three rows of errors and a parity plot that exists."""
    out = tmp_path / "demo_model"
    result = lam("demo", "--n-train", "6", "--n-test", "3", "--max-steps", "4", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split("  ")[0]: line.split()[-2:] for line in result.stdout.splitlines()
            if line.startswith(("zero-shot (refit)", "fine-tuned", "from scratch"))}
    assert set(rows) == {"zero-shot (refit)", "fine-tuned", "from scratch"}
    assert all(float(value) > 0 for values in rows.values() for value in values)  # meV/atom, meV/Å
    plot = out / "parity_water_deepmd_example.png"
    assert f"parity plot of the fine-tuned model: {plot}" in result.stdout and plot.stat().st_size > 1000
    again = lam("demo", "--n-train", "6", "--n-test", "3", "--max-steps", "4", "--out", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr  # a second run keeps the first model
