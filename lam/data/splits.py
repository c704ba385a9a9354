"""Seeded train/validation/test splits whose held-out frames represent every ``config_type``.

Curated training sets (SNAP's Ta, mlearn, extxyz files written by fitting codes) label each frame
with the kind of structure it is: elastic scans, surfaces, liquid... A plain random holdout of a few
percent can take most of a rare group and leave none to train on: Ta's random 60-frame test split
held two of its three liquid frames, which then carried 87-93% of the squared force error of the
models checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass
class Split:
    """Train / validation / test frames."""

    train: list[ase.Atoms]
    val: list[ase.Atoms]
    test: list[ase.Atoms]

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(train, val, test) frame counts."""
        return len(self.train), len(self.val), len(self.test)


def split_frames(frames: Sequence[ase.Atoms], val_fraction: float, test_fraction: float, seed: int) -> Split:
    """Seeded random split; validation and test get at least one frame when their fraction is > 0.

    When every frame has an ``info["config_type"]``, validation and test together hold each type in
    proportion to its size (:func:`stratified_holdout`).
    """
    n = len(frames)
    n_val = max(1, round(val_fraction * n)) if val_fraction > 0 else 0
    n_test = max(1, round(test_fraction * n)) if test_fraction > 0 else 0
    if n - n_val - n_test < 1:
        raise ValueError(
            f"{n} frames cannot be split into train/val/test ({val_fraction=}, {test_fraction=}); "
            "give more frames or smaller fractions"
        )
    rng = np.random.default_rng(seed)
    groups = frame_groups(frames)
    if groups is None or n_val + n_test == 0:
        order = rng.permutation(n)
    else:  # validation and test together hold every config_type in proportion
        held = rng.permutation(stratified_holdout(groups, n_val + n_test, seed))
        order = np.concatenate([held, rng.permutation(np.setdiff1d(np.arange(n), held))])

    def pick(indices: np.ndarray) -> list[ase.Atoms]:
        return [frames[i] for i in indices]

    return Split(pick(order[n_val + n_test :]), pick(order[:n_val]), pick(order[n_val : n_val + n_test]))
