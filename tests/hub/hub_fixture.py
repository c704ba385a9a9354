"""The ``hub`` fixture: a :class:`fake_hub.FakeHub` on 127.0.0.1 that ``huggingface_hub`` talks to.

Registered by ``tests/conftest.py`` (one conftest for the whole suite: test modules import helpers
with ``from conftest import ...``, and a second ``conftest`` module would shadow the first).

``huggingface_hub`` reads its configuration into ``huggingface_hub.constants`` once, at import time
(``ENDPOINT``, ``HUGGINGFACE_CO_URL_TEMPLATE``, the cache and token paths under ``HF_HOME``,
``HF_HUB_OFFLINE``, ``HF_HUB_DISABLE_TELEMETRY``, ``HF_HUB_DISABLE_XET``), and the module-level ``HfApi``
behind ``huggingface_hub.create_repo`` & co. keeps the endpoint it was built with. Environment variables
alone are therefore too late once the package is imported: the fixture sets both the variables (for code
that reads them, and subprocesses) and the attributes the client reads at call time.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import HfApi, constants
from huggingface_hub.utils import _cache_manager, close_session

if str(Path(__file__).parent) not in sys.path:  # no __init__.py here: make ``fake_hub`` importable
    sys.path.insert(0, str(Path(__file__).parent))
from fake_hub import FakeHub, Repo  # noqa: E402

TOKEN = "hf_fake_token_for_tests"


@dataclass
class Hub:
    """What the ``hub`` fixture yields.

    Attributes:
        server: the running :class:`fake_hub.FakeHub` (``repos``, ``requests``, ``count()``, ``errors``).
        url: its base URL, also in ``HF_ENDPOINT`` and ``huggingface_hub.constants.ENDPOINT``.
        token: the dummy token in ``HF_TOKEN`` (any ``Bearer`` token is accepted).
        home: the temporary ``HF_HOME``; ``cache`` is ``HF_HUB_CACHE`` (``home / "hub"``).
        api: an ``HfApi`` bound to the fake hub and the token.
    """

    server: FakeHub
    url: str
    token: str
    home: Path
    cache: Path
    api: HfApi
    monkeypatch: pytest.MonkeyPatch

    @property
    def repos(self) -> dict[str, Repo]:
        """The server's repos by id."""
        return self.server.repos

    def set_offline(self, offline: bool = True) -> None:
        """Toggle ``HF_HUB_OFFLINE``: the client checks ``constants.HF_HUB_OFFLINE`` on every request."""
        self.monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
        self.monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)

    def use_lfs(self, *suffixes: str) -> None:
        """Make the server ask for LFS uploads of files ending with ``suffixes`` (e.g. ``".safetensors"``).

        The installed client uploads LFS files through Xet when ``hf_xet`` is installed, a protocol the
        fake hub does not speak, so this also sets ``HF_HUB_DISABLE_XET`` (read at call time).
        """
        self.server.lfs_suffixes = tuple(suffixes)
        self.monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        self.monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)


def _point_client_at(monkeypatch: pytest.MonkeyPatch, url: str, home: Path) -> None:
    """Set the environment and the ``huggingface_hub`` attributes that captured it at import."""
    cache = home / "hub"
    env = {"HF_ENDPOINT": url, "HF_TOKEN": TOKEN, "HF_HOME": str(home), "HF_HUB_CACHE": str(cache)}
    env.update(HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_OFFLINE="0", HF_XET_CACHE=str(home / "xet"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("HUGGINGFACE_HUB_CACHE", "HF_HUB_DISABLE_IMPLICIT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    patches = {
        "ENDPOINT": url,  # HfApi() and the /resolve URL template default to it
        "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",  # hf_hub_download
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(cache),  # default cache_dir of hf_hub_download / snapshot_download
        "HUGGINGFACE_HUB_CACHE": str(cache),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),  # so that no token saved on this machine leaks in
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json"),  # written by the user-agent builder
        "HF_HUB_OFFLINE": False,  # is_offline_mode() returns this attribute
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": False,
    }
    for name, value in patches.items():
        monkeypatch.setattr(constants, name, value)
    monkeypatch.setattr(_cache_manager, "HF_HUB_CACHE", str(cache))  # imported by name (scan_cache_dir)
    # huggingface_hub.create_repo, upload_folder, ... are methods of this instance, built at import
    monkeypatch.setattr(huggingface_hub.hf_api.api, "endpoint", url)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh fake Hub for one test, with ``huggingface_hub`` pointed at it and at a temporary cache."""
    server = FakeHub().start()
    home = tmp_path / "hf_home"
    _point_client_at(monkeypatch, server.url, home)
    close_session()  # the shared httpx client must not reuse connections of an earlier server
    try:
        yield Hub(
            server,
            server.url,
            TOKEN,
            home,
            home / "hub",
            HfApi(endpoint=server.url, token=TOKEN),
            monkeypatch,
        )
    finally:
        close_session()
        server.close()
    assert not server.errors, "the fake hub crashed:\n" + "\n".join(server.errors)
