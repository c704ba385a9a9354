"""Round checkpoints of ``lam distill``: a killed run resumes after its last complete round.

After every round the run folder gets ``rounds/round_K/``: each committee member's weights
(``member_I.safetensors``) and config (``member_I.json``), the teacher-labelled training and held-out
frames so far (extxyz) and the round records (``records.json``). The folder is written under a temporary name and renamed when
complete, so a kill leaves either the previous rounds or the new one whole. Every round draws its
seeds from its index and starts a fresh optimiser from the saved weights, so a resumed run ends with
the weights of an uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import ase.io
from safetensors.torch import load_file, save_file

from lam.model.config import LAMConfig
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
        tensors = {k: v.detach().contiguous().cpu() for k, v in member.state_dict().items()}
        save_file(tensors, staging / f"member_{index}.safetensors")
        # the config too: fitting to the first labels changes it (the student's neighbour normaliser)
        (staging / f"member_{index}.json").write_text(json.dumps(member.config.to_dict(), indent=1) + "\n")
    ase.io.write(staging / "train.extxyz", train_frames, format="extxyz")
    ase.io.write(staging / "holdout.extxyz", holdout, format="extxyz")
    (staging / "records.json").write_text(json.dumps(records, indent=1) + "\n")
    shutil.rmtree(final, ignore_errors=True)  # only when a run repeats a round it had finished
    staging.rename(final)
    return _read_frames(final)


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
    restored = []
    for index, member in enumerate(members):
        config = LAMConfig.from_dict(json.loads((folder / f"member_{index}.json").read_text()))
        model = LAM(config).to(next(member.parameters()).dtype)
        model.load_state_dict(load_file(folder / f"member_{index}.safetensors"))
        restored.append(model)
    records = json.loads((folder / "records.json").read_text())
    return restored, *_read_frames(folder), records
