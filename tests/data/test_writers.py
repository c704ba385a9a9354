"""write_frames round trips for every writer, refusal to overwrite, and ``lam data convert``."""

from __future__ import annotations

import json
from pathlib import Path

import ase
import numpy as np
import pytest
from conftest import IO_FIXTURES, assert_same_frames

from lam.commands.data_io import convert
from lam.data.readers import read_frames
from lam.data.training_format import load_training_dataset
from lam.data.validate import InvalidFrameError
from lam.data.writers import output_format, write_frames


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("ds", "training"),
        ("out/ds/", "training"),
        ("a.xyz", "extxyz"),
        ("a.extxyz.xz", "extxyz"),
        ("a.db", "db"),
        ("a.traj", "traj"),
    ],
)
def test_output_format_from_path(path: str, expected: str) -> None:
    assert output_format(path) == expected
    assert output_format(path, "deepmd") == "deepmd"


@pytest.mark.parametrize("name", ["a.extxyz", "a.xyz.xz", "a.db", "a.traj", "ds"])
def test_round_trip(frames: list[ase.Atoms], tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert write_frames(frames, path) == len(frames)
    got = list(read_frames(path))
    assert_same_frames(frames, got)
    assert got[0].info["head"] == "bulk"


def test_extxyz_keeps_full_precision(tmp_path: Path) -> None:
    atoms = ase.Atoms("H2", positions=[[0.1234567890123456, 1 / 3, 2 / 3], [1e-17, 0.9876543210987654, 1.5]])
    write_frames([atoms], tmp_path / "a.extxyz")
    np.testing.assert_array_equal(next(read_frames(tmp_path / "a.extxyz")).positions, atoms.positions)


def test_deepmd_round_trip(frames: list[ase.Atoms], tmp_path: Path) -> None:
    bulk_frames = [frames[0], frames[4]]  # same atoms, periodic, E/F/S
    assert write_frames(bulk_frames, tmp_path / "one", format="deepmd") == 2
    assert (tmp_path / "one" / "type.raw").is_file()
    assert_same_frames(bulk_frames, list(read_frames(tmp_path / "one")), exact=False)
    molecule = [frames[2]]  # non-periodic: written with a nopbc flag and no box
    write_frames(bulk_frames + molecule, tmp_path / "many", format="deepmd")
    assert (tmp_path / "many" / "H2O_1" / "nopbc").is_file()
    assert not (tmp_path / "many" / "H2O_1" / "set.000" / "box.npy").exists()
    got = list(read_frames(tmp_path / "many"))
    assert_same_frames(bulk_frames + molecule, got, exact=False)


def test_deepmd_refuses_what_it_cannot_hold(frames: list[ase.Atoms], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mixed pbc"):
        write_frames([frames[3]], tmp_path / "slab", format="deepmd")
    unlabelled = frames[4].copy()  # same atoms as frames[0] but without labels
    with pytest.raises(ValueError, match="partly labelled"):
        write_frames([frames[0], unlabelled], tmp_path / "partial", format="deepmd")


@pytest.mark.parametrize(
    ("name", "format"), [("a.extxyz", None), ("a.db", None), ("ds", None), ("np", "deepmd")]
)
def test_existing_output_refused(
    frames: list[ase.Atoms], tmp_path: Path, name: str, format: str | None
) -> None:
    bulk_frames = [frames[0], frames[4]]
    write_frames(bulk_frames, tmp_path / name, format=format)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(FileExistsError):
        write_frames(bulk_frames[:1], tmp_path / name, format=format)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    write_frames(bulk_frames[:1], tmp_path / name, format=format, overwrite=True)
    assert len(list(read_frames(tmp_path / name))) == 1


def test_overwrite_never_deletes_foreign_directories(frames: list[ase.Atoms], tmp_path: Path) -> None:
    write_frames([frames[0]], tmp_path / "home" / "project" / "sys", format="deepmd")
    (tmp_path / "home" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="remove it by hand"):
        write_frames([frames[0]], tmp_path / "home", format="deepmd", overwrite=True)
    assert (tmp_path / "home" / "notes.txt").is_file()


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(InvalidFrameError):
        write_frames(read_frames(IO_FIXTURES / "bad_frames.extxyz"), tmp_path / "out.extxyz")
    assert list(tmp_path.iterdir()) == []


def test_convert_round_trip_is_lossless(frames: list[ase.Atoms], tmp_path: Path) -> None:
    write_frames(frames, tmp_path / "a.extxyz")
    assert convert(str(tmp_path / "a.extxyz"), str(tmp_path / "ds") + "/", head="mine") == 5
    assert convert(str(tmp_path / "ds") + "/", str(tmp_path / "b.extxyz")) == 5
    a, b = list(read_frames(tmp_path / "a.extxyz")), list(read_frames(tmp_path / "b.extxyz"))
    assert_same_frames(a, b)
    assert [x.info["head"] for x in b] == ["bulk", "mine", "mine", "mine", "mine"]
    assert load_training_dataset(tmp_path / "ds")["frame_id"][3] == f"{tmp_path / 'a.extxyz'}#3"


def test_convert_skip_invalid_writes_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "good.db"
    assert convert(str(IO_FIXTURES / "bad_frames.extxyz"), str(out), skip_invalid=True) == 2
    report = json.loads((tmp_path / "good.db.skipped.json").read_text())
    assert [r["field"] for r in report] == [
        "energy",
        "forces",
        "atomic_numbers",
        "positions",
        "positions",
        "cell",
        "cell",
    ]
    assert "converted 2 frames" in capsys.readouterr().out
    with pytest.raises(FileExistsError):
        convert(str(IO_FIXTURES / "bad_frames.extxyz"), str(out), skip_invalid=True)
    with pytest.raises(InvalidFrameError, match="frame 1: field 'energy'"):
        convert(str(IO_FIXTURES / "bad_frames.extxyz"), str(tmp_path / "strict.db"))
