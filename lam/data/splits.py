"""Held-out frames that represent every group of a dataset (its ``config_type``) in proportion.

Curated training sets (SNAP's Ta, mlearn, extxyz files written by fitting codes) label each frame
with the kind of structure it is: elastic scans, surfaces, liquid... A plain random holdout of a few
percent can take most of a rare group and leave none to train on: Ta's random 60-frame test split
held two of its three liquid frames, which then carried 87-93% of the squared force error of the
models checked.
"""

from __future__ import annotations

from collections.abc import Sequence

import ase
import numpy as np


def frame_groups(frames: Sequence[ase.Atoms]) -> list[str] | None:
    """Each frame's ``info["config_type"]``, or None unless every frame has one."""
    groups = [atoms.info.get("config_type") for atoms in frames]
    return None if not groups or None in groups else [str(g) for g in groups]


def stratified_holdout(groups: Sequence[str], n_held: int, seed: int) -> np.ndarray:
    """Indices of ``n_held`` frames, each group represented in proportion to its size (within one frame).

    Systematic sampling with a random start over the frames sorted by group and shuffled within it.
    The indices come sorted by group: shuffle them before cutting them into several sets.
    """
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(groups))
    by_group = shuffled[np.argsort([groups[i] for i in shuffled], kind="stable")]
    return by_group[((np.arange(n_held) + rng.random()) * len(groups) / n_held).astype(int)]
