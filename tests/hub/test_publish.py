"""Publishing versions and pulling them back, against a local server that speaks the Hub's API."""

from pathlib import Path

import pytest
import torch

from lam.cli import run as run_cli
from lam.hub.inspect import list_models
from lam.hub.models import load_model
from lam.hub.publish import parse_version, pull, push
from lam.model.config import preset
from lam.model.lam import LAM
from lam.testing import build_model, organic_molecule, periodic_alloy, predict

REPO = "lam-org/water-lam"


def saved_model(root: Path, seed: int) -> tuple[LAM, Path]:
    model = build_model(preset("student"), seed=seed)
    model.save_pretrained(root / f"model_{seed}")
    return model, root / f"model_{seed}"


@pytest.mark.parametrize("lfs", [False, True], ids=["regular", "lfs"])
def test_push_two_versions_pull_the_first_and_load_it_offline(hub, tmp_path: Path, capsys, lfs: bool) -> None:
    if lfs:  # how the Hub stores weights: the cache then names the blob after its sha256
        hub.use_lfs(".safetensors")
    old, old_folder = saved_model(tmp_path, 1)
    new, new_folder = saved_model(tmp_path, 2)
    commit = run_cli(["push", str(old_folder), REPO, "--version", "1.0.0"])
    assert f"commit {commit}" in capsys.readouterr().out
    second = push(new_folder, REPO, "v1.1.0")
    repo = hub.repos[REPO]
    assert repo.tags == {"v1.0.0": commit, "v1.1.0": second.commit} and commit != second.commit
    assert set(repo.resolve("v1.0.0").files) >= {"config.json", "model.safetensors", "README.md"}

    folder, pulled_commit = pull(f"{REPO}@v1.0.0")
    assert pulled_commit == commit and folder.name == commit  # the cache's snapshot of that commit
    listed = [row for row in list_models() if row["model"] == REPO]
    assert listed and listed[0]["versions"] == ["v1.0.0"] and listed[0]["commit"] == commit
    hub.set_offline()
    frames = [periodic_alloy(), organic_molecule()]
    for loaded in (LAM.from_pretrained(f"{REPO}@v1.0.0"), load_model(f"{REPO}@v1.0.0")):
        expected = predict(old, frames)  # float64: identical, not merely close
        torch.testing.assert_close(predict(loaded, frames).forces, expected.forces, rtol=0, atol=0)
    assert load_model(f"{REPO}@v1.0.0").source["commit"] == commit
    with pytest.raises(ValueError, match="not in the Hugging Face cache and HF_HUB_OFFLINE is set"):
        load_model(f"{REPO}@v1.1.0")  # never pulled


def test_taken_or_lower_versions_are_refused_and_change_nothing(hub, tmp_path: Path) -> None:
    _, folder = saved_model(tmp_path, 1)
    push(folder, REPO, "1.2.0")
    before = (dict(hub.repos[REPO].tags), dict(hub.repos[REPO].commits))
    with pytest.raises(ValueError, match="already has version v1.2.0"):
        push(folder, REPO, "1.2.0")
    with pytest.raises(ValueError, match="not above the latest version"):
        push(folder, REPO, "1.1.9")
    assert (hub.repos[REPO].tags, hub.repos[REPO].commits) == before
    with pytest.raises(ValueError, match="semantic version"):
        parse_version("1.2")


def test_a_damaged_or_incomplete_folder_is_not_published(hub, tmp_path: Path) -> None:
    _, folder = saved_model(tmp_path, 1)
    (folder / "README.md").unlink()
    with pytest.raises(ValueError, match="lacks README.md"):
        push(folder, REPO, "1.0.0")
    _, folder = saved_model(tmp_path, 2)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ValueError, match="does not match the sha256"):
        push(folder, REPO, "1.0.0")
    assert REPO not in hub.repos


def test_pull_names_a_missing_model_or_revision(hub, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lam-org/absent was not found"):
        pull("lam-org/absent@v1.0.0")
    _, folder = saved_model(tmp_path, 1)
    push(folder, REPO, "1.0.0")
    with pytest.raises(ValueError, match="has no revision 'v9.9.9'"):
        pull(f"{REPO}@v9.9.9")
    copied, _ = pull(f"{REPO}@v1.0.0", out=tmp_path / "copy")
    assert load_model(str(copied)).weights_sha256 == load_model(str(folder)).weights_sha256


def test_the_published_card_names_the_model_id_and_logs_stay_local(hub, tmp_path: Path) -> None:
    _, folder = saved_model(tmp_path, 1)
    card = folder / "README.md"
    card.write_text(card.read_text() + '\nLAMCalculator("MODEL_ID")\n')
    (folder / "logs").mkdir()
    (folder / "logs" / "metrics.csv").write_text("step,loss\n")
    push(folder, REPO, "2.0.0")
    files = hub.repos[REPO].resolve("v2.0.0").files
    assert 'LAMCalculator("lam-org/water-lam@v2.0.0")' in files["README.md"].data.decode()
    assert not any(path.startswith("logs") for path in files)
    assert "MODEL_ID" in card.read_text()  # the local folder is left as it was
