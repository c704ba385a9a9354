"""Weights are checked against the sha256 their folder records; nothing is ever unpickled."""

import json
import pickle
import shutil
from pathlib import Path

import pytest

from lam.hub.models import load_model
from lam.model.config import SCHEMA_VERSION, preset
from lam.model.serialization import IntegrityError, file_sha256
from lam.testing import build_model


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    build_model(preset("student")).save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_saved_folder_records_the_weights_hash_and_elements(saved: Path) -> None:
    config = json.loads((saved / "config.json").read_text())
    assert config["weights_sha256"] == file_sha256(saved / "model.safetensors")
    assert config["schema_version"] == SCHEMA_VERSION
    assert config["heads"][0]["elements"] == [1, 6, 8, 29, 78, 79]  # lam.testing.build_model's references
    assert load_model(str(saved)).weights_sha256 == config["weights_sha256"]


def test_one_flipped_bit_is_refused_naming_the_file(saved: Path) -> None:
    weights = saved / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"model\.safetensors does not match the sha256"):
        load_model(str(saved))


def test_truncated_weights_are_refused(saved: Path) -> None:
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(IntegrityError, match="does not match"):
        load_model(str(saved))
    config = json.loads((saved / "config.json").read_text())
    del config["weights_sha256"]  # an older folder: no hash to compare, the reader must still refuse
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(IntegrityError, match="not a readable safetensors file"):
        load_model(str(saved))


class _Planted:
    """Unpickling this would create a file: proof that something ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


def test_a_pickle_named_model_safetensors_is_never_unpickled(saved: Path, tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    (saved / "model.safetensors").write_bytes(pickle.dumps(_Planted(marker)))
    config = json.loads((saved / "config.json").read_text())
    config["weights_sha256"] = file_sha256(saved / "model.safetensors")  # even with a matching hash
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(IntegrityError, match="not a readable safetensors file"):
        load_model(str(saved))
    assert not marker.exists()


def test_a_cached_blob_that_does_not_match_its_name_is_refused(saved: Path, tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    folder = tmp_path / "snapshot"
    folder.mkdir()
    shutil.copy(saved / "config.json", folder / "config.json")
    blob = blobs / ("0" * 64)  # the Hugging Face cache names large files by their sha256
    blob.write_bytes((saved / "model.safetensors").read_bytes())
    (folder / "model.safetensors").symlink_to(blob)
    with pytest.raises(IntegrityError, match="does not match its sha256 name"):
        load_model(str(folder))


def test_model_folders_of_older_lam_still_load_and_lam_mini_is_current() -> None:
    fixtures = Path(__file__).parents[1] / "fixtures" / "models"
    older = load_model(str(fixtures / "student-schema1"))
    assert older.weights_sha256 is None and older.config.heads[0].elements  # filled from references
    assert load_model("lam-mini").weights_sha256 is not None
