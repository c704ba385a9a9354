"""Resolve a model reference (built-in name, local folder, or Hub id with revision) and load it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lam.model.lam import LAM

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "resources" / "models"


@dataclass(frozen=True)
class ModelRef:
    """Where a model comes from: its lineage entry in a fine-tuned model's card and config."""

    kind: str  # "builtin", "local" or "hub"
    location: str  # folder path or Hub repo id
    revision: str | None = None

    def describe(self) -> str:
        """Human-readable ``id@revision``."""
        return self.location + (f"@{self.revision}" if self.revision else "")


def builtin_models() -> list[str]:
    """Names of the models shipped inside the package."""
    if not BUILTIN_DIR.is_dir():
        return []
    return sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / "config.json").is_file())


def parse_model_ref(reference: str) -> ModelRef:
    """Parse ``lam-mini``, ``./my_model``, ``org/name`` or ``org/name@v1.0`` (tag, branch or commit)."""
    if reference in builtin_models():
        return ModelRef("builtin", str(BUILTIN_DIR / reference))
    if Path(reference).expanduser().is_dir():
        return ModelRef("local", str(Path(reference).expanduser().resolve()))
    repo_id, _, revision = reference.partition("@")
    if repo_id.count("/") != 1 or repo_id.startswith((".", "/")):
        raise ValueError(
            f"model {reference!r} is neither a built-in model ({builtin_models()}), an existing folder, "
            "nor a Hub id of the form org/name[@revision]"
        )
    return ModelRef("hub", repo_id, revision or None)


def load_model(
    reference: str, local_files_only: bool = False, map_location: str = "cpu", cache_dir: str | None = None
) -> LAM:
    """Load a model by reference; Hub downloads go through the Hugging Face cache.

    With ``HF_HUB_OFFLINE=1`` (or ``local_files_only``) a Hub id is served from the cache only,
    at the revision it was pinned to (tag, branch or commit).
    """
    ref = parse_model_ref(reference)
    if ref.kind != "hub":
        return LAM.from_pretrained(ref.location, map_location=map_location)
    return LAM.from_pretrained(
        ref.location,
        revision=ref.revision,
        local_files_only=local_files_only,
        map_location=map_location,
        cache_dir=cache_dir,
    )
