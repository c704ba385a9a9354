"""What every workflow writes into a model folder, in one place: refusal to overwrite, and reports.

Fine-tuning, distillation, pretraining's export and ``lam change-bias`` all write a model folder
(``config.json``, ``model.safetensors``, ``README.md``) plus a JSON report; they refuse a folder that
already holds any of those unless the user asked to overwrite it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from lam.model.lam import CONFIG_FILE, WEIGHTS_FILE
from lam.model.serialization import atomic_write


def refuse_existing_model(out: Path, overwrite: bool) -> None:
    """Raise ``FileExistsError`` unless ``out`` is absent or an empty folder, or ``overwrite`` is set.

    Any file counts, a user's notes as much as an earlier model: lam never writes into a folder that
    holds something unless asked. With ``overwrite`` a workflow replaces its own files and leaves the
    others as they are.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file; the output must be a folder")
    if overwrite or not out.is_dir():
        return
    held = sorted(path.name for path in out.iterdir())
    if held:
        shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
        kind = "a model" if {CONFIG_FILE, WEIGHTS_FILE} & set(held) else "files"
        raise FileExistsError(
            f"{out} already holds {kind} ({shown}); pass --overwrite to write into it (lam replaces only "
            "its own files), or choose another --out"
        )


def json_ready(options: Any) -> dict[str, Any]:
    """A workflow's options dataclass as a JSON-ready dict (paths as strings, nested options as dicts)."""
    return json.loads(json.dumps(dataclasses.asdict(options), default=str))


def write_json(path: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as indented JSON; a kill leaves the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(path, lambda temporary: Path(temporary).write_text(text))
    return path
