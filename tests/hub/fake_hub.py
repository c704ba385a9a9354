"""A small in-memory Hugging Face Hub (model repos only) served over HTTP on 127.0.0.1, for offline tests.

It speaks the part of the Hub API that ``huggingface_hub`` (the installed 2.x client) uses for models:
create/delete repo, preupload + NDJSON commit (regular files inline in base64; LFS through the batch API),
tags, branches, refs, model info, tree listing and ``/resolve`` downloads (HEAD and GET, with ranges).
Errors carry the ``X-Error-Code`` headers the client maps to its exceptions (``RepoNotFound``,
``RevisionNotFound``, ``EntryNotFound``). Commits get git-like 40-hex ids; files keep git blob ids (and a
sha256 for LFS files), so the client's cache layout is the real one.

Tests inspect ``server.repos[repo_id]`` (``branches``, ``tags``, ``commits``, :meth:`Repo.file_bytes`) and
``server.requests`` (see :meth:`FakeHub.count`). Unexpected handler exceptions answer HTTP 500 and are kept
in ``server.errors``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

GITATTRIBUTES = b"*.bin filter=lfs diff=lfs merge=lfs -text\n*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
_REPO = r"(?P<repo>[^/]+/[^/]+)"
_API = r"^/api/models/" + _REPO
ROUTES = [  # (methods, path regex on the still-quoted path, handler method name)
    ("GET", r"^/api/agent-harnesses$", "agent_harnesses"),
    ("GET", r"^/api/whoami-v2$", "whoami"),
    ("POST", r"^/api/repos/create$", "create_repo"),
    ("DELETE", r"^/api/repos/delete$", "delete_repo"),
    ("GET", _API + r"(?:/revision/(?P<rev>[^/]+))?$", "model_info"),
    ("GET", _API + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?$", "tree"),
    ("GET", _API + r"/refs$", "refs"),
    ("POST", _API + r"/preupload/(?P<rev>[^/]+)$", "preupload"),
    ("POST", _API + r"/commit/(?P<rev>[^/]+)$", "commit"),
    ("POST DELETE", _API + r"/(?P<kind>tag|branch)/(?P<rev>[^/]+)$", "ref"),
    ("POST", r"^/" + _REPO + r"\.git/info/lfs/objects/batch$", "lfs_batch"),
    ("PUT", r"^/lfs-upload/(?P<oid>[0-9a-f]{64})$", "lfs_upload"),
    ("GET HEAD", r"^/" + _REPO + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)$", "resolve"),
]


def _now() -> str:
    """Current UTC time in the Hub's ``%Y-%m-%dT%H:%M:%S.%fZ`` format (milliseconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob holding ``data`` (what the Hub returns as a regular file's ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubError(Exception):
    """An HTTP error answer: status, message, optional ``X-Error-Code`` and extra headers / body fields."""

    def __init__(self, status: int, message: str, code: str | None = None, headers=None, **body) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers, self.body = dict(headers or {}), {"error": message, **body}


