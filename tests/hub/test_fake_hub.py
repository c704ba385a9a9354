"""The fake Hub is faithful enough: ``huggingface_hub``'s public API works against it as against the Hub."""

from __future__ import annotations

import json
import random
import socket
from pathlib import Path

import huggingface_hub as hf
import pytest
from fake_hub import FakeHub
from huggingface_hub import CommitOperationAdd, CommitOperationDelete
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

REPO = "lam-org/fake-model"


def _model_folder(folder: Path, version: int) -> dict[str, bytes]:
    """Write a small config and a ~200 KB ``model.safetensors`` that differ by ``version``; return them."""
    files = {
        "config.json": json.dumps({"version": version}).encode(),
        "model.safetensors": random.Random(version).randbytes(200_000),
    }
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def _publish_two_versions(tmp_path: Path, repo_id: str = REPO) -> tuple[dict, dict]:
    """create_repo, upload v1, tag v1.0.0, upload v2, tag v1.1.0 (module-level API); return (old, new)."""
    hf.create_repo(repo_id)
    old = _model_folder(tmp_path / "v1", 1)
    hf.upload_folder(repo_id=repo_id, folder_path=tmp_path / "v1", commit_message="first version")
    hf.create_tag(repo_id, tag="v1.0.0")
    new = _model_folder(tmp_path / "v2", 2)
    hf.upload_folder(repo_id=repo_id, folder_path=tmp_path / "v2", commit_message="second version")
    hf.create_tag(repo_id, tag="v1.1.0", revision="main")
    return old, new


def _read_snapshot(folder: str) -> dict[str, bytes]:
    """The model files of a downloaded snapshot folder."""
    return {name: (Path(folder) / name).read_bytes() for name in ("config.json", "model.safetensors")}


def test_create_repo_conflicts_unless_exist_ok(hub) -> None:
    """A second create_repo answers 409 (an HfHubHTTPError) unless exist_ok; a new repo has one commit."""
    url = hub.api.create_repo(REPO, private=False)
    assert (url.repo_id, url.endpoint) == (REPO, hub.url)
    with pytest.raises(HfHubHTTPError) as conflict:
        hub.api.create_repo(REPO)
    assert conflict.value.response.status_code == 409
    assert hub.api.create_repo(REPO, exist_ok=True).repo_id == REPO
    repo = hub.repos[REPO]
    assert list(repo.branches) == ["main"] and not repo.tags and not repo.private
    assert list(hub.api.list_repo_files(REPO)) == [".gitattributes"]  # like the Hub's first commit


def test_each_upload_is_one_commit_and_tags_pin_them(hub, tmp_path: Path) -> None:
    """upload_folder makes one commit each; refs, model_info and list_repo_files follow the tags."""
    _publish_two_versions(tmp_path)
    repo = hub.repos[REPO]
    assert len(repo.commits) == 3 and hub.server.count("POST", "/commit/main") == 2
    refs = hub.api.list_repo_refs(REPO)
    tags = {ref.name: ref.target_commit for ref in refs.tags}
    assert set(tags) == {"v1.0.0", "v1.1.0"} and tags["v1.0.0"] != tags["v1.1.0"]
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", tags["v1.1.0"])]
    assert all(len(oid) == 40 and int(oid, 16) >= 0 for oid in tags.values())
    assert repo.commits[tags["v1.1.0"]].parent == tags["v1.0.0"]
    info = hub.api.model_info(REPO, revision="v1.0.0", files_metadata=True)
    assert info.sha == tags["v1.0.0"] and not info.private
    sizes = {s.rfilename: s.size for s in info.siblings}
    assert sizes == {".gitattributes": len(repo.file_bytes(".gitattributes")), "config.json": 14,
                     "model.safetensors": 200_000}  # fmt: skip
    assert hub.api.model_info(REPO).sha == tags["v1.1.0"]
    assert sorted(hub.api.list_repo_files(REPO, revision=tags["v1.0.0"])) == sorted(sizes)


