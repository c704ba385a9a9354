"""Estimate the memory a batch will take before running it, and refuse one that cannot fit.

A DPA-2 evaluation keeps, for every atom, activations over its padded neighbour slots: the repinit
embedding over ``min(nsel, widest neighbour count)`` slots, the three-body block over the square of
its slots, and per repformer layer the pair features and (with pair attention) slots x slots x heads
logits. :func:`activation_floats_per_atom` counts those floats from the configuration; the factors
in :data:`MODE_FACTORS` turn the count into bytes for a forward pass, forces (autograd keeps the
forward graph) and training (the force loss keeps the derivative graph too). They were measured as
peak resident memory on water boxes of 384 and 1,152 atoms for ``lam-mini`` and DPA-2 small and
medium in float32 and float64, where the estimate lies within 0.9-1.7x of the measurement
(``scripts/bench_memory.py`` reruns that comparison).

The limit is 80% of the memory available on the device when the batch arrives (``psutil`` on CPU,
``torch.cuda.mem_get_info`` on a GPU); ``LAM_MEMORY_LIMIT`` (bytes, or with a unit: ``500MB``,
``8GB``) sets it explicitly.
"""

from __future__ import annotations

import os
import re

import torch

from lam import keys
from lam.errors import LamError
from lam.model.config import DPA2Config, LAMConfig, StudentConfig

# peak bytes / (floats per atom x bytes per float), measured (module docstring)
MODE_FACTORS = {"energy": 1.0, "forces": 1.5, "training": 4.0}
EDGE_BYTES = 128  # the edge list and its sort keys, distances and shifts, per neighbour pair
AVAILABLE_FRACTION = 0.8
SMALL_BATCH_BYTES = 64 * 2**20  # below this, no device query: any machine that runs lam has it
UNCAPPED = 2**30  # a neighbour count above every nsel: each block's slots at its cap
_UNITS = {"": 1, "B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}


class MemoryEstimateError(LamError, MemoryError):
    """A batch would need more memory than the limit."""


def _slots(max_neighbors: int, widest: int, cutoff: float, outer_cutoff: float) -> float:
    """Slots per atom of a block: the widest count scaled to its cutoff by volume, capped by nsel."""
    return min(max_neighbors, widest * (cutoff / outer_cutoff) ** 3)


def _dpa2_floats(c: DPA2Config, widest: int) -> float:
    repinit_slots = min(c.repinit_max_neighbors, widest)
    # embedding input (s(r) and two type embeddings), then linear, activation and residual per layer
    per_slot = 3 * sum(c.repinit_embedding_widths) + 2 * c.type_embedding_dim + 16
    floats = repinit_slots * per_slot
    if c.use_three_body:
        n = _slots(c.three_body_max_neighbors, widest, c.three_body_cutoff, c.repinit_cutoff)
        floats += n * n * (3 * sum(c.three_body_embedding_widths) + 2 * c.type_embedding_dim + 4)
    n = _slots(c.repformer_max_neighbors, widest, c.repformer_cutoff, c.repinit_cutoff)
    per_layer = 12 * (n * c.pair_dim + c.atom_dim)
    if c.pair_attention:
        per_layer += 6 * n * n * c.pair_attention_heads
        per_layer += 2 * n * c.pair_attention_heads * c.pair_attention_hidden
    if c.atom_attention:
        per_layer += 6 * n * c.atom_attention_heads + 2 * n * c.atom_attention_hidden
    return floats + c.n_repformer_layers * per_layer


def activation_floats_per_atom(config: LAMConfig, widest: int) -> float:
    """Floats of activations per atom for a structure whose densest atom has ``widest`` neighbours."""
    descriptor = config.descriptor
    if isinstance(descriptor, StudentConfig):
        slots = min(descriptor.max_neighbors, widest)
        return slots * (3 * sum(descriptor.embedding_widths) + 2 * descriptor.type_embedding_dim + 16)
    return _dpa2_floats(descriptor, widest)


def estimate_bytes(
    config: LAMConfig, n_atoms: int, n_edges: int, widest: int, bytes_per_float: int, mode: str
) -> int:
    """Peak memory (bytes) of one batch; ``mode`` is ``energy``, ``forces`` or ``training``."""
    activations = n_atoms * activation_floats_per_atom(config, widest) * bytes_per_float
    return int(MODE_FACTORS[mode] * activations + EDGE_BYTES * n_edges)


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


def parse_bytes(text: str) -> int:
    """``"8GB"`` -> 8 * 2**30; a plain number is bytes."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?B?)\s*", text.upper())
    if match is None:
        raise MemoryEstimateError(f"LAM_MEMORY_LIMIT={text!r} is not a size: write e.g. 500MB or 8GB")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def memory_limit(device: torch.device) -> tuple[int, str]:
    """The limit in bytes on ``device``, and a phrase saying where it comes from."""
    if "LAM_MEMORY_LIMIT" in os.environ:
        return parse_bytes(os.environ["LAM_MEMORY_LIMIT"]), "LAM_MEMORY_LIMIT"
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        # memory torch's caching allocator holds but does not use is available to this process too
        available = free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    else:
        import psutil

        available = psutil.virtual_memory().available
    return int(AVAILABLE_FRACTION * available), f"80% of the {available / 2**30:.1f} GiB available"


def check_batch_memory(config: LAMConfig, batch: object, dtype: torch.dtype, mode: str) -> None:
    """Raise :class:`MemoryEstimateError` when ``batch`` would need more than :func:`memory_limit`."""
    edge_index = batch[keys.EDGE_INDEX]
    n_atoms = batch[keys.ATOMIC_NUMBERS].shape[0]
    if n_atoms == 0 or edge_index.shape[1] == 0:
        return
    n_edges, bytes_per_float = edge_index.shape[1], dtype.itemsize
    explicit = "LAM_MEMORY_LIMIT" in os.environ
    # every block's slots are capped by its nsel: the estimate at the caps bounds the batch from above,
    # so small batches (MD steps, most training batches) skip counting neighbours, on the hot path
    at_caps = estimate_bytes(config, n_atoms, n_edges, UNCAPPED, bytes_per_float, mode)
    if at_caps < SMALL_BATCH_BYTES and not explicit:
        return
    widest = int(torch.bincount(edge_index[0], minlength=n_atoms).max())
    need = estimate_bytes(config, n_atoms, n_edges, widest, bytes_per_float, mode)
    if need < SMALL_BATCH_BYTES and not explicit:
        return
    limit, origin = memory_limit(edge_index.device)
    if need <= limit:
        return
    frames = getattr(batch, keys.FRAME_ID, None) or ""
    frames = [name or "a structure" for name in ([frames] if isinstance(frames, str) else frames)]
    what = frames[0] if len(frames) == 1 else f"a batch of {len(frames)} frames from {frames[0]}"
    raise MemoryEstimateError(
        f"{what} ({n_atoms} atoms, up to {widest} neighbours each) needs about {_size(need)} "
        f"for {mode}, more than the limit ({_size(limit)}, {origin}): use fewer atoms per "
        "structure, a model with a smaller cutoff, or smaller batches (--batch-atoms, --batch-size)"
    )
