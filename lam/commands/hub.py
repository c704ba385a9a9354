"""``lam list | info | predict | push | pull``: discover, inspect, serve and publish models."""

from __future__ import annotations

import json as json_module
from pathlib import Path


def list_models(json: bool = False) -> list[dict]:
    """List the built-in models and the lam models in the Hugging Face cache (versions, heads, size).

    Args:
        json: print one JSON list instead of a table.
    """
    from lam.hub.inspect import list_models as collect

    rows = collect()
    if json:
        print(json_module.dumps(rows, indent=2))
        return rows
    print(f"{'model':<40} {'versions':<24} {'heads':>5} {'size':>9}")
    for row in rows:
        versions = ", ".join(row["versions"])
        print(f"{row['model']:<40} {versions:<24} {len(row['heads']):>5} {row['size_bytes'] / 1e6:>7.1f}MB")
    return rows


def info(model: str, json: bool = False) -> dict:
    """Describe a model: descriptor, heads, elements, held-out errors, lineage and weights hash.

    Loading verifies the weights against the sha256 their config.json records.

    Args:
        model: built-in name, local folder or Hub id org/name[@revision].
        json: print one JSON object.
    """
    from lam.hub.inspect import format_info, model_info

    result = model_info(model)
    print(json_module.dumps(result, indent=2) if json else format_info(result))
    return result


def predict(
    model: str,
    data: str,
    output: Path | None = None,
    head: str | None = None,
    batch_atoms: int = 2000,
    overwrite: bool = False,
    allow_unseen_elements: bool = False,
) -> Path:
    """Predict energies, forces, per-atom energies (and stress of periodic frames) for every frame of DATA.

    Frames stream from the file in batches of up to BATCH_ATOMS atoms, so a file larger than memory
    works; OUTPUT (any format ase.io writes, extxyz recommended) appears only once complete.

    Args:
        model: built-in name, local folder or Hub id org/name[@revision].
        data: structures: any file lam data convert reads, or a registered dataset name.
        output: file to write (also -o).
        head: the head to predict with (required for a multi-head model).
        batch_atoms: atoms per batch at most.
        overwrite: replace an existing OUTPUT.
        allow_unseen_elements: predict elements the head was not trained on.
    """
    from lam.hub.serving import predict_file

    if output is None:
        raise ValueError("lam predict needs -o OUTPUT (e.g. predictions.extxyz)")
    count = predict_file(model, data, Path(output), head, batch_atoms, overwrite, allow_unseen_elements)
    print(f"wrote {count} frames to {output}")
    return Path(output)


def push(
    folder: Path,
    repo: str,
    version: str | None = None,
    private: bool = False,
    token: str | None = None,
    message: str | None = None,
) -> str:
    """Publish a model folder as version VERSION of the Hub repository REPO (org/name).

    The folder must load, hold a card and match its recorded weights hash. It is uploaded in one
    commit, which is tagged vX.Y.Z; an existing or lower version is refused.

    Args:
        folder: the model folder.
        repo: Hub repository id org/name (created when missing).
        version: semantic version X.Y.Z.
        private: create the repository private.
        token: Hub token (default: HF_TOKEN or the stored login).
        message: commit message.
    """
    from lam.hub.publish import push as run_push

    if version is None:
        raise ValueError("lam push needs --version X.Y.Z (semantic versioning; tagged vX.Y.Z)")
    published = run_push(folder, repo, version, private, token, message)
    print(f"published {published.repo_id}@{published.tag}: commit {published.commit}\n{published.url}")
    return published.commit


def pull(model: str, out: Path | None = None, token: str | None = None) -> Path:
    """Download a Hub model (org/name[@revision]) into the Hugging Face cache, verified; print its commit.

    Args:
        model: Hub id org/name[@revision].
        out: also copy the model folder here.
        token: Hub token (default: HF_TOKEN or the stored login).
    """
    from lam.hub.publish import pull as run_pull

    folder, commit = run_pull(model, out, token)
    print(f"{model}: commit {commit}, weights verified\n{folder}")
    return folder


COMMANDS = {"list": list_models, "info": info, "predict": predict, "push": push, "pull": pull}
