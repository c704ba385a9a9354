"""The dataset registry: cards, shipped files, cached loading and the ``lam data list/show`` commands."""

from __future__ import annotations

import io
import lzma
import re
import shutil
from collections import Counter
from pathlib import Path

import ase.io
import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT

from lam.commands.registry import list_datasets, show
from lam.data import registry
from lam.data.registry import (
    CardError,
    ChecksumError,
    UnknownDatasetError,
    get_card,
    list_cards,
    load_registered,
    read_card,
    registry_dir,
    sha256,
    verify_checksums,
)
from lam.data.statistics import data_checksum
from lam.data.training_format import write_training_dataset
from lam.data.validate import InvalidFrameError

CARDS = list_cards()
# cards of this directory (public and shipped data); generated/ sets are tested with lam.data.generate
OWN = [card for card in CARDS if card.card_path.parent == registry_dir()]
SHIPPED = [card for card in OWN if card.shipped]
PUBLIC_FORMATS = {"mptrj-json", "ani1x-h5", "transition1x-h5", "spice-h5", "oc20-s2ef", "aselmdb"}


def scan_extxyz_xz(path: Path) -> tuple[int, set[str], int, set[str]]:
    """Frames, element symbols, frames with a stress and the pbc strings of an .extxyz.xz, without ASE.

    A plain line scan (count line, header, atom lines) keeps this check of ~20k shipped frames fast.
    """
    frames, stressed, elements, pbcs = 0, 0, set(), set()
    with lzma.open(path, "rt") as f:
        for count_line in f:
            header = next(f)
            frames += 1
            stressed += " stress=" in f" {header}"
            pbcs.add(header.split('pbc="', 1)[1].split('"', 1)[0] if 'pbc="' in header else "F F F")
            for _ in range(int(count_line)):
                elements.add(next(f).split(maxsplit=1)[0])
    return frames, elements, stressed, pbcs


# ---- every card ------------------------------------------------------------------------------------


def test_registry_has_shipped_and_public_cards() -> None:
    names = [card.name for card in OWN]
    assert len(SHIPPED) == 11
    assert {"mptrj", "ani1x", "oc20_s2ef", "spice_2", "omat24", "transition1x"} <= set(names)
    assert {card.format for card in OWN if not card.shipped} == PUBLIC_FORMATS


@pytest.mark.parametrize("card", OWN, ids=lambda c: c.name)
def test_card_fields(card: registry.DatasetCard) -> None:
    assert card.units == {"energy": "eV", "length": "Å", "forces": "eV/Å", "stress": "eV/Å^3"}
    assert card.default_head == card.name
    assert card.citation and card.license and card.source.url.startswith("https://")
    assert card.level_of_theory.functional and card.level_of_theory.code
    # the YAML printed by `lam data show` reads back to the same card
    assert yaml.safe_load(card.to_yaml()) == card.to_dict()


@pytest.mark.parametrize("card", SHIPPED, ids=lambda c: c.name)
def test_shipped_files_match_card(card: registry.DatasetCard) -> None:
    verify_checksums(card)
    assert (card.directory / card.provenance).is_file()
    assert (card.local_files[next(iter(card.files))].parent / "NOTICE").is_file()
    frames, elements, stressed, pbcs = 0, set(), 0, set()
    for path in card.local_files.values():
        assert path.stat().st_size < 8 * 2**20, f"{path} is over 8 MiB"
        n, els, s, p = scan_extxyz_xz(path)
        frames, elements, stressed, pbcs = frames + n, elements | els, stressed + s, pbcs | p
    assert frames == card.frame_count
    assert elements == set(card.elements)
    assert stressed == (frames if card.has_stress else 0)
    assert pbcs == {"F F F"} if card.periodic is False else pbcs == {"T T T"}


def test_shipped_data_total_size() -> None:
    total = sum(path.stat().st_size for card in SHIPPED for path in card.local_files.values())
    assert 10e6 < total < 20e6


# ---- bad cards ------------------------------------------------------------------------------------


