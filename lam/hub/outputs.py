"""What every workflow writes into a model folder, in one place: refusal to overwrite, and reports.

Fine-tuning, distillation, pretraining's export and ``lam change-bias`` all write a model folder
(``config.json``, ``model.safetensors``, ``README.md``) plus a JSON report; they refuse a folder that
already holds any of those unless the user asked to overwrite it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lam.hub.card import CARD_FILE
from lam.model.lam import CONFIG_FILE, WEIGHTS_FILE

MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE)


def refuse_existing_model(out: Path, overwrite: bool, reports: Iterable[str] = ()) -> None:
    """Raise ``FileExistsError`` when ``out`` holds a model file or a workflow report, unless ``overwrite``.

    Args:
        out: the folder a workflow is about to write.
        overwrite: the user asked to replace what is there.
        reports: the workflow's own report files (``finetune.json``, ``distill.json``...).
    """
    held = [name for name in (*MODEL_FILES, *reports) if (Path(out) / name).exists()]
    if held and not overwrite:
        raise FileExistsError(
            f"{out} already holds {', '.join(held)}; pass --overwrite to replace it, or choose another --out"
        )


def json_ready(options: Any) -> dict[str, Any]:
    """A workflow's options dataclass as a JSON-ready dict (paths as strings, nested options as dicts)."""
    return json.loads(json.dumps(dataclasses.asdict(options), default=str))


def write_json(path: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as indented JSON; a kill leaves the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
    os.replace(handle.name, path)
    return path
