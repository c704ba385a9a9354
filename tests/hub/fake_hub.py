"""An in-memory Hugging Face Hub (model repos, on 127.0.0.1) for what ``huggingface_hub`` 2.x uses: repos,
preupload + NDJSON commits (LFS via the batch API), tags, branches, refs, model info, tree, ``/resolve``,
the client's ``X-Error-Code`` headers; 40-hex commit ids, git blob ids (sha256 for LFS): real cache layout.
Inspect ``server.repos`` and ``server.requests``; handler crashes answer 500 and land in ``server.errors``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import traceback
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml  # a dependency of lam

GITATTRIBUTES = "".join(f"*.{ext} filter=lfs diff=lfs merge=lfs -text\n" for ext in ("bin", "safetensors"))
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n"
_REPO = r"(?P<repo>[^/]+/[^/]+)"
_API = r"^/api/models/" + _REPO
ROUTES = [  # (methods, regex on the still-quoted path, handler method); captured groups are unquoted
    ("POST", r"^/api/repos/create$", "create_repo"),
    ("POST", r"^/api/validate-yaml$", "validate_yaml"),
    ("GET", _API + r"(?:/revision/(?P<rev>[^/]+))?$", "model_info"),
    ("GET", _API + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?$", "tree"),
    ("GET", _API + r"/refs$", "refs"),
    ("POST", _API + r"/preupload/(?P<rev>[^/]+)$", "preupload"),
    ("POST", _API + r"/commit/(?P<rev>[^/]+)$", "commit"),
    ("POST", _API + r"/(?P<kind>tag|branch)/(?P<rev>[^/]+)$", "ref"),
    ("POST", r"^/" + _REPO + r"\.git/info/lfs/objects/batch$", "lfs_batch"),
    ("PUT", r"^/lfs-upload/(?P<oid>[0-9a-f]{64})$", "lfs_upload"),
    ("GET HEAD", r"^/" + _REPO + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)$", "resolve"),
]


def _now() -> str:
    """Current UTC time in the Hub's ``%Y-%m-%dT%H:%M:%S.%fZ`` format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class HubError(Exception):
    """An error answer: HTTP status, message, optional ``X-Error-Code``, extra headers and body fields."""

    def __init__(self, status: int, message: str, code: str | None = None, headers=None, **body) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers, self.body = dict(headers or {}), {"error": message, **body}


@dataclass(frozen=True)
class Blob:
    """A file's content; in git an ``lfs`` file is a pointer, and it is served with its sha256 as ETag."""

    data: bytes
    lfs: bool = False

    @property
    def sha256(self) -> str:
        """sha256 of the content (the LFS object id)."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        """The git-lfs pointer file committed in place of an LFS file."""
        return LFS_POINTER.format(self.sha256, len(self.data)).encode()

    @property
    def oid(self) -> str:
        """Git blob id (a regular file's ETag): of the pointer for LFS files, of the content otherwise."""
        data = self.pointer if self.lfs else self.data
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def tree_entry(self, path: str) -> dict:
        """How ``/tree`` (and ``siblings`` in model info) describe this file."""
        entry = {"type": "file", "path": path, "oid": self.oid, "size": len(self.data)}
        if self.lfs:
            sha, size = self.sha256, len(self.data)  # "oid" for /tree, "sha256" for siblings
            entry["lfs"] = {"oid": sha, "sha256": sha, "size": size, "pointerSize": len(self.pointer)}
        return entry


@dataclass(frozen=True)
class Commit:
    """An immutable snapshot: id, parent id, message and the complete ``path -> Blob`` mapping."""

    oid: str
    parent: str | None
    message: str
    files: dict[str, Blob]
    date: str


@dataclass
class Repo:
    """One model repo: ``commits`` by id, ``branches`` and ``tags`` (name -> commit id), visibility."""

    repo_id: str
    private: bool = False
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=_now)

    def __post_init__(self) -> None:
        if not self.branches:  # like the Hub, a new repo has one commit holding .gitattributes
            self.add_commit("main", {".gitattributes": Blob(GITATTRIBUTES.encode())}, "initial commit")

    def add_commit(self, branch: str, files: dict[str, Blob], message: str) -> Commit:
        """Commit ``files`` (the complete new tree) on top of ``branch`` and move the branch."""
        parent, date = self.branches.get(branch), _now()
        lines = [f"{parent} {date} {message}"] + [f"{p} {b.oid}" for p, b in sorted(files.items())]
        oid = hashlib.sha1("\n".join(lines).encode()).hexdigest()
        self.commits[oid] = Commit(oid, parent, message, dict(files), date)
        self.branches[branch] = oid
        return self.commits[oid]

    def resolve(self, revision: str) -> Commit:
        """The commit of a branch, tag (or ``refs/heads/x``, ``refs/tags/x``) or full commit id, else 404."""
        name = revision.removeprefix("refs/heads/").removeprefix("refs/tags/")
        if (oid := self.branches.get(name) or self.tags.get(name) or revision) not in self.commits:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return self.commits[oid]

    def file_bytes(self, path: str, revision: str = "main") -> bytes:
        """Content of ``path`` at ``revision`` (KeyError for an unknown path, HubError for a revision)."""
        return self.resolve(revision).files[path].data


