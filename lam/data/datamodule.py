"""Multi-task data for Lightning: one dataset per fitting head, every batch from a single dataset.

DPA-2 style multi-task training samples one task per step. :class:`MultiTaskBatchSampler` draws, for
optimizer step ``k``, the dataset and its frames from a generator seeded with ``(seed, k)`` only, so
the data order is a pure function of the step: a run resumed from a checkpoint sees exactly the
batches an uninterrupted run would have seen, and all DDP ranks draw the same dataset at each step
(each taking its own slice of a global batch).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import datasets
import lightning.pytorch as pl
import numpy as np
from torch.utils.data import ConcatDataset, DataLoader, Sampler, Subset
from torch_geometric.data import Batch
from torch_geometric.loader.dataloader import Collater

from lam.data.datasets import GraphDataset
from lam.data.sources import Source, load


def dataset_probabilities(
    sizes: Mapping[str, int], temperature: float = 1.0, weights: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Sampling probability of each dataset: ``p ∝ weights`` if given, else ``p ∝ size^(1/temperature)``.

    ``temperature = 1`` samples frames uniformly over all data; larger values flatten towards equal
    probabilities per dataset (small datasets are seen more often).
    """
    if weights is not None:
        missing = sorted(set(sizes) - set(weights))
        unknown = sorted(set(weights) - set(sizes))
        if missing or unknown:
            raise ValueError(
                f"dataset weights: missing {missing}, unknown {unknown}; datasets: {sorted(sizes)}"
            )
        raw = {name: float(weights[name]) for name in sizes}
    else:
        if temperature <= 0:
            raise ValueError(f"sampling temperature must be > 0, got {temperature}")
        raw = {name: float(size) ** (1.0 / temperature) for name, size in sizes.items()}
    if min(raw.values()) < 0 or sum(raw.values()) <= 0:
        raise ValueError(f"dataset weights must be >= 0 with a positive sum, got {raw}")
    total = sum(raw.values())
    return {name: value / total for name, value in raw.items()}


