"""Periodic-aware neighbour lists (a thin wrapper over vesin)."""

import numpy as np
import vesin


def neighbor_list(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray]:
    """Full neighbour list with periodic images.

    Args:
        positions: [N, 3] Cartesian positions, Å.
        cell: [3, 3] lattice vectors as rows, Å (ignored along non-periodic axes; may be zeros
            when no axis is periodic).
        pbc: [3] periodicity per axis (mixed periodicity, e.g. slabs, is supported).
        cutoff: radius in Å; pairs with distance < cutoff are returned.

    Returns:
        edge_index: [2, E] int64; row 0 is the centre i, row 1 the neighbour j, sorted by i.
        cell_shift: [E, 3] float64 integer image shifts S, so that r_ij = x_j - x_i + S @ cell.
    """
    pbc = np.asarray(pbc, dtype=bool)
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    box = np.asarray(cell, dtype=np.float64) if pbc.any() else np.zeros((3, 3))
    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
    centre, neighbour, shift = calculator.compute(
        points=positions, box=box, periodic=pbc, quantities="ijS"
    )
    # vesin returns uint64 indices; a stable sort by centre makes per-atom segments contiguous.
    order = np.argsort(centre, kind="stable")
    edge_index = np.stack([centre[order], neighbour[order]]).astype(np.int64)
    return edge_index, shift[order].astype(np.float64)