def _write_card(directory: Path, **changes: object) -> Path:
    data = yaml.safe_load((registry_dir() / "ta_snap_pbe.yaml").read_text())
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    path = directory / f"{data.get('name', 'ta_snap_pbe')}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        (
            {"units": {"energy": "kcal/mol", "length": "Å", "forces": "eV/Å", "stress": "eV/Å^3"}},
            "units.energy",
            "unsupported",
        ),
        (
            {"units": {"energy": "eV", "length": "bohr", "forces": "eV/Å", "stress": "eV/Å^3"}},
            "units.length",
            "unsupported",
        ),
        (
            {"units": {"energy": "eV", "length": "Å", "forces": "eV/Å", "stress": "GPa"}},
            "units.stress",
            "unsupported",
        ),
        ({"units": {"energy": "eV", "length": "Å", "forces": "eV/Å"}}, "units.stress", "missing"),
        ({"elements": ["Ta", "Xx"]}, "elements[1]", "not a chemical symbol"),
        ({"periodic": "yes"}, "periodic", "expected true, false or slab"),
        ({"frame_count": 0}, "frame_count", "must be positive"),
        ({"frame_count": True}, "frame_count", "expected int"),
        ({"format": "vasprun"}, "format", "has no converter"),
        ({"license": None}, "license", "missing"),
        ({"levle_of_theory": {}}, "levle_of_theory", "unknown field"),
        (
            {"level_of_theory": {"functional": "PBE", "basis": "PAW", "code": "VASP", "xc": "PBE"}},
            "level_of_theory.xc",
            "unknown field",
        ),
        ({"files": {"all": "data/ta_snap_pbe/data.extxyz.xz"}}, "files.all", "reserved"),
        ({"checksums": {}}, "checksums.data/ta_snap_pbe/data.extxyz.xz", "sha256"),
        ({"name": "tantalum"}, "name", "differs from the file name"),
    ],
)
def test_bad_card_rejected_with_file_and_field(
    tmp_path: Path, changes: dict, field: str, reason: str
) -> None:
    path = _write_card(tmp_path, **changes)
    if "name" in changes:
        path = path.rename(tmp_path / "ta_snap_pbe.yaml")
    with pytest.raises(CardError, match=reason) as info:
        read_card(path)
    assert info.value.field == field
    assert str(path) in str(info.value) and f"field '{field}'" in str(info.value)


