"""The committee as an ensemble model: every member saved as a model folder, and their mean's errors.

DP-GEN keeps only the students' disagreement; a user who wants the committee's mean prediction and its
uncertainty in production (``LAMCalculator([member folders])`` averages the members and reports
``forces_deviation``) asks for ``--ensemble``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ase
import numpy as np

from lam.model.lam import LAM
from lam.train.evaluate import Parity, error_metrics, predict

COMMITTEE_DIR = "committee"


def mean_parity(members: Sequence[LAM], frames: Sequence[ase.Atoms], head: str) -> Parity:
    """Labels of ``frames`` against the members' mean prediction (energy, forces, stress)."""
    parities = [predict(member, frames, head) for member in members]
    mean = lambda name: np.mean([getattr(p, name) for p in parities], axis=0)  # noqa: E731
    return dataclasses.replace(parities[0], energy_pred=mean("energy_pred"), forces_pred=mean("forces_pred"),
                               stress_pred=mean("stress_pred"))


def save_ensemble(
    members: Sequence[LAM], holdout: Sequence[ase.Atoms], test_frames: Sequence[ase.Atoms] | None, head: str,
    out: Path,
) -> dict[str, Any]:
    """Save every member under ``out/committee/member_K``; the mean's errors on held-out and test frames."""
    folders = []
    for index, member in enumerate(members):
        folder = out / COMMITTEE_DIR / f"member_{index}"
        member.save_pretrained(folder)
        folders.append(folder.relative_to(out).as_posix())
    return {
        "members": folders,
        "holdout": error_metrics(mean_parity(members, holdout, head)),  # student mean vs teacher
        "test_data": error_metrics(mean_parity(members, test_frames, head)) if test_frames else None,
    }
