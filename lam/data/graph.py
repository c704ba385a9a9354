"""The atomic graph: the one data object that flows through lam.

An :class:`AtomicGraph` is a ``torch_geometric`` ``Data`` holding one frame: structure, a periodic
neighbour list at a given cutoff, labels with presence masks, and the dataset/head it belongs to.
Batching is plain ``torch_geometric`` collation (``Batch.from_data_list`` or its ``DataLoader``).
Field names and shapes are documented in :mod:`lam.keys`.
"""

from __future__ import annotations

from collections.abc import Callable

import ase
import numpy as np
import torch
from torch_geometric.data import Data

from lam import keys
from lam.data.labels import read_label, stress_3x3
from lam.data.neighbors import neighbor_list

# neighbours per atom within a cutoff beyond which a structure is not condensed matter (dense metals
# have about 80 within 5 Å, 170 within 6 Å): a cell in Bohr read as Å, or atoms stacked on each other
MAX_NEIGHBORS_PER_ATOM = 1000


def check_density(n_edges: int, n_atoms: int, cutoff: float, frame_id: str) -> None:
    """Refuse a structure with more than :data:`MAX_NEIGHBORS_PER_ATOM` neighbours per atom.

    Such a structure is a unit or cell mistake; evaluating it would run until memory is exhausted
    (a 0.55 Å lattice has 3,118 neighbours per atom within 5 Å).
    """
    per_atom = n_edges / max(n_atoms, 1)
    if per_atom > MAX_NEIGHBORS_PER_ATOM:
        raise ValueError(
            f"{frame_id or 'structure'}: {per_atom:.0f} neighbours per atom within {cutoff} Å (condensed "
            "matter has tens to a few hundred): the cell or positions are wrong (Å expected), or the atoms "
            "overlap"
        )


def _label_fields(
    energy: float | None, forces: object | None, stress: object | None, n_atoms: int, as_float: Callable
) -> dict[str, torch.Tensor]:
    """Label tensors and their presence masks; an absent label is zeros with a False mask."""
    return {
        keys.ENERGY: as_float([0.0 if energy is None else energy]),
        keys.FORCES: as_float(np.zeros((n_atoms, 3)) if forces is None else forces).reshape(n_atoms, 3),
        keys.STRESS: as_float(np.zeros((3, 3)) if stress is None else stress_3x3(stress)).reshape(1, 3, 3),
        keys.HAS_ENERGY: torch.tensor([energy is not None]),
        keys.HAS_FORCES: torch.tensor([forces is not None]),
        keys.HAS_STRESS: torch.tensor([stress is not None]),
    }


class AtomicGraph(Data):
    """One frame as a graph. See :mod:`lam.keys` for fields, units and shapes."""

    @classmethod
    def from_arrays(
        cls,
        atomic_numbers: np.ndarray,
        positions: np.ndarray,
        cell: np.ndarray,
        pbc: np.ndarray,
        cutoff: float,
        energy: float | None = None,
        forces: np.ndarray | None = None,
        stress: np.ndarray | None = None,
        head: str = "default",
        frame_id: str = "",
        dtype: torch.dtype = torch.float64,
        neighbors: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> AtomicGraph:
        """Build a graph (with its neighbour list) from plain arrays.

        Args:
            atomic_numbers: [N] atomic numbers.
            positions: [N, 3] positions, Å.
            cell: [3, 3] lattice vectors as rows, Å (zeros for a molecule).
            pbc: [3] periodicity per axis.
            cutoff: neighbour-list cutoff, Å.
            energy: total energy, eV, or None when the frame has no energy label.
            forces: [N, 3] forces, eV/Å, or None.
            stress: [3, 3] or Voigt [6] stress, eV/Å^3, ASE sign, or None.
            head: dataset / fitting-head name this frame belongs to.
            frame_id: where the frame came from ("file#index"), used in error messages.
            dtype: floating dtype of positions, cell and labels.
            neighbors: ``(edge_index [2, E], cell_shift [E, 3])`` within ``cutoff`` computed by the
                caller (e.g. :class:`~lam.data.neighbors.SkinNeighborList` in MD); None builds them.
        """
        n_atoms = len(atomic_numbers)
        cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
        pbc = np.asarray(pbc, dtype=bool).reshape(3)
        if neighbors is None:
            neighbors = neighbor_list(positions, cell, pbc, cutoff)
        edge_index, cell_shift = neighbors
        check_density(edge_index.shape[1], n_atoms, cutoff, frame_id)
        as_float = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype)  # noqa: E731
        return cls(
            **{
                keys.ATOMIC_NUMBERS: torch.as_tensor(np.asarray(atomic_numbers), dtype=torch.long),
                keys.POSITIONS: as_float(positions).reshape(n_atoms, 3),
                keys.CELL: as_float(cell).unsqueeze(0),
                keys.PBC: torch.as_tensor(pbc).unsqueeze(0),
                keys.EDGE_INDEX: torch.from_numpy(edge_index),
                keys.CELL_SHIFT: as_float(cell_shift),
                keys.CUTOFF: torch.tensor([float(cutoff)], dtype=dtype),
                **_label_fields(energy, forces, stress, n_atoms, as_float),
                keys.HEAD: head,
                keys.FRAME_ID: frame_id,
                "num_nodes": n_atoms,
            }
        )

    @classmethod
    def from_atoms(
        cls,
        atoms: ase.Atoms,
        cutoff: float,
        head: str = "default",
        frame_id: str = "",
        dtype: torch.dtype = torch.float64,
    ) -> AtomicGraph:
        """Build a graph from an ``ase.Atoms``; labels come from its calculator results or info.

        Energy is read from ``energy`` (not ``free_energy``), forces from ``forces``, stress from
        ``stress`` (Voigt or 3x3, ASE sign). Missing labels get a False presence mask.
        """
        energy = read_label(atoms, "energy")
        stress = read_label(atoms, "stress")
        return cls.from_arrays(
            atomic_numbers=atoms.numbers,
            positions=atoms.positions,
            cell=atoms.cell.array,
            pbc=atoms.pbc,
            cutoff=cutoff,
            energy=None if energy is None else float(energy),
            forces=read_label(atoms, "forces"),
            stress=stress,
            head=head,
            frame_id=frame_id,
            dtype=dtype,
        )

    def to_atoms(self) -> ase.Atoms:
        """Back to ``ase.Atoms`` with a ``SinglePointCalculator`` holding the present labels."""
        from ase.calculators.singlepoint import SinglePointCalculator

        atoms = ase.Atoms(
            numbers=self[keys.ATOMIC_NUMBERS].numpy(),
            positions=self[keys.POSITIONS].double().numpy(),
            cell=self[keys.CELL][0].double().numpy(),
            pbc=self[keys.PBC][0].numpy(),
        )
        results = {}
        if bool(self[keys.HAS_ENERGY]):
            results["energy"] = float(self[keys.ENERGY])
        if bool(self[keys.HAS_FORCES]):
            results["forces"] = self[keys.FORCES].double().numpy()
        if bool(self[keys.HAS_STRESS]):
            results["stress"] = self[keys.STRESS][0].double().numpy()
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info["head"] = self[keys.HEAD]
        return atoms

    def __inc__(self, key: str, value: object, *args: object, **kwargs: object) -> int:
        """Only edge_index is offset by the number of nodes when batching."""
        if key == keys.EDGE_INDEX:
            return self.num_nodes
        return 0