RequestRecord = namedtuple("RequestRecord", "method path query token")  # path unquoted, token or None


class FakeHub(ThreadingHTTPServer):
    """The fake Hub server: :meth:`start` it, :meth:`close` it."""

    daemon_threads, request_queue_size = True, 64  # snapshot_download opens up to 8 connections at once

    def __init__(self, port: int = 0, username: str = "fake-user") -> None:
        super().__init__(("127.0.0.1", port), _Handler)  # never any other address
        self.username = username  # namespace of repos created without an organization
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content, filled by the LFS upload endpoint
        self.lfs_suffixes: tuple[str, ...] = ()  # files whose preupload answer is "lfs" (default: none)
        self.requests: list[RequestRecord] = []
        self.errors: list[str] = []
        self.lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self.url = f"http://127.0.0.1:{self.server_address[1]}"  # base URL, the value for HF_ENDPOINT

    def start(self) -> FakeHub:
        """Serve from a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port (each connection serves one request, none stays open)."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
        self.server_close()

    def count(self, method: str | None = None, contains: str = "") -> int:
        """Number of requests so far with ``method`` (any if None) whose path contains ``contains``."""
        with self.lock:
            return sum(1 for r in self.requests if method in (None, r.method) and contains in r.path)


class _Handler(BaseHTTPRequestHandler):
    """Routes one request (see ``ROUTES``) and turns :class:`HubError` into the Hub's error answers."""

    server: FakeHub

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        """Stay quiet: ``server.requests`` records every request."""

    def do_GET(self) -> None:
        """Find the route, run it and send its JSON answer (or the error); the same for all methods."""
        parts = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        auth = self.headers.get("Authorization", "")
        self.token = (auth[7:].strip() or None) if auth.startswith("Bearer ") else None
        self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        record = RequestRecord(self.command, unquote(parts.path), parts.query, self.token)
        self.server.requests.append(record)  # list.append is atomic
        try:
            if self.headers.get("Transfer-Encoding"):
                raise HubError(411, "the fake hub needs a Content-Length")
            if self.command in ("POST", "DELETE") and self.token is None:  # writes need a token
                raise HubError(401, "Invalid credentials in Authorization header")
            for methods, pattern, name in ROUTES:
                if (match := re.match(pattern, parts.path)) and self.command in methods.split():
                    result = getattr(self, name)(**{k: unquote(v) for k, v in match.groupdict().items() if v})
                    if result is not None:
                        self._send(200, json.dumps(result).encode(), {"Content-Type": "application/json"})
                    return
            raise HubError(404, f"no route for {self.command} {parts.path}")
        except HubError as err:
            headers = {"Content-Type": "application/json", "X-Error-Message": err.message, **err.headers}
            headers.update({"X-Error-Code": err.code} if err.code else {})
            self._send(err.status, json.dumps(err.body).encode(), headers)
        except Exception:
            self.server.errors.append(traceback.format_exc())
            self._send(500, b'{"error": "fake hub internal error"}', {"Content-Type": "application/json"})

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        """Write status, headers, Content-Length and (except for HEAD) the body."""
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self) -> dict:
        """The request body parsed as JSON (400 if it is not)."""
        try:
            return json.loads(self.body or b"{}")
        except ValueError as err:
            raise HubError(400, f"invalid JSON body: {err}") from err

    def _repo(self, repo_id: str) -> Repo:
        """The repo (404 ``RepoNotFound``); reading a private one needs a token."""
        repo = self.server.repos.get(repo_id)
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        if repo.private and self.token is None:  # the Hub's answer to anonymous reads of a private repo
            raise HubError(401, "Invalid username or password.", "RepoNotFound")
        return repo

    def create_repo(self) -> dict:
        """POST /api/repos/create: 409 if it exists, with the ``url`` the client still reads."""
        body = self._json()
        if body.get("type") not in ("model", None):
            raise HubError(400, "the fake hub only hosts model repos")
        repo_id = f"{body.get('organization') or self.server.username}/{body['name']}"
        url = f"{self.server.url}/{repo_id}"
        with self.server.lock:
            if repo_id in self.server.repos:
                raise HubError(409, "You already created this model repo", url=url)
            self.server.repos[repo_id] = Repo(repo_id, private=body.get("visibility") == "private")
        return {"url": url, "name": repo_id, "id": repo_id}

    def validate_yaml(self) -> dict:
        """POST /api/validate-yaml (before a README.md is committed): its front matter must be a mapping."""
        match = re.match(r"---\s*\n(.*?)\n---\s*(\n|$)", self._json().get("content", ""), re.S)
        try:
            metadata = yaml.safe_load(match[1]) if match else None
        except yaml.YAMLError as err:
            metadata = f"invalid YAML: {err}"
        if not isinstance(metadata or {}, dict):
            raise HubError(400, "Invalid metadata in README.md", errors=[{"message": str(metadata)}])
        return {"errors": [], "warnings": []}

    def model_info(self, repo: str, rev: str = "main") -> dict:
        """GET /api/models/{repo}[/revision/{rev}]: ``sha``, ``siblings`` (with size, blob id, LFS info)."""
        r = self._repo(repo)
        commit = r.resolve(rev)
        # the Hub sends sizes, blob ids and LFS info only for ``blobs=true``; they do no harm otherwise
        siblings = [
            {"rfilename": p, "blobId": b.oid, **b.tree_entry(p)} for p, b in sorted(commit.files.items())
        ]
        return {
            **{"id": repo, "modelId": repo, "author": repo.split("/")[0], "sha": commit.oid, "tags": []},
            **{"lastModified": commit.date, "createdAt": r.created_at, "private": r.private, "gated": False},
            **{"disabled": False, "downloads": 0, "likes": 0, "siblings": siblings},
        }

    def tree(self, repo: str, rev: str, path: str = "") -> list:
        """GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=: files and folders, as a single page."""
        commit = self._repo(repo).resolve(rev)
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        recursive = self.query.get("recursive", "").lower() in ("1", "true")
        entries: dict[str, dict] = {}
        for file_path, blob in sorted(commit.files.items()):
            parts = file_path.removeprefix(prefix).split("/")
            if not file_path.startswith(prefix):
                continue
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                folder = prefix + "/".join(parts[:depth])
                oid = hashlib.sha1(f"{commit.oid}:{folder}".encode()).hexdigest()
                entries.setdefault(folder, {"type": "directory", "path": folder, "oid": oid, "size": 0})
            if recursive or len(parts) == 1:
                entries[file_path] = blob.tree_entry(file_path)
        if prefix and not entries:
            raise HubError(404, f"{prefix} does not exist at {rev}", "EntryNotFound")
        return list(entries.values())

    def refs(self, repo: str) -> dict:
        """GET /api/models/{repo}/refs: branches and tags with their ``targetCommit``."""
        r, answer = self._repo(repo), {"converts": [], "pullRequests": []}
        for key, kind, refs in (("branches", "heads", r.branches), ("tags", "tags", r.tags)):
            answer[key] = [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": c} for n, c in refs.items()]
        return answer

    def ref(self, repo: str, kind: str, rev: str) -> dict:
        """POST /api/models/{repo}/tag/{revision} or /branch/{name}: a ref that exists answers 409."""
        r = self._repo(repo)
        body, refs = self._json(), r.tags if kind == "tag" else r.branches
        with self.server.lock:
            name = body["tag"] if kind == "tag" else rev
            start = r.resolve(rev if kind == "tag" else body.get("startingPoint") or "main")
            if name in refs:
                raise HubError(409, f"{kind.capitalize()} reference refs/{kind}s/{name} already exists")
            refs[name] = start.oid
        return {}

    def preupload(self, repo: str, rev: str) -> dict:
        """POST /api/models/{repo}/preupload/{rev}: "lfs" if the name ends with ``lfs_suffixes``."""
        commit = self._repo(repo).resolve(rev)
        files = []
        for item in self._json()["files"]:
            mode = (
                "lfs" if item["path"].endswith(self.server.lfs_suffixes) and item["size"] > 0 else "regular"
            )
            files.append({"path": item["path"], "uploadMode": mode, "shouldIgnore": False})
            if (old := commit.files.get(item["path"])) is not None:  # lets the client skip unchanged files
                files[-1]["oid"] = old.sha256 if old.lfs else old.oid
        return {"files": files, "commitOid": commit.oid}

    def commit(self, repo: str, rev: str) -> dict:
        """POST /api/models/{repo}/commit/{branch}: an NDJSON header line, then one line per operation."""
        r = self._repo(repo)
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the commit payload must start with a header line")
        header = lines[0]["value"]
        with self.server.lock:
            if rev not in r.branches:
                raise HubError(404, f"Invalid rev id: {rev} (commits go to a branch)", "RevisionNotFound")
            head = r.commits[r.branches[rev]]
            if header.get("parentCommit") not in (None, head.oid):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(head.files)
            for line in lines[1:]:
                self._apply(files, line["key"], line["value"])
            description = header.get("description") or ""
            new = r.add_commit(rev, files, header["summary"] + (f"\n\n{description}" if description else ""))
        url = f"{self.server.url}/{repo}/commit/{new.oid}"
        return {"success": True, "commitOid": new.oid, "commitUrl": url, "hookOutput": ""}

    def _apply(self, files: dict[str, Blob], key: str, value: dict) -> None:
        """Apply one commit operation (file, lfsFile, deletedFile, deletedFolder) to ``files``."""
        path = value["path"].strip("/")
        if key == "file":
            files[path] = Blob(base64.b64decode(value["content"]))
        elif key == "lfsFile":
            if value["oid"] not in self.server.lfs_objects:
                raise HubError(422, f"LFS object {value['oid']} of {path} was never uploaded")
            files[path] = Blob(self.server.lfs_objects[value["oid"]], lfs=True)
        elif key in ("deletedFile", "deletedFolder"):
            doomed = [p for p in files if p == path or (key == "deletedFolder" and p.startswith(path + "/"))]
            if not doomed:
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            for p in doomed:
                del files[p]
        else:
            raise HubError(400, f"unknown commit operation {key!r}")

    def lfs_batch(self, repo: str) -> dict:
        """POST /{repo}.git/info/lfs/objects/batch: upload actions pointing back at this server."""
        self._repo(repo)
        objects = []
        for obj in self._json()["objects"]:
            objects.append({"oid": obj["oid"], "size": obj["size"]})
            if obj["oid"] not in self.server.lfs_objects:  # no "actions": the object is already stored
                objects[-1]["actions"] = {"upload": {"href": f"{self.server.url}/lfs-upload/{obj['oid']}"}}
        return {"transfer": "basic", "objects": objects}

    def lfs_upload(self, oid: str) -> dict:
        """PUT /lfs-upload/{sha256}: store the content, which must hash to the announced oid."""
        if hashlib.sha256(self.body).hexdigest() != oid:
            raise HubError(400, "uploaded content does not match its sha256")
        self.server.lfs_objects[oid] = self.body
        return {}

    def resolve(self, repo: str, rev: str, path: str) -> None:
        """HEAD|GET /{repo}/resolve/{rev}/{path}: X-Repo-Commit, ETag (X-Linked-* for LFS)."""
        commit = self._repo(repo).resolve(rev)
        if (blob := commit.files.get(path)) is None:  # X-Repo-Commit lets the client cache the absence
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        etag = f'"{blob.sha256 if blob.lfs else blob.oid}"'
        headers = {"Content-Type": "application/octet-stream", "X-Repo-Commit": commit.oid, "ETag": etag}
        if blob.lfs:
            headers.update({"X-Linked-Etag": etag, "X-Linked-Size": str(len(blob.data))})
        data, status = blob.data, 200
        if match := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "")):  # how the client resumes
            data, status = data[int(match[1]) :], 206
            headers["Content-Range"] = f"bytes {match[1]}-{len(blob.data) - 1}/{len(blob.data)}"
        self._send(status, data, {**headers, "Accept-Ranges": "bytes"})