def test_cli_rejects_bad_units_naming_card_and_field(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _write_card(tmp_path, units={"energy": "Ha", "length": "Å", "forces": "eV/Å", "stress": "eV/Å^3"})
    with pytest.raises(SystemExit, match=f"{path}: field 'units.energy'"):
        list_datasets(registry=str(tmp_path))


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(
        UnknownDatasetError, match="no dataset 'mptrj_full'.*known datasets: .*mptrj_random1k_pbe"
    ):
        get_card("mptrj_full")
    with pytest.raises(SystemExit, match="known datasets"):
        show("mptrj_full")


def test_cards_in_subdirectories_are_found_and_names_are_unique(tmp_path: Path) -> None:
    (tmp_path / "generated" / "ta_snap_pbe").mkdir(parents=True)
    nested = _write_card(tmp_path / "generated" / "ta_snap_pbe")
    assert get_card("ta_snap_pbe", tmp_path).card_path == nested
    _write_card(tmp_path)
    with pytest.raises(CardError, match="field 'name': 'ta_snap_pbe' is also the name of"):
        list_cards(tmp_path)


def test_registry_dir_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_card(tmp_path)
    monkeypatch.setenv("LAM_REGISTRY", str(tmp_path))
    assert registry_dir() == tmp_path
    assert [card.name for card in list_cards()] == ["ta_snap_pbe"]
    assert get_card("ta_snap_pbe").local_files["data"] == tmp_path / "data/ta_snap_pbe/data.extxyz.xz"


# ---- commands ------------------------------------------------------------------------------------


def test_list_prints_one_row_per_card(capsys: pytest.CaptureFixture) -> None:
    list_datasets()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["name", "level", "of"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {card.name for card in CARDS}
    # frames, element count, periodic, shipped
    assert re.search(r"  1,580,395 +89 +yes +no +CC BY 4.0", rows["mptrj"])
    assert re.search(r"  363 +1 +yes +yes +GPL-2.0", rows["ta_snap_pbe"])
    assert re.search(r"  2,648 +41 +slab +yes ", rows["oc20_relaxtraj_rpbe"])


def test_show_prints_card_yaml(capsys: pytest.CaptureFixture) -> None:
    show("s66x8_wb97x")
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == get_card("s66x8_wb97x").to_dict()
    assert printed["level_of_theory"]["functional"] == "ωB97X" and printed["periodic"] is False


# ---- load_registered -----------------------------------------------------------------------------


def _tiny_registry(directory: Path) -> Path:
    """A registry with one 4-frame EMT dataset (train 3 + test 1), shipped as .extxyz.xz."""
    frames = []
    for i in range(4):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.02, seed=i)
        atoms.calc = EMT()
        atoms.get_stress()
        frames.append(atoms)
    data = directory / "data" / "cu_emt"
    data.mkdir(parents=True)
    for split, part in (("train", frames[:3]), ("test", frames[3:])):
        ase.io.write(data / f"{split}.extxyz", part, format="extxyz")
        (data / f"{split}.extxyz.xz").write_bytes(lzma.compress((data / f"{split}.extxyz").read_bytes()))
        (data / f"{split}.extxyz").unlink()
    files = {"train": "data/cu_emt/train.extxyz.xz", "test": "data/cu_emt/test.extxyz.xz"}
    card = yaml.safe_load((registry_dir() / "ta_snap_pbe.yaml").read_text())
    card.update(
        name="cu_emt", elements=["Cu"], frame_count=4, files=files, default_head="cu",
        checksums={rel: sha256(directory / rel) for rel in files.values()}, provenance=None,
    )  # fmt: skip
    (directory / "cu_emt.yaml").write_text(yaml.safe_dump(card, allow_unicode=True, sort_keys=False))
    return directory


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAM_REGISTRY", str(_tiny_registry(tmp_path / "registry")))
    monkeypatch.setenv("LAM_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_load_registered_converts_once_and_caches(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = load_registered("cu_emt")
    assert len(dataset) == 4 and set(dataset["head"]) == {"cu"}
    source = ase.io.read(tiny / "registry/data/cu_emt/train.extxyz.xz", ":")
    assert dataset[1]["energy"] == pytest.approx(source[1].get_potential_energy(), abs=1e-12)
    np.testing.assert_allclose(dataset[2]["forces"], source[2].get_forces(), atol=1e-12)
    np.testing.assert_allclose(dataset[0]["stress"], source[0].get_stress(voigt=False), atol=1e-12)
    cached = list((tiny / "cache" / "datasets").iterdir())
    assert (
        len(cached) == 1
        and cached[0].name.startswith("cu_emt-")
        and len(cached[0].name) == len("cu_emt-") + 12
    )
    # second call: served from the cache, no conversion (a converter call would now fail)
    monkeypatch.setitem(registry.CONVERTERS, "extxyz", lambda path: pytest.fail("converted twice"))
    assert len(load_registered("cu_emt")) == 4


def test_load_registered_splits(tiny: Path) -> None:
    assert len(load_registered("cu_emt", split="train")) == 3
    test = load_registered("cu_emt", split="test")
    assert len(test) == 1 and test[0]["frame_id"].endswith("test.extxyz.xz#0")
    assert len(list((tiny / "cache" / "datasets").iterdir())) == 2  # one cache entry per split
    with pytest.raises(KeyError, match="no split 'val'; splits: all, train, test"):
        load_registered("cu_emt", split="val")


def test_load_registered_verifies_checksum(tiny: Path) -> None:
    path = tiny / "registry/data/cu_emt/test.extxyz.xz"
    path.write_bytes(lzma.compress(b"0\n\n"))
    with pytest.raises(ChecksumError, match="test.extxyz.xz: sha256 .* differs"):
        load_registered("cu_emt")
    assert not (tiny / "cache" / "datasets").exists() or not any((tiny / "cache" / "datasets").iterdir())


def test_load_registered_frame_count_must_match_card(tiny: Path) -> None:
    card_path = tiny / "registry" / "cu_emt.yaml"
    card_path.write_text(card_path.read_text().replace("frame_count: 4", "frame_count: 5"))
    with pytest.raises(ValueError, match="field 'frame_count': 5, but .* has 4"):
        load_registered("cu_emt")


def test_load_registered_names_shipped_file_of_an_invalid_frame(tiny: Path) -> None:
    """A broken frame is an error naming the shipped file and frame, and nothing is cached."""
    path = tiny / "registry/data/cu_emt/test.extxyz.xz"
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.positions[1] = atoms.positions[0] + 0.1  # two atoms 0.17 Å apart
    atoms.calc = EMT()
    atoms.get_stress()
    buffer = io.StringIO()
    ase.io.write(buffer, atoms, format="extxyz")
    path.write_bytes(lzma.compress(buffer.getvalue().encode()))
    card_path = tiny / "registry" / "cu_emt.yaml"
    card_path.write_text(
        card_path.read_text().replace(
            get_card("cu_emt").checksums["data/cu_emt/test.extxyz.xz"], sha256(path)
        )
    )
    with pytest.raises(InvalidFrameError, match=f"{path} frame 0: field 'positions'"):
        load_registered("cu_emt")
    assert not any((tiny / "cache" / "datasets").glob("cu_emt-*"))


def test_training_format_card_as_lam_data_generate_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A card whose data is a training-format directory (checksummed as a whole) loads too."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.calc = EMT()
    atoms.get_forces()
    registry_path = tmp_path / "generated"
    write_training_dataset([atoms, atoms.copy()], registry_path, head="cu_gen")
    card = yaml.safe_load((registry_dir() / "ta_snap_pbe.yaml").read_text())
    checksums = {".": data_checksum(registry_path)}
    card.update(name="cu_gen", elements=["Cu"], frame_count=2, has_stress=False, format="training",
                files={"train": "."}, checksums=checksums, provenance=None)  # fmt: skip
    card["source"]["url"] = None
    (registry_path / "cu_gen.yaml").write_text(yaml.safe_dump(card, allow_unicode=True, sort_keys=False))
    monkeypatch.setenv("LAM_REGISTRY", str(registry_path))
    monkeypatch.setenv("LAM_CACHE", str(tmp_path / "cache"))
    dataset = load_registered("cu_gen")
    assert len(dataset) == 2 and dataset[0]["energy"] == pytest.approx(atoms.get_potential_energy())
    assert dataset[1]["energy"] is None  # the unlabelled copy stays unlabelled


def test_load_registered_unshipped_dataset_says_where_to_get_it() -> None:
    with pytest.raises(FileNotFoundError, match="'mptrj' is not shipped.*figshare.*'mptrj-json'"):
        load_registered("mptrj")


def test_load_registered_shipped_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAM_CACHE", str(tmp_path))
    card = get_card("ta_snap_pbe")
    dataset = load_registered("ta_snap_pbe")
    assert len(dataset) == card.frame_count == 363
    with lzma.open(card.local_files["data"], "rt") as f:
        source = ase.io.read(io.StringIO(f.read()), ":", format="extxyz")
    np.testing.assert_allclose(dataset["energy"], [a.get_potential_energy() for a in source], atol=1e-9)
    np.testing.assert_allclose(dataset[362]["forces"], source[-1].get_forces(), atol=1e-9)
    np.testing.assert_allclose(dataset[362]["stress"], source[-1].get_stress(voigt=False), atol=1e-12)
    np.testing.assert_allclose(dataset[100]["positions"], source[100].positions, atol=1e-12)
    assert Counter(dataset["head"]) == {"ta_snap_pbe": 363}
    shutil.rmtree(tmp_path / "datasets")