@dataclass(frozen=True)
class Blob:
    """A file's content; ``lfs`` files are stored as an LFS pointer in git and served with their sha256."""

    data: bytes
    lfs: bool = False

    @property
    def sha256(self) -> str:
        """sha256 of the content (the LFS object id)."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        """The git-lfs pointer file committed in place of an LFS file."""
        return b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (
            self.sha256.encode(), len(self.data))

    @property
    def oid(self) -> str:
        """Git blob id: of the pointer for LFS files, of the content otherwise."""
        return git_blob_oid(self.pointer if self.lfs else self.data)

    def tree_entry(self, path: str) -> dict:
        """The ``/tree`` (and ``siblings`` with ``blobs=True``) description of this file."""
        entry = {"type": "file", "path": path, "oid": self.oid, "size": len(self.data)}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": len(self.data), "pointerSize": len(self.pointer)}
        return entry


@dataclass(frozen=True)
class Commit:
    """An immutable snapshot: id, parent id, message and the full ``path -> Blob`` mapping."""

    oid: str
    parent: str | None
    message: str
    files: dict[str, Blob]
    date: str


@dataclass
class Repo:
    """One model repo: commits by id, ``branches`` and ``tags`` (name -> commit id), visibility."""

    repo_id: str
    private: bool = False
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=_now)

    def __post_init__(self) -> None:
        if not self.branches:  # like the Hub: a new repo has one commit holding .gitattributes
            self.add_commit("main", {".gitattributes": Blob(GITATTRIBUTES)}, "initial commit")

    def add_commit(self, branch: str, files: dict[str, Blob], message: str) -> Commit:
        """Commit ``files`` (the complete new tree) on top of ``branch`` and move the branch."""
        parent, date = self.branches.get(branch), _now()
        lines = [f"parent {parent}", f"date {date}", message] + [f"{p} {b.oid}" for p, b in sorted(files.items())]
        oid = hashlib.sha1("\n".join(lines).encode()).hexdigest()
        self.commits[oid] = Commit(oid, parent, message, dict(files), date)
        self.branches[branch] = oid
        return self.commits[oid]

    def resolve(self, revision: str) -> Commit | None:
        """Branch, tag (also as ``refs/heads/x`` / ``refs/tags/x``), full commit id or unique prefix of >= 7."""
        name = revision.removeprefix("refs/heads/").removeprefix("refs/tags/")
        oid = self.branches.get(name) or self.tags.get(name)
        if oid is None and re.fullmatch(r"[0-9a-f]{7,40}", revision):
            matches = [c for c in self.commits if c.startswith(revision)]
            oid = matches[0] if len(matches) == 1 else None
        return self.commits.get(oid) if oid else None

    def file_bytes(self, path: str, revision: str = "main") -> bytes:
        """Content of ``path`` at ``revision`` (KeyError if either is unknown)."""
        commit = self.resolve(revision)
        if commit is None:
            raise KeyError(revision)
        return commit.files[path].data


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it."""

    method: str
    path: str
    query: str
    token: str | None


