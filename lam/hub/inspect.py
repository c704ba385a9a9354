"""What a model is, without reading its code: ``lam info`` and ``lam list``.

:func:`model_info` loads a model (verifying its weights) and gathers what its folder says: descriptor
and cutoff, parameter count, heads with their level of theory, elements, datasets and held-out
metrics, lineage, license and the weights' sha256. :func:`list_models` lists the built-in models and
the lam models in the Hugging Face cache.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ase.data import chemical_symbols
from huggingface_hub import ModelCard, scan_cache_dir
from huggingface_hub.errors import CacheNotFound

from lam.hub.card import CARD_FILE, read_lineage
from lam.hub.models import builtin_models, load_model, parse_model_ref, resolve_folder
from lam.model.lam import CONFIG_FILE, LAM, WEIGHTS_FILE

# reports a workflow leaves next to the model, and where each keeps per-head held-out metrics
METRIC_REPORTS = {"metrics.json": "heads", "finetune.json": "test"}


def held_out_metrics(folder: Path) -> dict[str, dict[str, Any]]:
    """Head -> held-out metrics from the folder's report (pretraining's metrics.json, finetune.json)."""
    for name, key in METRIC_REPORTS.items():
        path = folder / name
        if path.is_file():
            return json.loads(path.read_text()).get(key) or {}
    return {}


def card_metadata(folder: Path) -> dict[str, Any]:
    """The YAML metadata of the folder's model card ({} without a card)."""
    path = folder / CARD_FILE
    return ModelCard.load(path).data.to_dict() if path.is_file() else {}


def _head_rows(model: LAM, metrics: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for spec in model.config.heads:
        head_metrics = metrics.get(spec.name, {})
        rows.append({
            "name": spec.name,
            "level_of_theory": spec.level_of_theory,
            "datasets": list(spec.datasets),
            "elements": [chemical_symbols[z] for z in model.head_elements(spec.name)],
            "metrics": {k: v for k, v in head_metrics.items() if isinstance(v, int | float)},
        })
    return rows


def model_info(reference: str) -> dict[str, Any]:
    """Everything ``lam info`` shows about ``reference`` as a JSON-ready dict."""
    folder, ref = resolve_folder(parse_model_ref(reference))
    model = load_model(str(folder))
    metadata = card_metadata(folder)
    descriptor = model.config.descriptor
    return {
        "reference": reference,
        "source": dataclasses.asdict(ref),
        "folder": str(folder),
        "descriptor": {**dataclasses.asdict(descriptor), "cutoff": model.cutoff},
        "parameters": sum(p.numel() for p in model.parameters()),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "heads": _head_rows(model, held_out_metrics(folder)),
        "lineage": read_lineage(folder),
        "license": metadata.get("license"),
        "datasets": metadata.get("datasets"),
        "weights": {
            "file": WEIGHTS_FILE,
            "sha256": model.weights_sha256,
            "verified": model.weights_sha256 is not None,
        },
        "schema_version": model.config.schema_version,
    }


def format_info(info: dict[str, Any]) -> str:
    """The text ``lam info`` prints: one line per part, one or two per head."""
    source = info["source"]
    where = source["location"] + (f"@{source['revision']}" if source["revision"] else "")
    if source["commit"]:
        where += f" (commit {source['commit']})"
    descriptor = info["descriptor"]
    lines = [
        f"model      {info['reference']}: {where}",
        f"descriptor {descriptor['kind']}, cutoff {descriptor['cutoff']} Å, "
        f"{info['parameters']:,} parameters, {info['dtype']}",
        f"weights    {info['weights']['file']} sha256 "
        + (info["weights"]["sha256"] or "(not recorded: an older folder)"),
        f"license    {info['license'] or 'not stated'}",
        f"lineage    {json.dumps(info['lineage']) if info['lineage'] else 'none recorded'}",
        "heads:",
    ]
    for head in info["heads"]:
        metrics = head["metrics"]
        errors = ""
        if "energy_mae_per_atom" in metrics or "force_rmse" in metrics:
            energy, force = metrics.get("energy_mae_per_atom"), metrics.get("force_rmse")
            errors = " held-out" + (f" E MAE {1000 * energy:.1f} meV/atom" if energy is not None else "")
            errors += f", F RMSE {1000 * force:.0f} meV/Å" if force is not None else ""
        lines.append(f"  {head['name']:<26} {head['level_of_theory']:<22} {' '.join(head['elements'])}")
        if errors:
            lines.append(f"  {'':<26}{errors}")
    return "\n".join(lines)


def _cached_lam_models() -> list[dict[str, Any]]:
    """Lam models (a config.json with a descriptor) in the Hugging Face cache, one row per revision."""
    try:
        cache = scan_cache_dir()
    except CacheNotFound:
        return []
    rows = []
    for repo in cache.repos:
        if repo.repo_type != "model":
            continue
        for revision in repo.revisions:
            path = next((f.file_path for f in revision.files if f.file_name == CONFIG_FILE), None)
            config = json.loads(Path(path).read_text()) if path is not None else {}
            if "descriptor" not in config:  # another library's model
                continue
            heads = [h["name"] for h in config.get("heads", [])]
            rows.append({
                "model": repo.repo_id,
                "versions": sorted(revision.refs) or [revision.commit_hash[:12]],
                "commit": revision.commit_hash,
                "heads": heads,
                "size_bytes": revision.size_on_disk,
            })
    return rows


def list_models() -> list[dict[str, Any]]:
    """Built-in models and the lam models in the Hugging Face cache."""
    from lam.model.lam import BUILTIN_DIR

    rows = []
    for name in builtin_models():
        config = json.loads((BUILTIN_DIR / name / CONFIG_FILE).read_text())
        size = sum(p.stat().st_size for p in (BUILTIN_DIR / name).iterdir())
        heads = [h["name"] for h in config.get("heads", [])]
        rows.append({"model": name, "versions": ["built-in"], "commit": None, "heads": heads})
        rows[-1]["size_bytes"] = size
    return rows + _cached_lam_models()
