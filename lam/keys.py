"""Names of the fields of an :class:`~lam.data.graph.AtomicGraph` and of model outputs.

These strings are persisted (in the training format, in configs and in metric names), so they are
public API: never rename one casually. Shapes are per graph; after batching, N is the number of atoms
in the batch, E the number of edges, B the number of graphs.
"""

from typing import Final

# Structure
POSITIONS: Final[str] = "pos"  # [N, 3] float, Å
ATOMIC_NUMBERS: Final[str] = "atomic_numbers"  # [N] int64
CELL: Final[str] = "cell"  # [B, 3, 3] float, Å, rows are lattice vectors (zeros when not periodic)
PBC: Final[str] = "pbc"  # [B, 3] bool
# Neighbour list: edge e links receiver/centre i = edge_index[0, e] to neighbour j = edge_index[1, e];
# the edge vector is r_ij = pos[j] - pos[i] + cell_shift[e] @ cell[graph of i].
EDGE_INDEX: Final[str] = "edge_index"  # [2, E] int64
CELL_SHIFT: Final[str] = "cell_shift"  # [E, 3] float, integer image shifts
CUTOFF: Final[str] = "cutoff"  # [B] float, Å: the cutoff the edges were built with

# Labels (eV, eV/Å, eV/Å^3 with ASE's sign: positive = tensile) and their presence masks
ENERGY: Final[str] = "energy"  # [B] float
FORCES: Final[str] = "forces"  # [N, 3] float
STRESS: Final[str] = "stress"  # [B, 3, 3] float
HAS_ENERGY: Final[str] = "has_energy"  # [B] bool
HAS_FORCES: Final[str] = "has_forces"  # [B] bool
HAS_STRESS: Final[str] = "has_stress"  # [B] bool

# Bookkeeping
HEAD: Final[str] = "head"  # list[str] of length B: dataset / fitting-head name
FRAME_ID: Final[str] = "frame_id"  # list[str] of length B: "<source>#<index>", for error messages

# Model outputs
NODE_ENERGY: Final[str] = "node_energy"  # [N] float, eV
VIRIAL: Final[str] = "virial"  # [B, 3, 3] float, eV (virial = -volume * stress)