class MultiTaskBatchSampler(Sampler[list[int]]):
    """Index batches into a ``ConcatDataset``; each batch comes from one dataset.

    Args:
        sizes: frames of each dataset, in ``ConcatDataset`` order.
        probabilities: probability of drawing each dataset at a step (same order).
        batch_size: frames per batch on each process.
        steps_per_epoch: batches per epoch (the epoch is only a logging/validation period).
        seed: the data order is a function of ``(seed, step)`` only.
        rank, world_size: DDP process index and count; step ``k`` draws ``batch_size * world_size``
            frames of one dataset and this rank takes every ``world_size``-th of them.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        probabilities: Sequence[float],
        batch_size: int,
        steps_per_epoch: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(sizes) != len(probabilities) or min(sizes) < 1:
            raise ValueError(f"need one probability per non-empty dataset, got sizes {list(sizes)}")
        self.sizes, self.probabilities = list(sizes), np.asarray(probabilities, dtype=np.float64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.batch_size, self.steps_per_epoch, self.seed = batch_size, steps_per_epoch, seed
        self.rank, self.world_size = rank, world_size
        # the optimizer step of the next batch: each pass (an "epoch") continues from it, and a resumed
        # run sets it. Lightning's set_epoch never reaches a batch sampler, so it cannot drive the order.
        self.next_step = 0

    def batch(self, step: int) -> list[int]:
        """The (concatenated-dataset) indices of this rank's batch at optimizer step ``step``."""
        rng = np.random.default_rng([self.seed, step])
        dataset = int(rng.choice(len(self.sizes), p=self.probabilities))
        size, n_global = self.sizes[dataset], self.batch_size * self.world_size
        frames = rng.choice(size, size=n_global, replace=size < n_global)
        return (self.offsets[dataset] + frames[self.rank :: self.world_size]).tolist()

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        start = self.next_step
        end = (start // self.steps_per_epoch + 1) * self.steps_per_epoch  # up to the end of this epoch
        for step in range(start, end):
            self.next_step = step + 1
            yield self.batch(step)


def split_indices(n_frames: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random (train, val) index split; at least one training frame is kept."""
    order = np.random.default_rng(seed).permutation(n_frames)
    n_val = min(int(round(val_fraction * n_frames)), n_frames - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def composition_and_energy(table: Any) -> tuple[list[np.ndarray], np.ndarray]:
    """Atomic numbers per frame and energies (NaN when unlabelled) of a training-format Arrow table."""
    numbers = table.column("atomic_numbers").combine_chunks()
    offsets, values = numbers.offsets.to_numpy(), numbers.flatten().to_numpy()
    per_frame = [values[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    energy = table.column("energy").to_numpy().astype(np.float64)  # nulls become NaN
    return per_frame, energy


def force_rms(table: Any) -> float | None:
    """RMS force component (eV/Å) over the frames of an Arrow table that have forces; None if none has."""
    forces = table.column("forces").combine_chunks().flatten().flatten().to_numpy()
    return float(np.sqrt(np.mean(forces**2))) if forces.size else None


class MultiTaskDataModule(pl.LightningDataModule):
    """Train/validation loaders over several datasets, one fitting head each.

    Args:
        datasets: head name -> data source (a registered dataset name, a training-format directory,
            a file ``read_frames`` reads, a ``datasets.Dataset`` or a list of ``ase.Atoms``). Every
            frame of a source is given that head.
        batch_size: frames per batch and process.
        weights: explicit sampling weights per head; None uses ``temperature``.
        temperature: dataset probability ``∝ size^(1/temperature)`` over training frames.
        val_fraction: fraction of each dataset held out for validation (seeded split).
        seed: seed of the split and of the batch order.
        cutoff: neighbour-list cutoff, Å (at least the model's cutoff).
        steps_per_epoch: batches per epoch (validation period); None: training frames / global batch.
        num_workers: ``DataLoader`` worker processes (neighbour lists are built in them).
        cache_graphs: keep every graph once built (small sets read many times: fine-tuning, distillation).
        val_datasets: validation frames per head given explicitly (fine-tuning's own split); a head
            listed here is not split by ``val_fraction``.
    """

    def __init__(
        self,
        datasets: dict[str, Source],
        batch_size: int = 4,
        weights: dict[str, float] | None = None,
        temperature: float = 1.0,
        val_fraction: float = 0.05,
        seed: int = 0,
        cutoff: float = 6.0,
        steps_per_epoch: int | None = None,
        num_workers: int = 0,
        cache_graphs: bool = False,
        val_datasets: dict[str, Source] | None = None,
    ) -> None:
        super().__init__()
        if not datasets:
            raise ValueError("MultiTaskDataModule needs at least one dataset")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.sources = dict(datasets)
        self.batch_size, self.weights, self.temperature = batch_size, weights, temperature
        self.val_fraction, self.seed, self.cutoff = val_fraction, seed, cutoff
        self.steps_per_epoch, self.num_workers = steps_per_epoch, num_workers
        self.cache_graphs = cache_graphs
        self.val_sources = dict(val_datasets or {})
        self.train_sets: dict[str, datasets.Dataset] = {}
        self.val_sets: dict[str, datasets.Dataset] = {}
        self._resume_step: int | None = None

    @property
    def heads(self) -> list[str]:
        """Head names, in the order of ``datasets``."""
        return list(self.sources)

    def setup(self, stage: str | None = None) -> None:
        """Load every source and split it (idempotent)."""
        if self.train_sets:
            return
        for index, (head, source) in enumerate(self.sources.items()):
            data = load(source)
            if head in self.val_sources:
                self.train_sets[head], self.val_sets[head] = data, load(self.val_sources[head])
                continue
            train, val = split_indices(len(data), self.val_fraction, self.seed + index)
            self.train_sets[head], self.val_sets[head] = data.select(train), data.select(val)

    def probabilities(self) -> dict[str, float]:
        """Sampling probability of each head's dataset at a training step."""
        self.setup()
        sizes = {head: len(data) for head, data in self.train_sets.items()}
        return dataset_probabilities(sizes, self.temperature, self.weights)

    def _graphs(self, data: datasets.Dataset, head: str) -> GraphDataset:
        return GraphDataset(data, cutoff=self.cutoff, head=head, cache=self.cache_graphs)

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        """Homogeneous-head batches; order reproducible from the step (see module docstring)."""
        self.setup()
        rank, world = self._rank_world()
        heads = self.heads
        sizes = [len(self.train_sets[h]) for h in heads]
        steps = self.steps_per_epoch or max(sum(sizes) // (self.batch_size * world), 1)
        probs = self.probabilities()
        sampler = MultiTaskBatchSampler(
            sizes, [probs[h] for h in heads], self.batch_size, steps, self.seed, rank, world
        )
        sampler.next_step = self._resume_step or 0
        self._resume_step = None
        concat = ConcatDataset([self._graphs(self.train_sets[h], h) for h in heads])
        return DataLoader(
            concat,
            batch_sampler=sampler,
            collate_fn=Collater(concat),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> list[DataLoader]:
        """One loader per head with held-out frames (each rank takes every world_size-th frame)."""
        self.setup()
        rank, world = self._rank_world()
        loaders = []
        for head in self.heads:
            graphs = self._graphs(self.val_sets[head], head)
            if len(graphs) == 0:
                continue
            part = Subset(graphs, list(range(rank, len(graphs), world)))
            loaders.append(
                DataLoader(
                    part,
                    batch_size=self.batch_size,
                    shuffle=False,
                    collate_fn=Collater(part),
                    num_workers=self.num_workers,
                )
            )
        return loaders

    def statistics_batch(self, frames_per_head: int = 32) -> Batch:
        """The first training frames of every head as one batch (descriptor normalisation statistics)."""
        self.setup()
        graphs = []
        for head in self.heads:
            dataset = self._graphs(self.train_sets[head], head)
            graphs.extend(dataset[i] for i in range(min(frames_per_head, len(dataset))))
        return Batch.from_data_list(graphs)

    def head_statistics(self) -> dict[str, dict[str, Any]]:
        """Per-head statistics of the training split.

        Returns:
            head -> ``numbers`` (per frame, [N_f] atomic numbers), ``energy`` ([n_frames] eV, NaN when
            unlabelled) and ``force_rms`` (eV/Å, None without forces).
        """
        self.setup()
        stats = {}
        for head, data in self.train_sets.items():
            table = data.with_format("arrow")[:]
            numbers, energy = composition_and_energy(table)
            stats[head] = {"numbers": numbers, "energy": energy, "force_rms": force_rms(table)}
        return stats

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: the step the next batch belongs to (for exact resume)."""
        return {"next_step": self.trainer.global_step if self.trainer is not None else 0}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the batch position from a checkpoint."""
        self._resume_step = int(state_dict["next_step"])
