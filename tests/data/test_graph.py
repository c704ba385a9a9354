"""AtomicGraph: construction from Atoms, batching offsets, round trip, label masks."""

from __future__ import annotations

import ase
import numpy as np
import torch
from conftest import assert_same_frames
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from lam import keys
from lam.data.graph import AtomicGraph


def _edge_vectors(graph: AtomicGraph) -> torch.Tensor:
    """r_ij = pos[j] - pos[i] + shift @ cell, per the convention in lam.keys."""
    i, j = graph[keys.EDGE_INDEX]
    return graph[keys.POSITIONS][j] - graph[keys.POSITIONS][i] + graph[keys.CELL_SHIFT] @ graph[keys.CELL][0]


def test_edges_are_within_cutoff_and_match_ase(frames: list[ase.Atoms]) -> None:
    from ase.neighborlist import neighbor_list as ase_neighbor_list

    for atoms in frames:
        graph = AtomicGraph.from_atoms(atoms, cutoff=3.0)
        lengths = _edge_vectors(graph).norm(dim=1)
        assert torch.all(lengths < 3.0) and torch.all(lengths > 0)
        i, _ = ase_neighbor_list("ij", atoms, 3.0)
        assert graph[keys.EDGE_INDEX].shape[1] == len(i)


def test_batching_offsets_edge_index(frames: list[ase.Atoms]) -> None:
    graphs = [AtomicGraph.from_atoms(a, cutoff=3.0, head="h") for a in frames]
    batch = Batch.from_data_list(graphs)
    n_atoms = [len(a) for a in frames]
    offsets = np.cumsum([0, *n_atoms[:-1]])
    assert batch.num_graphs == len(frames) and batch.num_nodes == sum(n_atoms)
    assert batch[keys.CELL].shape == (5, 3, 3) and batch[keys.PBC].shape == (5, 3)
    assert batch[keys.ENERGY].shape == (5,) and batch[keys.STRESS].shape == (5, 3, 3)
    assert batch[keys.HEAD] == ["h"] * 5
    start = 0
    for k, graph in enumerate(graphs):
        n_edges = graph[keys.EDGE_INDEX].shape[1]
        edges = batch[keys.EDGE_INDEX][:, start : start + n_edges]
        assert torch.equal(edges, graph[keys.EDGE_INDEX] + int(offsets[k]))
        assert torch.all(batch.batch[edges] == k)  # no edge crosses between frames
        assert torch.equal(batch[keys.CELL_SHIFT][start : start + n_edges], graph[keys.CELL_SHIFT])
        start += n_edges
    # Edge vectors computed on the batch (cell of each edge's graph) equal the per-graph ones.
    i, j = batch[keys.EDGE_INDEX]
    cell_per_edge = batch[keys.CELL][batch.batch[i]]
    vectors = batch[keys.POSITIONS][j] - batch[keys.POSITIONS][i]
    vectors = vectors + torch.einsum("ek,ekl->el", batch[keys.CELL_SHIFT], cell_per_edge)
    assert torch.allclose(vectors, torch.cat([_edge_vectors(g) for g in graphs]), atol=1e-12)


def test_dataloader_collates(frames: list[ase.Atoms]) -> None:
    loader = DataLoader([AtomicGraph.from_atoms(a, cutoff=3.0) for a in frames], batch_size=2)
    sizes = [batch.num_graphs for batch in loader]
    assert sizes == [2, 2, 1]


def test_to_atoms_round_trip(frames: list[ase.Atoms]) -> None:
    graphs = [AtomicGraph.from_atoms(a, cutoff=3.0, head=a.info.get("head", "default")) for a in frames]
    back = [g.to_atoms() for g in graphs]
    assert_same_frames(frames, back)
    assert back[0].info["head"] == "bulk" and back[1].info["head"] == "default"


def test_missing_labels_give_false_masks(frames: list[ase.Atoms]) -> None:
    rocksalt, water = AtomicGraph.from_atoms(frames[1], 3.0), AtomicGraph.from_atoms(frames[2], 3.0)
    assert rocksalt[keys.HAS_ENERGY].tolist() == [True]
    assert rocksalt[keys.HAS_FORCES].tolist() == [False] and rocksalt[keys.HAS_STRESS].tolist() == [False]
    assert water[keys.HAS_FORCES].tolist() == [True] and water[keys.HAS_STRESS].tolist() == [False]
    bare = AtomicGraph.from_atoms(ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]), 3.0)
    assert not bare[keys.HAS_ENERGY].item() and torch.all(bare[keys.FORCES] == 0)
    assert bare.to_atoms().calc is None
    batch = Batch.from_data_list([rocksalt, water, bare])
    assert batch[keys.HAS_FORCES].tolist() == [False, True, False]
    assert batch[keys.HAS_ENERGY].tolist() == [True, True, False]


def test_float32_graph(frames: list[ase.Atoms]) -> None:
    graph = AtomicGraph.from_atoms(frames[0], cutoff=3.0, dtype=torch.float32)
    assert graph[keys.POSITIONS].dtype == torch.float32 and graph[keys.FORCES].dtype == torch.float32
    assert graph[keys.EDGE_INDEX].dtype == torch.long


def test_an_impossibly_dense_structure_is_refused_before_evaluation() -> None:
    """A 0.55 Å lattice (a unit mistake) once ran until the allocator failed."""
    import pytest
    from ase.build import bulk

    dense = bulk("Ta", "sc", a=0.55).repeat(2)
    with pytest.raises(ValueError, match=r"ta#0: \d+ neighbours per atom within 5.0 Å"):
        AtomicGraph.from_atoms(dense, 5.0, frame_id="ta#0")
    AtomicGraph.from_atoms(bulk("W", "bcc", a=3.16).repeat(2), 6.0)  # a dense real metal is fine
