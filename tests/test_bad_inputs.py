"""Bad inputs through the ``lam`` command: exit status 2, one line naming the problem, nothing lost."""

import json
import shutil
import sys
from pathlib import Path

import ase.io
import pytest

from lam.cli import main
from lam.testing import emt_labelled_cells

LAM_MINI = Path(__file__).resolve().parents[1] / "lam" / "resources" / "models" / "lam-mini"
TA = Path(__file__).resolve().parents[1] / "data_registry" / "data" / "ta_snap_pbe" / "data.extxyz.xz"


def lam(argv: list[str], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """Run the console script in-process; (exit status, stderr)."""
    monkeypatch.setattr(sys, "argv", ["lam", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
        sys.exit(0)
    return exit_info.value.code, capsys.readouterr().err


def labelled(path: Path) -> Path:
    ase.io.write(path, emt_labelled_cells("Cu", 4, seed=0))
    return path


def broken_config(tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(LAM_MINI, copy)
    config = json.loads((copy / "config.json").read_text())
    del config["descriptor"]["repinit_cutoff"]
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def cases(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (argv, a phrase the one-line message must contain)."""
    (tmp_path / "empty.extxyz").write_text("")
    (tmp_path / "trunc.extxyz.xz").write_bytes(TA.read_bytes()[:4000])
    header = tmp_path / "header"
    shutil.copytree(LAM_MINI, header)
    (header / "model.safetensors").write_bytes(b"\xff" * 64)
    data = str(labelled(tmp_path / "cu.extxyz"))
    convert = ["data", "convert"]
    predict = ["predict", "lam-mini", data, "--head", "nope", "-o"]
    return {
        "empty file": ([*convert, str(tmp_path / "empty.extxyz"), str(tmp_path / "o1")], "holds no frames"),
        "truncated xz": ([*convert, str(tmp_path / "trunc.extxyz.xz"), str(tmp_path / "o2")], "truncated"),
        "missing path": ([*convert, "no_dir/file.extxyz", str(tmp_path / "o3")], "no such file"),
        "config missing a field": (["info", str(broken_config(tmp_path))], "repinit_cutoff"),
        "corrupt weights header": (["info", str(header)], "model.safetensors"),
        "unknown head": ([*predict, str(tmp_path / "p.xyz")], "nope"),
        "output format": ([*predict, str(tmp_path / "p")], "extxyz"),
        "not a hub id": (["info", "no_dir/model.v1"], "neither a built-in model"),
    }


@pytest.mark.parametrize("name", ["empty file", "truncated xz", "missing path", "config missing a field",
                                  "corrupt weights header", "unknown head", "output format", "not a hub id"])
def test_bad_input_exits_2_with_one_line(name: str, tmp_path: Path, capsys, monkeypatch) -> None:
    argv, phrase = cases(tmp_path)[name]
    before = sorted(p.name for p in tmp_path.iterdir())
    status, err = lam(argv, capsys, monkeypatch)
    assert status == 2, err
    lines = [line for line in err.splitlines() if line.startswith("lam: error:")]
    assert len(lines) == 1 and phrase in lines[0] and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output left behind


def test_finetune_into_a_folder_with_a_users_files_changes_nothing(tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    data = labelled(tmp_path / "cu.extxyz")
    status, err = lam(["finetune", "--from", "lam-mini", "--data", str(data), "--out", str(out),
                       "--max-steps", "5"], capsys, monkeypatch)
    assert status == 2 and "notes.txt" in err and "--overwrite" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "my notes"


def test_user_errors_share_one_base_and_keep_their_builtin_kind() -> None:
    from lam.data.readers import EmptyInputError
    from lam.data.registry import UnknownDatasetError
    from lam.data.validate import InvalidFrameError
    from lam.errors import LamError
    from lam.hub.coverage import UnseenElementError
    from lam.model.serialization import IntegrityError

    for error in (EmptyInputError, InvalidFrameError, UnseenElementError, IntegrityError):
        assert issubclass(error, LamError) and issubclass(error, ValueError)
    assert issubclass(UnknownDatasetError, LamError) and issubclass(UnknownDatasetError, LookupError)
