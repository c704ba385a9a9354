"""Teacher labels through Lightning's predict loop, on one device or spread over several processes.

The frames are packed into groups of at most ``batch_atoms`` atoms (the package's predict loop,
:func:`lam.predict.frame_groups` and :func:`lam.predict.batch_results`); each group is one item of a
dataset that Lightning shards over its ranks. With ``devices > 1`` the ranks are spawned from this
process (``ddp_spawn``: the distillation loop itself stays one process), each writes its labels to a
NumPy file (no pickles), and this process gathers them by frame index. Lightning pads the last shard
with repeated groups; gathering by index drops the repeats.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ase
import lightning.pytorch as pl
import numpy as np
import torch
from ase.calculators.singlepoint import SinglePointCalculator
from lightning.pytorch.callbacks import BasePredictionWriter

from lam.hub.coverage import check_elements
from lam.model.lam import LAM
from lam.predict import batch_results, frame_groups
from lam.train.trainer import quiet_lightning


class FrameGroups(torch.utils.data.Dataset):
    """Groups of frames (at most ``batch_atoms`` atoms each) with the index of their first frame."""

    def __init__(self, frames: Sequence[ase.Atoms], batch_atoms: int) -> None:
        self.groups = list(frame_groups(frames, batch_atoms))

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, index: int) -> tuple[int, list[ase.Atoms]]:
        return self.groups[index]


def _one_group(items: list[tuple[int, list[ase.Atoms]]]) -> tuple[int, list[ase.Atoms]]:
    return items[0]  # batch_size 1: each dataset item is already a batch


class LabelTask(pl.LightningModule):
    """Energies, forces and (for bulk cells) stresses of frame groups, by the wrapped model."""

    def __init__(self, model: LAM, head: str) -> None:
        super().__init__()
        self.model, self.head = model, head

    def predict_step(self, group: tuple[int, list[ase.Atoms]], batch_idx: int) -> tuple[int, list[dict]]:
        """``(index of the group's first frame, one ASE-style results dict per frame)``."""
        first, frames = group
        with torch.enable_grad():  # forces are derivatives
            return first, batch_results(frames, first, self.model, self.head, self.device, None)


class GatherToFiles(BasePredictionWriter):
    """Each rank writes the labels it computed to ``folder/rank_R.npz``, keyed by frame index."""

    def __init__(self, folder: Path) -> None:
        super().__init__(write_interval="epoch")
        self.folder = folder

    def write_on_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Any,
                           batch_indices: Any) -> None:
        """Write this rank's labels: frame index, energy, atom count, forces, stress (NaN: none)."""
        per_frame = [(first + k, r) for first, results in predictions for k, r in enumerate(results)]
        stress = [r.get("stress", np.full(6, np.nan)) for _, r in per_frame]
        np.savez(self.folder / f"rank_{trainer.global_rank}.npz",
                 index=np.array([i for i, _ in per_frame], dtype=np.int64),
                 energy=np.array([r["energy"] for _, r in per_frame], dtype=np.float64),
                 n_atoms=np.array([len(r["forces"]) for _, r in per_frame], dtype=np.int64),
                 forces=np.concatenate([r["forces"] for _, r in per_frame]).reshape(-1, 3),
                 stress=np.array(stress, dtype=np.float64).reshape(-1, 6))


def _read_labels(folder: Path, n_frames: int) -> list[dict[str, Any]]:
    """The labels of every frame, gathered from the ranks' files (repeats from padding dropped)."""
    labels: dict[int, dict[str, Any]] = {}
    for path in sorted(folder.glob("rank_*.npz")):
        with np.load(path, allow_pickle=False) as data:
            bounds = np.cumsum([0, *data["n_atoms"]])
            for k, index in enumerate(data["index"]):
                forces = data["forces"][bounds[k] : bounds[k + 1]]
                result = {"energy": float(data["energy"][k]), "forces": forces}
                if not np.isnan(data["stress"][k]).any():
                    result["stress"] = data["stress"][k]
                labels[int(index)] = result
    missing = sorted(set(range(n_frames)) - set(labels))
    if missing:
        raise RuntimeError(f"teacher labelling: no rank returned frames {missing[:5]}")
    return [labels[i] for i in range(n_frames)]


def label_with_lightning(
    frames: Sequence[ase.Atoms], model: LAM, head: str, devices: int = 1, accelerator: str | None = None,
    batch_atoms: int = 2000, allow_unseen_elements: bool = False,
) -> list[ase.Atoms]:
    """Attach ``model``'s energy, forces and (bulk cells) stress to ``frames`` (in place; returned).

    Args:
        frames: unlabelled structures.
        model: the labeller (the teacher).
        head: its head.
        devices: processes (one device each) to spread the frames over; more than 1 spawns them.
        accelerator: Lightning accelerator (None: ``cpu``).
        batch_atoms: atoms per batch at most.
        allow_unseen_elements: label elements the head was not trained on.
    """
    quiet_lightning()
    frames = list(frames)
    for atoms in frames:  # before spawning anything: a wrong element is the user's error
        check_elements(model, head, atoms.numbers, allow_unseen_elements)
    if not frames:
        return frames
    with tempfile.TemporaryDirectory() as tmp:
        # inference_mode off: forces are autograd derivatives
        trainer = pl.Trainer(accelerator=accelerator or "cpu", devices=devices, inference_mode=False,
                             strategy="ddp_spawn" if devices > 1 else "auto", logger=False,
                             enable_progress_bar=False, enable_model_summary=False,
                             callbacks=[GatherToFiles(Path(tmp))])
        loader = torch.utils.data.DataLoader(FrameGroups(frames, batch_atoms), batch_size=1, shuffle=False,
                                             collate_fn=_one_group)
        trainer.predict(LabelTask(model, head), loader, return_predictions=False)
        labels = _read_labels(Path(tmp), len(frames))
    for atoms, result in zip(frames, labels, strict=True):
        atoms.calc = SinglePointCalculator(atoms, **result)
    return frames