class FakeHub(ThreadingHTTPServer):
    """The fake Hub server; use as a context manager or call :meth:`start` / :meth:`close`."""

    daemon_threads = True

    def __init__(self, port: int = 0, username: str = "fake-user") -> None:
        super().__init__(("127.0.0.1", port), _Handler)  # never any other address
        self.username = username
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content, filled by the LFS upload endpoint
        self.lfs_suffixes: tuple[str, ...] = ()  # files the preupload answer sends through LFS
        self.requests: list[RequestRecord] = []
        self.errors: list[str] = []
        self.lock = threading.RLock()
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (what ``HF_ENDPOINT`` must be set to)."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> FakeHub:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, drop keep-alive connections and release the port."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        with self.lock:
            for conn in list(self._connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.server_close()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def count(self, method: str | None = None, contains: str = "") -> int:
        """Number of requests so far with this method (any if None) whose path contains ``contains``."""
        with self.lock:
            return sum(1 for r in self.requests if method in (None, r.method) and contains in r.path)

    def create_repo(self, repo_id: str, private: bool = False) -> Repo:
        """Create a repo directly (no HTTP), e.g. to seed state in a test."""
        with self.lock:
            return self.repos.setdefault(repo_id, Repo(repo_id, private))


class _Handler(BaseHTTPRequestHandler):
    """Routes one request (see ``ROUTES``) and turns :class:`HubError` into Hub-style error answers."""

    protocol_version = "HTTP/1.1"  # keep-alive, like the real Hub; every answer has a Content-Length
    server: FakeHub

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.lock:
            self.server._connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _dispatch(self) -> None:
        """Find the route, run it, send its JSON (or the error) answer."""
        parts = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        auth = self.headers.get("Authorization", "")
        self.token = (auth[7:].strip() or None) if auth.startswith("Bearer ") else None
        self.body = self._read_body()
        with self.server.lock:
            self.server.requests.append(RequestRecord(self.command, unquote(parts.path), parts.query, self.token))
        try:
            for methods, pattern, name in ROUTES:
                match = re.match(pattern, parts.path)
                if match and self.command in methods.split():
                    args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                    result = getattr(self, name)(**args)
                    if result is not None:
                        self._send(200, json.dumps(result).encode(), {"Content-Type": "application/json"})
                    return
            raise HubError(404, f"no route for {self.command} {parts.path}")
        except HubError as err:
            headers = {"Content-Type": "application/json", "X-Error-Message": err.message, **err.headers}
            if err.code:
                headers["X-Error-Code"] = err.code
            self._send(err.status, json.dumps(err.body).encode(), headers)
        except Exception:
            self.server.errors.append(traceback.format_exc())
            self._send(500, b'{"error": "fake hub internal error"}', {"Content-Type": "application/json"})

    def _read_body(self) -> bytes:
        """The request body, whether sent with a Content-Length or chunked."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        """Write status, headers and (except for HEAD) the body."""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self) -> dict:
        """The request body parsed as JSON (400 if it is not)."""
        try:
            return json.loads(self.body or b"{}")
        except ValueError as err:
            raise HubError(400, f"invalid JSON body: {err}") from err

    def _repo(self, repo_id: str, write: bool = False) -> Repo:
        """The repo, enforcing auth: writes need a token, private repos need one for reads too."""
        if write and self.token is None:
            raise HubError(401, "Authorization header with a token is required to write")
        repo = self.server.repos.get(repo_id)
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        if repo.private and self.token is None:  # what the Hub answers to anonymous reads of a private repo
            raise HubError(401, "Invalid username or password.", "RepoNotFound")
        return repo

    @staticmethod
    def _commit(repo: Repo, revision: str) -> Commit:
        """The commit a revision points to (404 ``RevisionNotFound`` otherwise)."""
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def agent_harnesses(self) -> dict:
        """The AI-agent registry the client fetches once per process to build its user agent: empty."""
        return {"standardEnvVars": [], "harnesses": {}}

    def whoami(self) -> dict:
        """Any token is a valid write token of ``server.username``."""
        if self.token is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        role = {"displayName": "fake", "role": "write"}
        return {"type": "user", "name": self.server.username, "orgs": [], "auth": {"accessToken": role}}

    def create_repo(self) -> dict:
        """POST /api/repos/create: 409 (with the repo ``url``, which the client reads) if it exists."""
        if self.token is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        body = self._json()
        if body.get("type", "model") not in ("model", None):
            raise HubError(400, "the fake hub only hosts model repos")
        repo_id = f"{body.get('organization') or self.server.username}/{body['name']}"
        url = f"{self.server.url}/{repo_id}"
        with self.server.lock:
            if repo_id in self.server.repos:
                raise HubError(409, "You already created this model repo", url=url)
            self.server.repos[repo_id] = Repo(repo_id, private=body.get("visibility") == "private")
        return {"url": url, "name": repo_id, "id": repo_id}

    def delete_repo(self) -> dict:
        """DELETE /api/repos/delete."""
        body = self._json()
        repo_id = f"{body.get('organization') or self.server.username}/{body['name']}"
        self._repo(repo_id, write=True)
        with self.server.lock:
            del self.server.repos[repo_id]
        return {}

    def model_info(self, repo: str, rev: str = "main") -> dict:
        """GET /api/models/{repo}[/revision/{rev}]; ``blobs=true`` adds size, blob id and LFS info."""
        r = self._repo(repo)
        commit = self._commit(r, rev)
        blobs = self.query.get("blobs", "").lower() in ("1", "true")
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sibling = {"rfilename": path}
            if blobs:
                entry = blob.tree_entry(path)
                sibling.update(size=entry["size"], blobId=entry["oid"])
                if blob.lfs:
                    sibling["lfs"] = {"size": len(blob.data), "sha256": blob.sha256, "pointerSize": len(blob.pointer)}
            siblings.append(sibling)
        return {"_id": hashlib.md5(repo.encode()).hexdigest()[:24], "id": repo, "modelId": repo,
                "author": repo.split("/")[0], "sha": commit.oid, "lastModified": commit.date,
                "createdAt": r.created_at, "private": r.private, "gated": False, "disabled": False,
                "downloads": 0, "likes": 0, "tags": [], "siblings": siblings}

    def tree(self, repo: str, rev: str, path: str = "") -> list:
        """GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=: files and directories (one page)."""
        commit = self._commit(self._repo(repo), rev)
        prefix = path.strip("/")
        recursive = self.query.get("recursive", "").lower() in ("1", "true")
        entries: dict[str, dict] = {}
        for file_path, blob in sorted(commit.files.items()):
            if prefix and not file_path.startswith(prefix + "/"):
                continue
            parts = file_path[len(prefix) + 1 if prefix else 0:].split("/")
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                folder = "/".join(([prefix] if prefix else []) + parts[:depth])
                tree_oid = hashlib.sha1(f"{commit.oid}:{folder}".encode()).hexdigest()
                entries.setdefault(folder, {"type": "directory", "path": folder, "oid": tree_oid, "size": 0})
            if recursive or len(parts) == 1:
                entries[file_path] = blob.tree_entry(file_path)
        if prefix and not entries:
            raise HubError(404, f"{prefix} does not exist on {rev}", "EntryNotFound")
        return list(entries.values())

    def refs(self, repo: str) -> dict:
        """GET /api/models/{repo}/refs: branches and tags with their ``targetCommit``."""
        r = self._repo(repo)

        def refs(names: dict[str, str], kind: str) -> list:
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": c} for n, c in sorted(names.items())]

        answer = {"branches": refs(r.branches, "heads"), "converts": [], "tags": refs(r.tags, "tags")}
        if self.query.get("include_prs"):
            answer["pullRequests"] = []
        return answer

    def ref(self, repo: str, kind: str, rev: str) -> dict:
        """POST/DELETE /api/models/{repo}/tag|branch/{...}: 409 when creating a ref that exists."""
        r = self._repo(repo, write=True)
        body, refs = self._json(), r.tags if kind == "tag" else r.branches
        with self.server.lock:
            if self.command == "DELETE":
                if rev not in refs:
                    raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
                if kind == "branch" and rev == "main":
                    raise HubError(403, "You cannot delete the default branch")
                del refs[rev]
                return {}
            name = body["tag"] if kind == "tag" else rev
            start = self._commit(r, rev if kind == "tag" else body.get("startingPoint") or "main")
            if name in refs:
                raise HubError(409, f"{kind.capitalize()} reference refs/{kind}s/{name} already exists")
            refs[name] = start.oid
        return {}

    def preupload(self, repo: str, rev: str) -> dict:
        """POST /api/models/{repo}/preupload/{rev}: "regular" unless the name ends with an ``lfs_suffixes``."""
        commit = self._commit(self._repo(repo, write=True), rev)
        files = []
        for item in self._json()["files"]:
            lfs = item["path"].endswith(self.server.lfs_suffixes) and item["size"] > 0
            answer = {"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
            if (existing := commit.files.get(item["path"])) is not None:  # lets the client skip unchanged files
                answer["oid"] = existing.sha256 if existing.lfs else existing.oid
            files.append(answer)
        return {"files": files, "commitOid": commit.oid}

    def commit(self, repo: str, rev: str) -> dict:
        """POST /api/models/{repo}/commit/{branch}: NDJSON header line then one line per operation."""
        r = self._repo(repo, write=True)
        if self.query.get("create_pr"):
            raise HubError(400, "the fake hub does not support pull requests")
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
            message = header["summary"] + ("\n\n" + header["description"] if header.get("description") else "")
            new = r.add_commit(rev, files, message)
        return {"success": True, "commitOid": new.oid, "commitUrl": f"{self.server.url}/{repo}/commit/{new.oid}",
                "hookOutput": ""}

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
        self._repo(repo, write=True)
        objects = []
        for obj in self._json()["objects"]:
            answer = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.server.lfs_objects:  # no "actions" means: already stored
                answer["actions"] = {"upload": {"href": f"{self.server.url}/lfs-upload/{obj['oid']}"}}
            objects.append(answer)
        return {"transfer": "basic", "objects": objects}

    def lfs_upload(self, oid: str) -> dict:
        """PUT /lfs-upload/{sha256}: the content must hash to the announced oid."""
        if hashlib.sha256(self.body).hexdigest() != oid:
            raise HubError(400, "uploaded content does not match its sha256")
        with self.server.lock:
            self.server.lfs_objects[oid] = self.body
        return {}

    def resolve(self, repo: str, rev: str, path: str) -> None:
        """HEAD/GET /{repo}/resolve/{rev}/{path}: the file with X-Repo-Commit, ETag (X-Linked-* for LFS)."""
        commit = self._commit(self._repo(repo), rev)
        blob = commit.files.get(path)
        if blob is None:  # the commit header lets the client cache the file's absence
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes",
                   "X-Repo-Commit": commit.oid, "ETag": f'"{blob.sha256 if blob.lfs else blob.oid}"'}
        if blob.lfs:
            headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(len(blob.data))})
        data, status = blob.data, 200
        if match := re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "")):
            start, end = int(match[1]), int(match[2] or len(data) - 1)
            if start >= len(data):
                raise HubError(416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{len(data)}"})
            data, status = data[start:end + 1], 206
            headers["Content-Range"] = f"bytes {start}-{start + len(data) - 1}/{len(blob.data)}"
        self._send(status, data, headers)
