"""Forces, virial and stress as exact derivatives of the energy, taken through the edge vectors.

Every lam descriptor sees positions only through the edge vectors r_e = x_j - x_i + S_e h. One
gradient g_e = dE/dr_e then gives both derivatives (DeePMD-kit and LAMMPS pair styles do the same):

    F_i = sum_{e: centre i} g_e - sum_{e: neighbour i} g_e           (F = -dE/dx)
    W   = -sym(sum_e r_e (x) g_e)                                   (virial = -dE/dε, ε the strain)

because a homogeneous strain x' = x (I + ε), h' = h (I + ε) maps every r_e to r_e (I + ε). This is
the strain derivative without building a strained copy of positions and cell: for a model as cheap
as the student, that bookkeeping cost as much as the stress itself.
"""

from __future__ import annotations

import torch
from torch import Tensor


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
    vectors: Tensor,
    edge_index: Tensor,
    graph_index: Tensor,
    cell: Tensor,
    pbc: Tensor,
    want_stress: bool,
    create_graph: bool,
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Forces, virial and stress from the total energy (see the module docstring).

    Args:
        energy: [B] eV.
        vectors: [E, 3] the edge vectors the energy was computed from (a leaf that requires grad), Å.
        edge_index: [2, E] centre i and neighbour j of every edge.
        graph_index: [N] graph of every atom.
        cell: [B, 3, 3] cell, Å.
        pbc: [B, 3] periodicity; stress is zero for graphs with no periodic axis.
        want_stress: also return virial and stress.
        create_graph: keep the graph (training with a force loss needs double backward).

    Returns:
        forces [N, 3] eV/Å, virial [B, 3, 3] eV or None, stress [B, 3, 3] eV/Å^3 or None.
    """
    (edge_grad,) = torch.autograd.grad(
        energy.sum(), [vectors], create_graph=create_graph, allow_unused=True, materialize_grads=True
    )
    centre, neighbour = edge_index
    n_atoms = graph_index.shape[0]
    # one scalar index_add over [centre; neighbour] x 3 components: half the cost of two row-wise ones
    component = torch.arange(3, device=edge_grad.device)
    flat_index = (torch.cat([centre, neighbour]).unsqueeze(1) * 3 + component).flatten()
    flat_grad = torch.cat([edge_grad, -edge_grad]).flatten()
    forces = edge_grad.new_zeros(n_atoms * 3).index_add(0, flat_index, flat_grad).view(n_atoms, 3)
    if not want_stress:
        return forces, None, None
    if cell.shape[0] == 1:  # one structure: sum_e r_e (x) g_e is one 3 x E by E x 3 product
        summed = (vectors.detach().T @ edge_grad).unsqueeze(0)
    else:
        per_edge = vectors.detach().unsqueeze(-1) * edge_grad.unsqueeze(-2)  # r_e (x) g_e [E, 3, 3]
        edge_graph = graph_index.index_select(0, centre)
        summed = per_edge.new_zeros(cell.shape[0], 3, 3).index_add(0, edge_graph, per_edge)
    virial = -0.5 * (summed + summed.transpose(1, 2))  # [B, 3, 3]
    # |a . (b x c)|: a triple product costs a tenth of linalg.det's LU on CPU
    volume = (cell[:, 0] * torch.linalg.cross(cell[:, 1], cell[:, 2])).sum(-1).abs()  # [B]
    periodic = pbc.any(dim=1) & (volume > 0)
    safe_volume = torch.where(periodic, volume, torch.ones_like(volume))
    stress = torch.where(
        periodic[:, None, None], -virial / safe_volume[:, None, None], torch.zeros_like(virial)
    )
    return forces, virial, stress
