"""Resolve a model reference (built-in name, local folder, or Hub id with revision) to a folder and load it.

A Hub model is downloaded whole (config, weights, card, reports) into the Hugging Face cache with
``snapshot_download``, which honours ``HF_ENDPOINT``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE``; the folder
it returns is named after the commit the revision resolved to. Hub failures become one sentence
naming the model, the revision and what to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from lam._version import __version__
from lam.model.lam import BUILTIN_DIR, CONFIG_FILE, LAM


@dataclass(frozen=True)
class ModelRef:
    """Where a model comes from: its lineage entry in a derived model's card and config.

    Attributes:
        kind: ``builtin``, ``local`` or ``hub``.
        location: folder path or Hub repo id.
        revision: the revision asked for (tag, branch or commit), Hub only.
        commit: the commit the revision resolved to, once the model was fetched (Hub only).
    """

    kind: str
    location: str
    revision: str | None = None
    commit: str | None = None

    def describe(self) -> str:
        """Human-readable ``id@revision``."""
        return self.location + (f"@{self.revision}" if self.revision else "")


def builtin_models() -> list[str]:
    """Names of the models shipped inside the package."""
    if not BUILTIN_DIR.is_dir():
        return []
    return sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / CONFIG_FILE).is_file())


def parse_model_ref(reference: str) -> ModelRef:
    """Parse ``lam-mini``, ``./my_model``, ``org/name`` or ``org/name@v1.0`` (tag, branch or commit)."""
    if reference in builtin_models():  # pinned by the lam release that ships it
        return ModelRef("builtin", str(BUILTIN_DIR / reference), revision=f"lam {__version__}")
    if Path(reference).expanduser().is_dir():
        return ModelRef("local", str(Path(reference).expanduser().resolve()))
    repo_id, _, revision = reference.partition("@")
    if repo_id.count("/") != 1 or repo_id.startswith((".", "/")) or Path(repo_id).suffix:
        raise ValueError(
            f"model {reference!r} is neither a built-in model ({builtin_models()}), an existing folder, "
            "nor a Hub id of the form org/name[@revision]"
        )
    return ModelRef("hub", repo_id, revision or None)


def _hub_error(ref: ModelRef, error: Exception) -> ValueError:
    """One sentence for a failed download: which model, which revision, what to do."""
    name = ref.describe()
    if isinstance(error, GatedRepoError):
        return ValueError(f"model {name} is gated: accept its terms on the Hub and pass a token (HF_TOKEN)")
    if isinstance(error, RevisionNotFoundError):
        return ValueError(f"model {ref.location} has no revision {ref.revision!r} (a tag, branch or commit)")
    if isinstance(error, RepositoryNotFoundError):
        return ValueError(
            f"model {ref.location} was not found on {constants.ENDPOINT} (or it is private and no token "
            "was given: set HF_TOKEN or log in with `hf auth login`)"
        )
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return ValueError(
            f"model {name} is not in the Hugging Face cache and HF_HUB_OFFLINE is set: run "
            f"`lam pull {name}` on a machine with network, or unset HF_HUB_OFFLINE"
        )
    return ValueError(f"model {name} could not be downloaded from {constants.ENDPOINT}: {error}")


def resolve_folder(
    ref: ModelRef, token: str | None = None, cache_dir: str | None = None, local_files_only: bool = False
) -> tuple[Path, ModelRef]:
    """The folder holding ``ref`` (for a Hub id: downloaded whole into the cache) and ``ref``.

    For a Hub id the returned ref carries the commit the revision resolved to.
    """
    if ref.kind != "hub":
        return Path(ref.location), ref
    try:
        folder = snapshot_download(
            ref.location,
            revision=ref.revision,
            token=token,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
        )
    except (RepositoryNotFoundError, RevisionNotFoundError, LocalEntryNotFoundError, OSError) as error:
        raise _hub_error(ref, error) from None
    return Path(folder), replace(ref, commit=Path(folder).name)


def load_model(
    reference: str,
    local_files_only: bool = False,
    map_location: str = "cpu",
    cache_dir: str | None = None,
    token: str | None = None,
    revision: str | None = None,
) -> LAM:
    """Load a model by reference; the weights are checked against their recorded sha256.

    ``revision`` is the same as ``@revision`` in the reference. With ``HF_HUB_OFFLINE=1`` (or
    ``local_files_only``) a Hub id is served from the cache only, at
    the revision it was pinned to (tag, branch or commit). ``model.source`` records the reference and,
    for a Hub model, the commit it resolved to.
    """
    ref = parse_model_ref(reference)
    if revision is not None:
        if ref.kind != "hub" or ref.revision not in (None, revision):
            raise ValueError(f"revision={revision!r} needs a Hub id without @revision, not {reference!r}")
        ref = replace(ref, revision=revision)
    folder, ref = resolve_folder(ref, token, cache_dir, local_files_only)
    model = LAM.from_pretrained(str(folder), map_location=map_location)
    model.source = {"kind": ref.kind, "location": ref.location, "revision": ref.revision}
    model.source["commit"] = ref.commit
    return model


def load_model_and_ref(reference: str, **kwargs: object) -> tuple[LAM, ModelRef]:
    """:func:`load_model` and the parent reference with its resolved commit (for lineage)."""
    model = load_model(reference, **kwargs)
    ref = replace(parse_model_ref(reference), commit=model.source.get("commit"))
    return model, ref