def test_downloads_return_the_bytes_of_the_requested_revision(hub, tmp_path: Path) -> None:
    """hf_hub_download and snapshot_download at a tag, branch or commit give that revision's bytes."""
    old, new = _publish_two_versions(tmp_path)
    pinned = hub.repos[REPO].tags["v1.0.0"]
    for revision, expected in (("v1.0.0", old), ("main", new), (pinned, old), (None, new)):
        path = hf.hf_hub_download(REPO, "model.safetensors", revision=revision)
        assert Path(path).read_bytes() == expected["model.safetensors"], revision
        assert _read_snapshot(hf.snapshot_download(REPO, revision=revision)) == expected, revision
    assert Path(hub.cache, "models--lam-org--fake-model", "refs", "v1.0.0").read_text() == pinned
    assert hub.repos[REPO].file_bytes("config.json", "v1.0.0") == old["config.json"]


def test_offline_mode_serves_the_pinned_revision_from_the_cache(hub, tmp_path: Path) -> None:
    """With HF_HUB_OFFLINE a revision downloaded before comes from the cache, with no request."""
    old, _ = _publish_two_versions(tmp_path)
    online = hf.snapshot_download(REPO, revision="v1.0.0")
    requests = len(hub.server.requests)
    hub.set_offline()
    assert hf.constants.is_offline_mode()
    assert hf.snapshot_download(REPO, revision="v1.0.0") == online
    assert _read_snapshot(online) == old
    assert Path(hf.hf_hub_download(REPO, "config.json", revision="v1.0.0")).read_bytes() == old["config.json"]
    with pytest.raises(LocalEntryNotFoundError):  # never downloaded at main
        hf.snapshot_download(REPO, revision="main")
    assert len(hub.server.requests) == requests
    hub.set_offline(False)
    assert _read_snapshot(hf.snapshot_download(REPO))["config.json"] == b'{"version": 2}'


def test_an_existing_tag_is_refused_and_stays_put(hub, tmp_path: Path) -> None:
    """create_tag of an existing tag raises (409) and does not move it; branches can be created."""
    _publish_two_versions(tmp_path)
    before = dict(hub.repos[REPO].tags)
    with pytest.raises(HfHubHTTPError) as refused:
        hub.api.create_tag(REPO, tag="v1.0.0", revision="main")
    assert refused.value.response.status_code == 409 and "already exists" in str(refused.value)
    hub.api.create_tag(REPO, tag="v1.0.0", revision="main", exist_ok=True)
    assert hub.repos[REPO].tags == before
    hub.api.create_branch(REPO, branch="stable", revision="v1.0.0")
    assert hub.repos[REPO].branches["stable"] == before["v1.0.0"]


def test_unknown_repo_revision_and_file_raise_the_client_errors(hub, tmp_path: Path) -> None:
    """The X-Error-Code headers become RepositoryNotFound-, RevisionNotFound- and EntryNotFoundError."""
    _publish_two_versions(tmp_path)
    for call in (
        lambda: hub.api.model_info("lam-org/missing"),
        lambda: hf.hf_hub_download("lam-org/missing", "config.json"),
        lambda: hf.snapshot_download("lam-org/missing"),
    ):
        with pytest.raises(RepositoryNotFoundError):
            call()
    for call in (
        lambda: hub.api.model_info(REPO, revision="v9.9.9"),
        lambda: hf.hf_hub_download(REPO, "config.json", revision="v9.9.9"),
        lambda: hf.snapshot_download(REPO, revision="v9.9.9"),
    ):
        with pytest.raises(RevisionNotFoundError):
            call()
    with pytest.raises(EntryNotFoundError):
        hf.hf_hub_download(REPO, "missing.json", revision="v1.0.0")
    assert hub.server.count("HEAD", "/resolve/v1.0.0/missing.json") == 1


def test_a_private_repo_needs_a_token_to_be_read(hub, tmp_path: Path, monkeypatch) -> None:
    """Without a token a private repo is not found (as on the Hub); with one it downloads."""
    hub.api.create_repo("lam-org/secret", private=True)
    _model_folder(tmp_path / "m", 1)
    hub.api.upload_folder(repo_id="lam-org/secret", folder_path=tmp_path / "m", commit_message="secret")
    assert hub.repos["lam-org/secret"].private and hub.api.model_info("lam-org/secret").private
    with pytest.raises(RepositoryNotFoundError):
        hf.hf_hub_download("lam-org/secret", "config.json", token=False)
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(RepositoryNotFoundError):
        hf.snapshot_download("lam-org/secret")
    with pytest.raises(RepositoryNotFoundError):
        hf.model_info("lam-org/secret")
    path = hf.hf_hub_download("lam-org/secret", "config.json", token=hub.token)
    assert Path(path).read_bytes() == b'{"version": 1}'


