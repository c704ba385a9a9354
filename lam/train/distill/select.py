"""DP-GEN's selection: label only the explored frames a committee of students disagrees on.

Each candidate frame is scored by the committee's maximum per-atom force deviation (DP-GEN's
``max_devi_f``, computed by :func:`lam.calculator.committee_results`, the code the committee
calculator uses, on batched predictions). Below ``trust_lo`` the students agree: the frame is
already learned and costs no teacher label. Above ``trust_hi`` they disagree so much that the frame
is likely unphysical (a trajectory that left the known region): it is reported, not labelled. In
between it is selected, at most ``max_selected`` per round (a seeded random subset).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import ase
import numpy as np
import torch

from lam.calculator import committee_results
from lam.model.lam import LAM
from lam.predict import iter_results


@dataclass(frozen=True)
class Selection:
    """Indices of candidate frames by verdict, and every frame's maximum force deviation (eV/Å)."""

    accurate: list[int]
    selected: list[int]
    failed: list[int]
    skipped: list[int]  # between the trust levels but over the cap
    deviations: list[float]

    by: str = "committee"  # "all": no committee scored the frames, every one is labelled

    @classmethod
    def everything(cls, n_frames: int) -> Selection:
        """Every one of ``n_frames`` candidates selected, unscored (no committee, or its first iteration)."""
        return cls([], list(range(n_frames)), [], [], [], by="all")

    def counts(self) -> dict[str, int | float | str]:
        """Counts and fractions of the candidates, for the report."""
        n = len(self.accurate) + len(self.selected) + len(self.failed) + len(self.skipped)
        total = max(n, 1)
        return {
            "by": self.by,
            "candidates": n,
            "accurate": len(self.accurate),
            "selected": len(self.selected),
            "failed": len(self.failed),
            "over_cap": len(self.skipped),
            "accurate_fraction": len(self.accurate) / total,
            "selected_fraction": len(self.selected) / total,
            "failed_fraction": len(self.failed) / total,
            # eV/Å: where the trust levels fall among this iteration's frames (to set them by hand)
            "deviation_percentiles": {str(q): float(np.percentile(self.deviations, q)) for q in (10, 50, 90)}
            if self.deviations else None,
        }


def select(
    deviations: Sequence[float], trust_lo: float, trust_hi: float, max_selected: int, seed: int
) -> Selection:
    """Sort frames by deviation into accurate / selected / failed (see the module docstring).

    Args:
        deviations: maximum per-atom force deviation of each candidate, eV/Å.
        trust_lo: below this a frame is learned.
        trust_hi: above this a frame is failed.
        max_selected: cap on selected frames (0: no cap); the rest between the levels are skipped.
        seed: seed of the subset kept under the cap.
    """
    if not 0.0 <= trust_lo < trust_hi:
        raise ValueError(f"distill: need 0 <= trust_lo < trust_hi, got {trust_lo} and {trust_hi}")
    values = np.asarray(deviations, dtype=float)
    accurate = np.flatnonzero(values < trust_lo)
    failed = np.flatnonzero(values > trust_hi)
    between = np.flatnonzero((values >= trust_lo) & (values <= trust_hi))
    kept = between
    if max_selected and len(between) > max_selected:
        kept = np.sort(np.random.default_rng(seed).choice(between, max_selected, replace=False))
    skipped = np.setdiff1d(between, kept)
    as_list = lambda a: [int(i) for i in a]  # noqa: E731
    return Selection(as_list(accurate), as_list(kept), as_list(failed), as_list(skipped), values.tolist())


def committee_deviations(
    frames: Sequence[ase.Atoms], members: Sequence[LAM], head: str, dtype: str
) -> list[float]:
    """Each frame's maximum per-atom force deviation over the committee ``members`` (eV/Å).

    Each member predicts all frames in batches (the package's predict loop); the deviation is the
    committee calculator's own (:func:`~lam.calculator.committee_results`).
    """
    torch_dtype = getattr(torch, dtype)
    # copies: inference mode freezes the weights, and the members train on
    per_member = [
        list(iter_results(copy.deepcopy(m).to(torch_dtype).for_inference(), frames, head, stress=False))
        for m in members
    ]
    return [
        float(committee_results([results[i] for results in per_member])["forces_deviation_max"])
        for i in range(len(frames))
    ]
