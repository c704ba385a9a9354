"""``lam data generate | label | stats``: generated datasets, reference labelling and statistics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal


def generate(
    recipe: str,
    *,
    out: Path,
    n_frames: int | None = None,
    seed: int = 0,
    size: int | None = None,
    calculator: str | None = None,
    sampling: str | None = None,
    name: str | None = None,
    layout: Literal["training", "extxyz"] = "training",
    overwrite: bool = False,
) -> Path:
    """Generate a small labelled dataset with a seeded recipe.

    Writes OUT as our training format (or one xz-compressed extxyz file) with OUT/<name>.yaml (registry
    card), OUT/PROVENANCE.md and the cached statistics (OUT/stats.json for the training layout).

    Args:
        recipe: emt-bulk, xtb-molecules, emt-slabs, pyscf-small or xtb-refractory.
        out: output directory; an existing non-empty one is refused unless --overwrite true.
        n_frames: number of frames (default: the recipe's small default).
        seed: random seed; the same seed gives identical frames.
        size: the recipe's size knob (supercell repetitions, or largest molecule in atoms).
        calculator: labeller spec (emt, gfn2-xtb, gfn1-xtb, pyscf:<xc>/<basis>); default: the recipe's.
        sampling: xtb-molecules only: md, normal-modes or mixed (default).
        name: dataset / head name (default: the recipe's, e.g. emt_bulk_alloys).
        layout: "training" (Arrow training format) or "extxyz" (<name>.extxyz.xz).
        overwrite: replace an existing generated set at OUT.
    """
    import inspect
    from dataclasses import replace

    from lam.data.generate import get_recipe
    from lam.data.generate.publish import write_generated

    make = get_recipe(recipe)
    options = {"n_frames": n_frames, "size": size, "calculator": calculator, "sampling": sampling}
    chosen = {key: value for key, value in options.items() if value is not None}  # else: recipe defaults
    unknown = set(chosen) - set(inspect.signature(make).parameters)
    if unknown:
        raise ValueError(f"recipe '{recipe}' has no option {', '.join(sorted(unknown))}")
    generated = make(seed=seed, progress=True, **chosen)
    if name is not None:
        generated = replace(generated, name=name)
    return write_generated(generated, out, layout=layout, overwrite=overwrite)


def label(file: Path, *, calculator: str, out: Path, head: str = "default", overwrite: bool = False) -> Path:
    """Label every frame of FILE with a reference calculator and write them to OUT.

    Args:
        file: any input read_frames understands (extxyz, .db, deepmd dir, training dir, ...).
        calculator: labeller spec: emt, gfn2-xtb, gfn1-xtb or pyscf:<xc>/<basis> (e.g. pyscf:pbe/sto-3g).
        out: output path; the format follows its name (extxyz, .db, training dir, ...).
        head: head name written for frames that carry none (training format).
        overwrite: replace an existing OUT.
    """
    from lam.data.labelers import label_frames
    from lam.data.readers import read_frames
    from lam.data.writers import write_frames

    out = Path(out)
    if out.exists() and not overwrite:  # refuse before spending time on the labels
        raise FileExistsError(f"{out} exists; pass --overwrite true to replace it")
    frames = label_frames(read_frames(file), calculator)
    write_frames(frames, out, overwrite=overwrite, head=head)
    print(f"labelled {len(frames)} frames of {file} with {calculator} -> {out}")
    return out


def stats(source: str, *, cutoff: float = 6.0, ridge: float = 0.0) -> dict:
    """Print dataset statistics: frames, atoms, elements, energy references, force RMS, neighbours.

    Results are cached as stats.json next to the data and recomputed when the data checksum changes.

    Args:
        source: a data path (file or directory read_frames understands) or a registry dataset name.
        cutoff: neighbour-count cutoff, Å.
        ridge: optional ridge strength for the energy-reference fit (0 = least squares).
    """
    from lam.data.statistics import cached_statistics

    path = Path(source)
    if path.exists():
        result = cached_statistics(path, cutoff=cutoff, ridge=ridge, default_head=path.name.split(".")[0])
    else:
        result = _registered_statistics(source, cutoff, ridge)
    print(json.dumps(result, indent=2))
    return result


def _registered_statistics(name: str, cutoff: float, ridge: float) -> dict:
    """Statistics of a registry dataset, cached next to its converted copy."""
    from lam.data.registry import get_card, load_registered
    from lam.data.statistics import cached_statistics

    card = get_card(name)
    dataset = load_registered(name)
    data_dir = Path(dataset.cache_files[0]["filename"]).parent
    return cached_statistics(
        data_dir, frames=dataset, cutoff=cutoff, ridge=ridge, default_head=card.default_head
    )


COMMANDS = {"generate": generate, "label": label, "stats": stats}
