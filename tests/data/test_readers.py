"""read_frames on every supported source, and how it reports bad frames."""

from __future__ import annotations

import gzip
import lzma
import shutil
from pathlib import Path

import ase
import ase.db
import ase.io
import numpy as np
import pytest
from conftest import IO_FIXTURES, assert_same_frames

from lam.data.readers import detect_format, read_frames
from lam.data.training_format import write_training_dataset
from lam.data.validate import InvalidFrameError

BAD = IO_FIXTURES / "bad_frames.extxyz"
EXPECTED_SKIPS = [
    (1, "energy"),
    (2, "forces"),
    (3, "atomic_numbers"),
    (4, "positions"),
    (5, "positions"),
    (6, "cell"),
    (7, "cell"),
]


def _ase_write(frames: list[ase.Atoms], path: Path) -> Path:
    ase.io.write(path, frames, format="extxyz")
    return path


def _compress(path: Path, opener: object, suffix: str) -> Path:
    target = path.with_name(path.name + suffix)
    with open(path, "rb") as src, opener(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def test_extxyz_plain_and_compressed(frames: list[ase.Atoms], tmp_path: Path) -> None:
    plain = _ase_write(frames, tmp_path / "a.extxyz")
    expected = list(ase.io.iread(plain))
    for path in (plain, _compress(plain, lzma.open, ".xz"), _compress(plain, gzip.open, ".gz")):
        assert detect_format(path) == "extxyz"
        got = list(read_frames(path))
        assert_same_frames(expected, got)
        assert [a.info["frame_id"] for a in got] == [f"{path}#{k}" for k in range(len(frames))]
    assert got[0].info["head"] == "bulk"


def test_other_ase_format_traj(frames: list[ase.Atoms], tmp_path: Path) -> None:
    ase.io.write(tmp_path / "a.traj", frames)
    assert detect_format(tmp_path / "a.traj") == "traj"
    assert_same_frames(frames, list(read_frames(tmp_path / "a.traj")))


def test_ase_db(frames: list[ase.Atoms], tmp_path: Path) -> None:
    with ase.db.connect(tmp_path / "a.db") as db:
        for atoms in frames:
            db.write(atoms, head="h1")
    got = list(read_frames(tmp_path / "a.db"))
    assert_same_frames(frames, got)
    assert {a.info["head"] for a in got} == {"h1"}
    assert got[2].info["frame_id"] == f"{tmp_path / 'a.db'}#2"


def _deepmd_system(
    path: Path, n_frames: int = 3, box: bool = True, nopbc: bool = False, n_energy: int | None = None
) -> dict[str, np.ndarray]:
    """A 4-atom O2H2 deepmd/npy system written with plain numpy; returns its arrays."""
    rng = np.random.default_rng(1)
    (path / "set.000").mkdir(parents=True)
    (path / "type.raw").write_text("1\n0\n0\n1\n")
    (path / "type_map.raw").write_text("H\nO\n")
    cells = np.stack([np.diag([5.0, 6.0, 7.0]) + rng.normal(0, 0.1, (3, 3)) for _ in range(n_frames)])
    grid = np.array([[0.5, 0.5, 0.5], [2.0, 1.0, 1.0], [1.0, 3.0, 2.0], [3.0, 3.0, 4.0]])
    arrays = {
        "coord": (grid + rng.normal(0, 0.05, (n_frames, 4, 3))).reshape(n_frames, 12),
        "energy": rng.normal(-20, 1, n_frames)[: n_energy if n_energy is not None else n_frames],
        "force": rng.normal(0, 1, (n_frames, 12)),
        "virial": np.stack([v + v.T for v in rng.normal(0, 1, (n_frames, 3, 3))]).reshape(n_frames, 9),
    }
    if box:
        arrays["box"] = cells.reshape(n_frames, 9)
    if nopbc:
        (path / "nopbc").touch()
    if nopbc or not box:
        del arrays["virial"]
    for name, values in arrays.items():
        np.save(path / "set.000" / f"{name}.npy", values)
    return arrays


def test_deepmd_periodic_with_virial(tmp_path: Path) -> None:
    arrays = _deepmd_system(tmp_path / "sys")
    got = list(read_frames(tmp_path / "sys"))
    assert len(got) == 3
    for k, atoms in enumerate(got):
        assert atoms.get_chemical_symbols() == ["O", "H", "H", "O"]
        assert atoms.pbc.all()
        cell = arrays["box"][k].reshape(3, 3)
        np.testing.assert_array_equal(atoms.cell.array, cell)
        np.testing.assert_array_equal(atoms.positions, arrays["coord"][k].reshape(4, 3))
        assert atoms.get_potential_energy() == arrays["energy"][k]
        np.testing.assert_array_equal(atoms.get_forces(), arrays["force"][k].reshape(4, 3))
        stress = -arrays["virial"][k].reshape(3, 3) / abs(np.linalg.det(cell))  # sigma = -W / V
        np.testing.assert_allclose(atoms.get_stress(voigt=False), stress, rtol=1e-14)
        assert atoms.info["frame_id"] == f"{tmp_path / 'sys'}#{k}"


@pytest.mark.parametrize(("box", "nopbc"), [(True, True), (False, False)])
def test_deepmd_non_periodic(tmp_path: Path, box: bool, nopbc: bool) -> None:
    _deepmd_system(tmp_path / "sys", box=box, nopbc=nopbc)
    got = list(read_frames(tmp_path / "sys"))
    assert len(got) == 3
    assert all(not a.pbc.any() and not a.cell.array.any() for a in got)


def test_deepmd_virial_without_box(tmp_path: Path) -> None:
    _deepmd_system(tmp_path / "sys")
    (tmp_path / "sys" / "nopbc").touch()
    with pytest.raises(ValueError, match="virial.npy: a non-periodic system"):
        list(read_frames(tmp_path / "sys"))


def test_deepmd_multi_system_dir(tmp_path: Path) -> None:
    _deepmd_system(tmp_path / "all" / "b", n_frames=2)
    _deepmd_system(tmp_path / "all" / "a" / "nested", n_frames=3, nopbc=True)
    got = list(read_frames(tmp_path / "all"))
    assert [a.info["frame_id"] for a in got] == [f"{tmp_path / 'all/a/nested'}#{k}" for k in range(3)] + [
        f"{tmp_path / 'all/b'}#{k}" for k in range(2)
    ]


def test_deepmd_missing_energy_rows(tmp_path: Path) -> None:
    _deepmd_system(tmp_path / "sys", n_energy=2)
    with pytest.raises(InvalidFrameError, match=r"sys frame 2: field 'energy': missing"):
        list(read_frames(tmp_path / "sys"))
    report: list[dict] = []
    assert len(list(read_frames(tmp_path / "sys", skip_invalid=True, report=report))) == 2
    assert report == [
        {
            "frame_id": f"{tmp_path / 'sys'}#2",
            "field": "energy",
            "reason": "missing: energy.npy has only 2 rows",
        }
    ]


def test_deepmd_without_type_map(tmp_path: Path) -> None:
    _deepmd_system(tmp_path / "sys")
    (tmp_path / "sys" / "type_map.raw").unlink()
    with pytest.raises(ValueError, match="type_map.raw"):
        list(read_frames(tmp_path / "sys"))


def test_training_format_dir(frames: list[ase.Atoms], tmp_path: Path) -> None:
    write_training_dataset(frames, tmp_path / "ds", head="h")
    got = list(read_frames(tmp_path / "ds"))
    assert detect_format(tmp_path / "ds") == "training"
    assert_same_frames(frames, got)
    assert [a.info["head"] for a in got] == ["bulk", "h", "h", "h", "h"]
    assert got[1].info["frame_id"] == f"{tmp_path / 'ds'}#1"


def test_parquet_arrow_and_hf_disk(frames: list[ase.Atoms], tmp_path: Path) -> None:
    from lam.data.training_format import load_training_dataset

    dataset = load_training_dataset(write_training_dataset(frames, tmp_path / "ds", head="h"))
    (tmp_path / "pq").mkdir()
    dataset.select(range(2)).to_parquet(tmp_path / "pq" / "part-0.parquet")
    dataset.select(range(2, 5)).to_parquet(tmp_path / "pq" / "part-1.parquet")
    assert_same_frames(frames[:2], list(read_frames(tmp_path / "pq" / "part-0.parquet")))
    assert detect_format(tmp_path / "pq") == "parquet"
    assert_same_frames(frames, list(read_frames(tmp_path / "pq")))
    (tmp_path / "arrow").mkdir()
    for shard in (tmp_path / "ds").glob("*.arrow"):
        shutil.copy(shard, tmp_path / "arrow" / shard.name)
    assert detect_format(tmp_path / "arrow") == "arrow"
    assert_same_frames(frames, list(read_frames(tmp_path / "arrow")))
    dataset.remove_columns(["head", "frame_id"]).save_to_disk(tmp_path / "plain")
    assert detect_format(tmp_path / "plain") == "hf-disk"
    got = list(read_frames(tmp_path / "plain"))
    assert_same_frames(frames, got)
    assert {a.info["head"] for a in got} == {"default"}


def test_hub_reader_through_load_dataset(frames: list[ase.Atoms], tmp_path: Path) -> None:
    """The hf-hub path goes through ``datasets.load_dataset``, which also opens a local repo layout."""
    from lam.data.training_format import load_training_dataset

    dataset = load_training_dataset(write_training_dataset(frames, tmp_path / "ds", head="h"))
    (tmp_path / "repo" / "data").mkdir(parents=True)
    dataset.select(range(3)).to_parquet(tmp_path / "repo" / "data" / "train-00000.parquet")
    dataset.select(range(3, 5)).to_parquet(tmp_path / "repo" / "data" / "test-00000.parquet")
    got = list(read_frames(tmp_path / "repo", format="hf-hub"))
    assert_same_frames(frames[3:] + frames[:3], got)  # splits in sorted order: test, train


def test_bad_frames_raise_with_file_index_field() -> None:
    with pytest.raises(InvalidFrameError) as info:
        list(read_frames(BAD))
    assert (info.value.source, info.value.index, info.value.field) == (str(BAD), 1, "energy")
    assert str(info.value).startswith(f"{BAD} frame 1: field 'energy'")


def test_skip_invalid_reports_every_bad_frame() -> None:
    report: list[dict] = []
    kept = list(read_frames(BAD, skip_invalid=True, report=report))
    assert [a.info["note"] for a in kept] == ["good", "good"]
    assert [a.info["frame_id"] for a in kept] == [f"{BAD}#0", f"{BAD}#8"]
    assert [(r["frame_id"], r["field"]) for r in report] == [(f"{BAD}#{i}", f) for i, f in EXPECTED_SKIPS]
    assert all(r["reason"] for r in report)


def test_skip_invalid_needs_a_report() -> None:
    with pytest.raises(ValueError, match="report"):
        list(read_frames(BAD, skip_invalid=True))


def test_unparseable_file_names_frame(tmp_path: Path) -> None:
    path = tmp_path / "broken.xyz"
    good = "".join(BAD.read_text().splitlines(keepends=True)[:4])
    path.write_text(good + "2\nProperties=species:S:1:pos:R:3\nH 0 0 0\nH 0 zero 1\n")
    with pytest.raises(ValueError, match=r"broken.xyz frame 1: cannot parse"):
        list(read_frames(path))


def test_missing_path() -> None:
    with pytest.raises(FileNotFoundError):
        detect_format("/no/such/file.extxyz")
