"""Resolving and loading models: local folders, the Hugging Face cache offline, revisions."""

import shutil
from pathlib import Path

import pytest
import torch

from lam.hub.models import load_model, parse_model_ref
from lam.model.config import preset
from lam.model.lam import LAM
from lam.testing import build_model, organic_molecule, predict


def test_parse_hub_id_with_revision() -> None:
    ref = parse_model_ref("deepmodeling/lam-water@v1.2")
    assert (ref.kind, ref.location, ref.revision) == ("hub", "deepmodeling/lam-water", "v1.2")
    assert parse_model_ref("org/name").revision is None


def test_parse_rejects_what_is_neither_folder_nor_hub_id(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="neither a built-in model"):
        parse_model_ref(str(tmp_path / "missing_folder"))


def test_load_from_local_folder(tmp_path: Path) -> None:
    model = build_model(preset("student"))
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(str(tmp_path / "m"))
    molecule = organic_molecule()
    assert torch.equal(predict(model, [molecule]).energy, predict(loaded, [molecule]).energy)


def _fake_hub_cache(cache: Path, repo_id: str, revision: str, folder: Path, commit: str) -> None:
    """Lay a model out exactly as huggingface_hub's cache does after a download of ``revision``."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in folder.iterdir():
        shutil.copy(file, snapshot / file.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / revision).write_text(commit)


@pytest.fixture
def two_versions(tmp_path: Path) -> tuple[Path, LAM, LAM]:
    """A cache holding lam-org/lam-test at v1.0.0 (commit a...a) and at main (commit b...b)."""
    cache = tmp_path / "hub"
    old, new = build_model(preset("student"), seed=1), build_model(preset("student"), seed=2)
    old.save_pretrained(tmp_path / "old")
    new.save_pretrained(tmp_path / "new")
    _fake_hub_cache(cache, "lam-org/lam-test", "v1.0.0", tmp_path / "old", "a" * 40)
    _fake_hub_cache(cache, "lam-org/lam-test", "main", tmp_path / "new", "b" * 40)
    return cache, old, new


def test_hub_id_loads_offline_from_the_cache_at_the_pinned_revision(two_versions) -> None:
    cache, old, new = two_versions
    frames = [organic_molecule()]
    pinned = load_model("lam-org/lam-test@v1.0.0", local_files_only=True, cache_dir=str(cache))
    latest = load_model("lam-org/lam-test", local_files_only=True, cache_dir=str(cache))
    assert torch.equal(predict(pinned, frames).energy, predict(old, frames).energy)
    assert torch.equal(predict(latest, frames).energy, predict(new, frames).energy)


def test_from_pretrained_and_the_calculator_take_org_name_at_revision_offline(two_versions, monkeypatch):
    from lam.calculator import LAMCalculator

    cache, old, _ = two_versions
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    molecule = organic_molecule()
    pinned = LAM.from_pretrained("lam-org/lam-test@v1.0.0")
    assert torch.equal(predict(pinned, [molecule]).energy, predict(old, [molecule]).energy)
    assert pinned.source["commit"] == "a" * 40
    loaded = load_model("lam-org/lam-test@v1.0.0")
    assert loaded.source == {
        "kind": "hub", "location": "lam-org/lam-test", "revision": "v1.0.0", "commit": "a" * 40
    }
    molecule.calc = LAMCalculator("lam-org/lam-test@v1.0.0")
    assert molecule.get_potential_energy() == pytest.approx(float(predict(old, [molecule]).energy[0]))


def test_offline_and_not_cached_says_what_to_do(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(ValueError) as error:
        load_model("lam-org/absent@v1.2.0")
    message = str(error.value)
    assert "lam-org/absent@v1.2.0 is not in the Hugging Face cache" in message
    assert "lam pull lam-org/absent@v1.2.0" in message and "HF_HUB_OFFLINE" in message
