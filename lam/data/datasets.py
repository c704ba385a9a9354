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
import pyarrow as pa
import torch

from lam.data.graph import AtomicGraph
from lam.data.training_format import arrow_row, load_training_dataset


class GraphDataset(torch.utils.data.Dataset):
    """Frames as :class:`~lam.data.graph.AtomicGraph` with neighbour lists at ``cutoff``, built on access.

    Args:
        source: a training-format directory, a loaded ``datasets.Dataset`` with the training schema,
            or a list of ``ase.Atoms`` (labels in their calculators).
        cutoff: neighbour-list cutoff, Å.
        head: head name given to every graph; None keeps each row's own ``head``
            (for Atoms: ``info["head"]``, else ``"default"``).
        dtype: floating dtype of positions, cell and labels.
    """

    def __init__(
        self,
        source: str | Path | datasets.Dataset | Sequence[ase.Atoms],
        cutoff: float,
        head: str | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.cutoff = float(cutoff)
        self.head = head
        self.dtype = dtype
        self._atoms: Sequence[ase.Atoms] | None = None
        self._table: pa.Table | None = None
        if isinstance(source, (str, Path)):
            source = load_training_dataset(source)
        if isinstance(source, datasets.Dataset):
            # A pyarrow table view: zero-copy for a memory-mapped dataset, resolves select()/shuffle().
            self._table = source.with_format("arrow")[:]
        else:
            self._atoms = list(source)

    def __len__(self) -> int:
        return len(self._atoms) if self._atoms is not None else self._table.num_rows

    def __getitem__(self, index: int) -> AtomicGraph:
        """The graph of frame ``index`` (negative indices count from the end)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"frame index {index} out of range for {n} frames")
        index = index % n
        if self._atoms is not None:
            atoms = self._atoms[index]
            head = self.head or atoms.info.get("head", "default")
            return AtomicGraph.from_atoms(
                atoms, self.cutoff, head=head, frame_id=atoms.info.get("frame_id", f"#{index}"), dtype=self.dtype
            )
        return self._row_graph(index)

    def _row_graph(self, index: int) -> AtomicGraph:
        """Build the graph of row ``index`` of the Arrow table."""
        row = arrow_row(self._table, index)
        if self.head is not None:
            row["head"] = self.head
        return AtomicGraph.from_arrays(**row, cutoff=self.cutoff, dtype=self.dtype)
