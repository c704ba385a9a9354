"""Publish a model folder as a new version on the Hugging Face Hub, and pull a version back.

A version is a git tag ``vX.Y.Z`` on the model's repository, created on the commit that uploaded the
folder. Tags are never moved or reused, and a version lower than the latest is refused, so
``org/name@v1.2.0`` means the same bytes for everyone, forever. Everything goes through
``huggingface_hub``'s ``HfApi`` (``HF_ENDPOINT`` and ``HF_TOKEN`` are honoured).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError

from lam.hub.card import CARD_FILE
from lam.hub.models import load_model, parse_model_ref, resolve_folder
from lam.model.lam import CONFIG_FILE, WEIGHTS_FILE

SEMVER = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Published:
    """A pushed version: repository, tag, the commit it points at and its URL."""

    repo_id: str
    tag: str
    commit: str
    url: str


def parse_version(version: str) -> tuple[int, int, int]:
    """``1.2.0`` or ``v1.2.0`` as (1, 2, 0); anything else is a ValueError."""
    match = SEMVER.fullmatch(version.strip())
    if match is None:
        raise ValueError(f"version {version!r} is not a semantic version X.Y.Z (e.g. 1.0.0)")
    return int(match[1]), int(match[2]), int(match[3])


def check_folder(folder: Path) -> str:
    """Refuse a folder that is not a complete, intact lam model with a card; returns the weights' sha256."""
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE) if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"{folder} is not a publishable lam model folder: it lacks {', '.join(missing)}")
    model = load_model(str(folder))  # checks the weights against their recorded sha256
    if model.weights_sha256 is None:
        raise ValueError(
            f"{folder}/{CONFIG_FILE} records no sha256 of the weights (saved by an older lam): load and "
            "save it again with this lam before publishing"
        )
    return model.weights_sha256


def existing_versions(api: HfApi, repo_id: str) -> dict[str, tuple[int, int, int]]:
    """The repository's version tags (``vX.Y.Z``), or {} for a repository that does not exist yet."""
    try:
        tags = api.list_repo_refs(repo_id).tags
    except RepositoryNotFoundError:
        return {}
    return {tag.name: parse_version(tag.name) for tag in tags if SEMVER.fullmatch(tag.name)}


def check_new_version(
    versions: dict[str, tuple[int, int, int]], version: tuple[int, int, int], repo: str
) -> None:
    """Refuse a version that exists or is not above the latest one."""
    tag = "v{}.{}.{}".format(*version)
    if tag in versions:
        raise ValueError(f"{repo} already has version {tag}; versions are never moved: publish a new one")
    latest = max(versions.values(), default=None)
    if latest is not None and version <= latest:
        raise ValueError(
            f"version {tag} is not above the latest version of {repo}, v{'.'.join(map(str, latest))}"
        )


def stage_folder(folder: Path, staging: Path, model_id: str) -> Path:
    """A copy of ``folder`` to upload: without training logs and checkpoints, the card naming ``model_id``.

    The cards' load snippets say ``MODEL_ID`` until the model has a published id.
    """
    shutil.copytree(folder, staging, ignore=shutil.ignore_patterns("logs", "*.ckpt", ".*"))
    card = staging / CARD_FILE
    card.write_text(card.read_text().replace("MODEL_ID", model_id))
    return staging


def push(
    folder: str | Path,
    repo_id: str,
    version: str,
    private: bool = False,
    token: str | None = None,
    message: str | None = None,
) -> Published:
    """Upload ``folder`` to ``repo_id`` in one commit and tag that commit ``vX.Y.Z``.

    Raises:
        ValueError: the folder is not a complete intact model, or the version is taken or too low.
    """
    folder = Path(folder)
    sha = check_folder(folder)
    version_tuple = parse_version(version)
    tag = "v{}.{}.{}".format(*version_tuple)
    api = HfApi(token=token)
    check_new_version(existing_versions(api, repo_id), version_tuple, repo_id)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        staged = stage_folder(folder, Path(staging) / "model", f"{repo_id}@{tag}")
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(staged),
            commit_message=message or f"lam model {tag}",
            commit_description=f"weights sha256 {sha}",
        )
    api.create_tag(repo_id, tag=tag, revision=commit.oid, tag_message=f"lam model {tag}")
    return Published(repo_id, tag, commit.oid, f"{api.endpoint}/{repo_id}/tree/{tag}")


def pull(reference: str, out: str | Path | None = None, token: str | None = None) -> tuple[Path, str | None]:
    """Download ``org/name[@revision]`` into the cache (and copy it to ``out``), verified by loading it.

    Returns:
        The folder the model is in and the commit the revision resolved to.
    """
    ref = parse_model_ref(reference)
    if ref.kind != "hub":
        raise ValueError(f"lam pull takes a Hub id org/name[@revision], not {reference!r}")
    folder, ref = resolve_folder(ref, token=token)
    load_model(str(folder))  # integrity: the weights match the sha256 their config records
    if out is not None:
        out = Path(out)
        if out.exists():
            raise FileExistsError(f"{out} exists; choose another --out or remove it")
        shutil.copytree(folder, out)  # the cache holds links into its blob store: copy the contents
        folder = out
    return folder, ref.commit
