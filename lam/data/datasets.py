"""``GraphDataset``: training-format rows (or Atoms) to :class:`~lam.data.graph.AtomicGraph`, lazily.

This is the training data pipeline, so a row is read straight from the memory-mapped Arrow table
with zero-copy numpy views (``datasets``' own numpy formatter is ~7x slower and returns float32);
the neighbour list then dominates the cost of a sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import ase
import datasets
import torch

from lam.data.graph import AtomicGraph
from lam.data.training_format import ArrowRows, load_training_dataset


class GraphDataset(torch.utils.data.Dataset):
    """Frames as :class:`~lam.data.graph.AtomicGraph` with neighbour lists at ``cutoff``, built on access.

    Args:
        source: a training-format directory, a loaded ``datasets.Dataset`` with the training schema,
            or a list of ``ase.Atoms`` (labels in their calculators).
        cutoff: neighbour-list cutoff, Å.
        head: head name given to every graph; None keeps each row's own ``head``
            (for Atoms: ``info["head"]``, else ``"default"``).
        dtype: floating dtype of positions, cell and labels.
        cache: keep each graph once built (a fine-tuning set is read for hundreds of steps, and its
            neighbour lists would otherwise be searched again every time a frame is drawn).
    """

    def __init__(
        self,
        source: str | Path | datasets.Dataset | Sequence[ase.Atoms],
        cutoff: float,
        head: str | None = None,
        dtype: torch.dtype = torch.float64,
        cache: bool = False,
    ) -> None:
        self.cutoff = float(cutoff)
        self._cache: dict[int, AtomicGraph] | None = {} if cache else None
        self.head = head
        self.dtype = dtype
        self._atoms: list[ase.Atoms] | None = None
        self._dataset: datasets.Dataset | None = None
        self._rows: ArrowRows | None = None  # built lazily, once per (worker) process
        if isinstance(source, (str, Path)):
            source = load_training_dataset(source)
        if isinstance(source, datasets.Dataset):
            self._dataset = source
        else:
            self._atoms = list(source)

    def __len__(self) -> int:
        return len(self._atoms) if self._atoms is not None else len(self._dataset)

    def __getstate__(self) -> dict:
        # DataLoader workers receive the dataset (memory-mapped by file) and rebuild the row views.
        return {**self.__dict__, "_rows": None}

    def __getitem__(self, index: int) -> AtomicGraph:
        """The graph of frame ``index`` (negative indices count from the end)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"frame index {index} out of range for {n} frames")
        index = index % n
        if self._cache is None:
            return self._build(index)
        if index not in self._cache:
            self._cache[index] = self._build(index)
        return self._cache[index]

    def _build(self, index: int) -> AtomicGraph:
        if self._atoms is not None:
            atoms = self._atoms[index]
            return AtomicGraph.from_atoms(
                atoms,
                self.cutoff,
                head=self.head or atoms.info.get("head", "default"),
                frame_id=atoms.info.get("frame_id", f"#{index}"),
                dtype=self.dtype,
            )
        if self._rows is None:
            # A pyarrow view: zero-copy for a memory-mapped dataset; resolves select()/shuffle() indices.
            self._rows = ArrowRows(self._dataset.with_format("arrow")[:])
        row = self._rows[index]
        del row["config_type"]  # a property of the frame for splitting, not of the graph
        if self.head is not None:
            row["head"] = self.head
        return AtomicGraph.from_arrays(**row, cutoff=self.cutoff, dtype=self.dtype)
