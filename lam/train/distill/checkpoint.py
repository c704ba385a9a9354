"""Checkpoints of ``lam distill``: a killed run resumes at the stage of the round it was in.

After every round the run folder gets ``rounds/round_K/``: each committee member as a model folder
(``member_I/``, written by ``save_pretrained``), the teacher-labelled training and held-out
frames so far (extxyz) and the round records (``records.json``). The folder is written under a
temporary name and renamed when complete, so a kill leaves either the previous rounds or the new one
whole. Within a round, :class:`StageStore` keeps each finished stage (exploration, labelling, each
member's training). Every round draws its seeds from its index and every member starts a fresh
optimiser from the round's starting weights, so a resumed run ends with the weights of an
uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import ase.io

from lam.model.lam import LAM

ROUNDS_DIR = "rounds"


def _round_dir(out: Path, round_index: int) -> Path:
    return out / ROUNDS_DIR / f"round_{round_index}"


def save_round(
    out: Path,
    round_index: int,
    members: list[LAM],
    train_frames: list[ase.Atoms],
    holdout: list[ase.Atoms],
    records: list[dict[str, Any]],
) -> tuple[list, list]:
    """Write round ``round_index``'s state (see the module docstring).

    Returns the frames as read back: the run goes on with them, so that an uninterrupted run trains
    on exactly what a resumed one reads (extxyz keeps 8 decimals).
    """
    final = _round_dir(out, round_index)
    staging = final.with_name(final.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for index, member in enumerate(members):
        # a model folder keeps the config too: fitting to the first labels changes it (neighbour divisor)
        member.save_pretrained(_member_dir(staging, index))
    ase.io.write(staging / "train.extxyz", train_frames, format="extxyz")
    ase.io.write(staging / "holdout.extxyz", holdout, format="extxyz")
    (staging / "records.json").write_text(json.dumps(records, indent=1) + "\n")
    shutil.rmtree(final, ignore_errors=True)  # only when a run repeats a round it had finished
    staging.rename(final)
    shutil.rmtree(StageStore(out, round_index).folder, ignore_errors=True)  # the round is whole now
    return _read_frames(final)


def _member_dir(folder: Path, index: int) -> Path:
    return folder / f"member_{index}"


def _load_member(folder: Path, index: int, like: LAM) -> LAM:
    """Member ``index`` saved as a model folder in ``folder`` (weights checked), in ``like``'s dtype."""
    return LAM.from_pretrained(_member_dir(folder, index)).to(next(like.parameters()).dtype)


class StageStore:
    """The finished stages of the round in progress, so a killed run resumes at the stage it was in.

    ``rounds/round_K.stages/`` holds the explored frames, the teacher-labelled ones (extxyz, with a
    JSON of what the round reports about them) and each committee member once trained. Each file is
    written under a temporary name and renamed, so a kill leaves a stage either whole or absent.
    """

    def __init__(self, out: Path, round_index: int) -> None:
        self.folder = out / ROUNDS_DIR / f"round_{round_index}.stages"

    def frames(self, stage: str) -> tuple[list[ase.Atoms], dict[str, Any]] | None:
        """The frames and notes of a finished stage (``explored``, ``labelled``), or None."""
        path = self.folder / f"{stage}.json"
        if not path.is_file():  # written last: without it the stage did not finish
            return None
        notes = json.loads(path.read_text())
        frames = list(ase.io.read(self.folder / f"{stage}.extxyz", index=":")) if notes["n_frames"] else []
        return frames, notes

    def save_frames(self, stage: str, frames: list[ase.Atoms], notes: dict[str, Any]) -> list[ase.Atoms]:
        """Store a finished stage; returns the frames as read back (what a resumed run will read)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if frames:
            ase.io.write(self.folder / f"{stage}.partial.extxyz", frames, format="extxyz")
            (self.folder / f"{stage}.partial.extxyz").rename(self.folder / f"{stage}.extxyz")
        staging = self.folder / f"{stage}.partial.json"
        staging.write_text(json.dumps({**notes, "n_frames": len(frames)}, indent=1) + "\n")
        staging.rename(self.folder / f"{stage}.json")
        return self.frames(stage)[0]

    def save_member(self, index: int, member: LAM) -> None:
        """Store a trained committee member (a model folder, renamed into place once complete)."""
        staging = self.folder / f"partial_member_{index}"
        shutil.rmtree(staging, ignore_errors=True)
        member.save_pretrained(staging)
        staging.rename(_member_dir(self.folder, index))

    def member(self, index: int, like: LAM) -> LAM | None:
        """Trained member ``index`` of this round, or None when its training had not finished."""
        if not _member_dir(self.folder, index).is_dir():
            return None
        return _load_member(self.folder, index, like)


def _read_frames(folder: Path) -> tuple[list, list]:
    return list(ase.io.read(folder / "train.extxyz", index=":")), list(
        ase.io.read(folder / "holdout.extxyz", index=":")
    )


def last_round(out: Path) -> int:
    """The last complete round saved in ``out`` (0: none)."""
    done = [
        int(p.name.removeprefix("round_"))
        for p in (out / ROUNDS_DIR).glob("round_*")
        if p.is_dir() and p.name.removeprefix("round_").isdigit()
    ]
    return max(done, default=0)


def load_round(
    out: Path, round_index: int, members: list[LAM]
) -> tuple[list[LAM], list, list, list[dict[str, Any]]]:
    """The members as saved (config and weights, in the dtype of ``members``), the frames and records.

    Returns:
        (members, training frames, held-out frames, records).
    """
    folder = _round_dir(out, round_index)
    restored = [_load_member(folder, index, member) for index, member in enumerate(members)]
    records = json.loads((folder / "records.json").read_text())
    return restored, *_read_frames(folder), records
