"""Edge list -> padded per-atom neighbour slots, nearest first, capped like DeePMD's ``sel``.

Dense ``[n_atoms, n_slots, ...]`` tensors let every per-neighbour operation of the descriptor be one
batched matmul, which is much faster on CPU than scatter over edges. Each centre keeps at most
``max_neighbors`` neighbours inside ``cutoff``, the nearest ones: beyond that the farthest are
dropped, exactly as DeePMD-kit does with ``sel`` (which is why ``sel`` should exceed the densest
environment in the data; a neighbour dropped by the cap makes the energy discontinuous).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class NeighborSlots:
    """Padded neighbours of every atom within one cutoff.

    Attributes:
        index: [N, n_slots] int64 atom index j of each slot (0 on empty slots: always mask).
        mask: [N, n_slots] bool, True where the slot holds a real neighbour.
        vectors: [N, n_slots, 3] r_ij = x_j - x_i in Å, differentiable; empty slots hold a constant
            vector of length 2 * cutoff so that norms and their derivatives stay finite there.
    """

    index: Tensor
    mask: Tensor
    vectors: Tensor


def dense_neighbors(
    edge_index: Tensor,
    edge_vectors: Tensor,
    n_atoms: int,
    cutoff: float,
    max_neighbors: int,
    nearest_first: bool = True,
) -> NeighborSlots:
    """Neighbours of each centre within ``cutoff``, at most ``max_neighbors`` (the nearest ones).

    Args:
        edge_index: [2, E] int64, row 0 the centre i, row 1 the neighbour j (any order).
        edge_vectors: [E, 3] r_ij in Å, float; gradients flow into the returned ``vectors``.
        n_atoms: N, number of atoms (centres without edges get empty rows).
        cutoff: Å; edges at or beyond it are left out.
        max_neighbors: cap on the slots per centre (DeePMD ``sel``).
        nearest_first: order each row by distance (needed by :func:`restrict_neighbors`). When False
            and no centre exceeds the cap, edges already grouped by centre (as lam's neighbour list
            and batches give them) keep their order and nothing is sorted: a two-body model is a sum
            over slots, so the order does not matter to it.

    Returns:
        :class:`NeighborSlots` with ``n_slots = min(max_neighbors, largest neighbour count)``, at least 1.
    """
    centres, neighbors = edge_index
    distances = edge_vectors.detach().norm(dim=-1)  # [E]
    kept = torch.nonzero(distances < cutoff).squeeze(-1)  # [E_kept] edge ids, in input order
    kept_centres = centres[kept]
    counts = torch.bincount(kept_centres, minlength=n_atoms)
    largest = int(counts.max()) if n_atoms else 0
    # the grouping check is only needed (and only paid for) when nothing else forces the sort
    if nearest_first or largest > max_neighbors or not bool((kept_centres[1:] >= kept_centres[:-1]).all()):
        # one sort by (centre, distance): distance < cutoff, so centre * 2 cutoff + distance orders both
        key = kept_centres.to(torch.float64) * (2.0 * cutoff) + distances[kept].to(torch.float64)
        order = torch.argsort(key, stable=True)
        kept, kept_centres = kept[order], kept_centres[order]
    n_slots = max(1, min(max_neighbors, largest))
    n_edges = edge_vectors.shape[0]
    # kept edges are grouped by centre: slot = rank within the group; empty slots point at an
    # extra row E (a placeholder vector and neighbour 0). Written out, this is half the cost of
    # torch_geometric's to_dense_batch, which also validates and handles unsorted input.
    first = counts.cumsum(0) - counts  # [N] position of each centre's first kept edge
    rank = torch.arange(kept.shape[0], device=kept.device) - first.index_select(0, kept_centres)
    inside = rank < n_slots  # only false where the cap drops the farthest neighbours
    if not bool(inside.all()):
        kept, kept_centres, rank = kept[inside], kept_centres[inside], rank[inside]
    slots = torch.full((n_atoms * n_slots,), n_edges, dtype=torch.long, device=kept.device)
    slots[kept_centres * n_slots + rank] = kept
    slots = slots.view(n_atoms, n_slots)  # [N, n_slots] edge ids
    mask = slots < n_edges
    placeholder = edge_vectors.new_tensor([[2.0 * cutoff, 0.0, 0.0]])
    vectors = gather_neighbors(torch.cat([edge_vectors, placeholder]), slots)  # [N, n_slots, 3]
    index = gather_neighbors(torch.cat([neighbors, neighbors.new_zeros(1)]), slots)  # [N, n_slots]
    return NeighborSlots(index=index, mask=mask, vectors=vectors)


def gather_neighbors(per_atom: Tensor, index: Tensor) -> Tensor:
    """``per_atom[index]`` for neighbour slots, as an ``index_select`` (cheaper backward on CPU).

    Args:
        per_atom: [N, ...] features of every atom.
        index: [N, n_slots] int64 atom index of each slot.

    Returns:
        [N, n_slots, ...] the features of each slot's atom.
    """
    flat = per_atom.index_select(0, index.flatten())
    return flat.view(*index.shape, *per_atom.shape[1:])


def restrict_neighbors(slots: NeighborSlots, cutoff: float, max_neighbors: int) -> NeighborSlots:
    """The slots of ``slots`` within a smaller ``cutoff``, at most ``max_neighbors`` per atom.

    Slots are nearest first, so the neighbours inside a smaller sphere are a prefix of each row:
    this is a slice, with no new sort. It equals :func:`dense_neighbors` at the smaller cutoff when
    ``slots`` was not truncated below ``max_neighbors`` (the larger block's cap is the larger one).

    Args:
        slots: neighbours at a larger cutoff, from :func:`dense_neighbors`.
        cutoff: Å, the smaller cutoff.
        max_neighbors: cap on the slots per centre.
    """
    distances = slots.vectors.detach().norm(dim=-1)  # [N, n]
    inside = slots.mask & (distances < cutoff)
    n_slots = max(1, min(max_neighbors, int(inside.sum(dim=1).max()) if inside.numel() else 0))
    mask = inside[:, :n_slots]
    placeholder = slots.vectors.new_tensor([2.0 * cutoff, 0.0, 0.0])
    vectors = torch.where(mask.unsqueeze(-1), slots.vectors[:, :n_slots], placeholder)
    return NeighborSlots(index=slots.index[:, :n_slots], mask=mask, vectors=vectors)