def test_writes_need_a_token(hub, tmp_path: Path) -> None:
    """create_repo and upload_folder without a token are refused with 401 and change nothing."""
    with pytest.raises(HfHubHTTPError) as anonymous:
        hub.api.create_repo(REPO, token=False)
    assert anonymous.value.response.status_code == 401 and REPO not in hub.repos
    hub.api.create_repo(REPO)
    _model_folder(tmp_path / "m", 1)
    with pytest.raises(HfHubHTTPError):
        hf.upload_folder(repo_id=REPO, folder_path=tmp_path / "m", token=False)
    assert len(hub.repos[REPO].commits) == 1


def test_unchanged_files_make_no_commit_and_deletions_work(hub, tmp_path: Path) -> None:
    """Re-uploading unchanged files makes no commit; a commit can delete files; the tree lists folders."""
    _publish_two_versions(tmp_path)
    repo = hub.repos[REPO]
    head = repo.branches["main"]
    again = hub.api.upload_folder(repo_id=REPO, folder_path=tmp_path / "v2", commit_message="same")
    assert again.oid == head and repo.branches["main"] == head  # the preupload oids show nothing changed
    info = hub.api.create_commit(
        REPO,
        [CommitOperationDelete("config.json"), CommitOperationAdd("sub/notes.txt", b"hello")],
        commit_message="reshuffle",
    )
    assert repo.commits[info.oid].parent == head
    assert sorted(hub.api.list_repo_files(REPO)) == [".gitattributes", "model.safetensors", "sub/notes.txt"]
    assert "config.json" in hub.api.list_repo_files(REPO, revision="v1.1.0")
    top = {(type(e).__name__, e.path) for e in hub.api.list_repo_tree(REPO)}
    assert ("RepoFolder", "sub") in top and ("RepoFile", "sub/notes.txt") not in top
    with pytest.raises(EntryNotFoundError):
        hub.api.create_commit(REPO, [CommitOperationDelete("config.json")], commit_message="twice")


def test_a_model_card_is_validated_and_uploaded(hub, tmp_path: Path) -> None:
    """upload_folder checks README.md's metadata through /api/validate-yaml before committing it."""
    hub.api.create_repo(REPO)
    _model_folder(tmp_path / "m", 1)
    (tmp_path / "m" / "README.md").write_text("---\nlicense: mit\ntags: [lam]\n---\n# A model\n")
    hub.api.upload_folder(repo_id=REPO, folder_path=tmp_path / "m")
    assert hf.ModelCard.load(REPO).data.license == "mit"
    assert hub.server.count("POST", "/api/validate-yaml") == 1
    (tmp_path / "m" / "README.md").write_text("---\n- just\n- a list\n---\n")
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        hub.api.upload_folder(repo_id=REPO, folder_path=tmp_path / "m")
    assert len(hub.repos[REPO].commits) == 2


def test_lfs_mode_uploads_through_the_batch_api(hub, tmp_path: Path) -> None:
    """In LFS mode weights go through the LFS batch API and download by their sha256 (X-Linked-Etag)."""
    hub.use_lfs(".safetensors")
    old, _ = _publish_two_versions(tmp_path)
    blob = hub.repos[REPO].resolve("v1.0.0").files["model.safetensors"]
    assert blob.lfs and blob.sha256 in hub.server.lfs_objects and hub.server.count("PUT", "/lfs-upload/") == 2
    assert not hub.repos[REPO].resolve("v1.0.0").files["config.json"].lfs
    sibling = next(s for s in hub.api.model_info(REPO, files_metadata=True).siblings if s.lfs)
    assert sibling.rfilename == "model.safetensors" and sibling.lfs.size == 200_000
    path = Path(hf.hf_hub_download(REPO, "model.safetensors", revision="v1.0.0"))
    assert path.read_bytes() == old["model.safetensors"]
    assert path.resolve().name == blob.sha256  # cached under its sha256, from X-Linked-Etag


def test_the_server_shuts_down_cleanly() -> None:
    """close() stops the thread and frees the port; raw HTTP gets Hub-style error headers."""
    server = FakeHub().start()
    port = server.server_address[1]
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"GET /api/models/a/b HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.0 404") and b"X-Error-Code: RepoNotFound" in answer
    server.close()
    assert server.count("GET") == 1 and not server.errors
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
