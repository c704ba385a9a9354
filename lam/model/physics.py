"""Forces, virial and stress as exact derivatives of the energy (one place for the strain trick)."""

from __future__ import annotations

import torch
from torch import Tensor


def strained_geometry(
    positions: Tensor, cell: Tensor, batch: Tensor, want_stress: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Apply a zero symmetric strain ε that autograd can differentiate through.

    With x' = x (I + ε) and h' = h (I + ε) the energy's derivative with respect to ε at ε = 0 is
    -virial, which gives the stress of periodic systems.

    Args:
        positions: [N, 3] Å.
        cell: [B, 3, 3] Å, rows are lattice vectors.
        batch: [N] graph index of each atom.
        want_stress: whether to build the strain (otherwise positions and cell pass through).

    Returns:
        strained positions [N, 3], strained cell [B, 3, 3], and the displacement [B, 3, 3] (or None).
    """
    if not want_stress:
        return positions, cell, None
    displacement = torch.zeros_like(cell, requires_grad=True)
    strain = 0.5 * (displacement + displacement.transpose(1, 2))  # [B, 3, 3]
    identity = torch.eye(3, dtype=cell.dtype, device=cell.device)
    deformation = identity + strain  # [B, 3, 3]
    if deformation.shape[0] == 1:  # one structure (MD): one matmul instead of N batched 3x3 products
        positions = positions @ deformation[0]
    else:
        positions = torch.einsum("ni,nij->nj", positions, deformation.index_select(0, batch))
    cell = torch.bmm(cell, identity + strain)
    return positions, cell, displacement


def edge_vectors(
    positions: Tensor, cell: Tensor, batch: Tensor, edge_index: Tensor, cell_shift: Tensor
) -> Tensor:
    """r_ij = x_j - x_i + S_ij h, for every edge. Returns [E, 3], Å."""
    centre, neighbour = edge_index
    if cell.shape[0] == 1:  # one structure (MD): one matmul instead of E batched 3x3 products
        shift = cell_shift @ cell[0]
    else:
        shift = torch.einsum("ei,eij->ej", cell_shift, cell.index_select(0, batch.index_select(0, centre)))
    # index_select, not advanced indexing: its backward is an index_add, not a sort + index_put
    return positions.index_select(0, neighbour) - positions.index_select(0, centre) + shift


def derivatives(
    energy: Tensor,
    positions: Tensor,
    displacement: Tensor | None,
    cell: Tensor,
    pbc: Tensor,
    create_graph: bool,
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Forces, virial and stress from the total energy.

    Args:
        energy: [B] eV.
        positions: [N, 3] the leaf positions (requires_grad), Å.
        displacement: [B, 3, 3] from :func:`strained_geometry`, or None for no stress.
        cell: [B, 3, 3] unstrained cell, Å.
        pbc: [B, 3] periodicity; stress is zero for graphs with no periodic axis.
        create_graph: keep the graph (training with a force loss needs double backward).

    Returns:
        forces [N, 3] eV/Å, virial [B, 3, 3] eV or None, stress [B, 3, 3] eV/Å^3 or None.
    """
    inputs = [positions] if displacement is None else [positions, displacement]
    grads = torch.autograd.grad(
        energy.sum(), inputs, create_graph=create_graph, allow_unused=True, materialize_grads=True
    )
    forces = -grads[0]
    if displacement is None:
        return forces, None, None
    virial = -grads[1]
    volume = torch.linalg.det(cell).abs()  # [B]
    periodic = pbc.any(dim=1) & (volume > 0)
    safe_volume = torch.where(periodic, volume, torch.ones_like(volume))
    stress = torch.where(
        periodic[:, None, None], -virial / safe_volume[:, None, None], torch.zeros_like(virial)
    )
    return forces, virial, stress
