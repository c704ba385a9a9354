"""Checks that one frame is physically usable before it enters a dataset.

Every reader runs :func:`validate_atoms` on each frame, so a bad frame is reported with the file,
the frame index and the offending field instead of failing (or silently training on garbage)
somewhere later.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import NoReturn

import ase
import numpy as np
import vesin

from lam.data.labels import raw_label
from lam.errors import LamError

#: Labels a frame may carry, in the units of the training format (eV, eV/Å, eV/Å^3).
LABELS: tuple[str, ...] = ("energy", "forces", "stress")

_Fail = Callable[[str, str], NoReturn]


class InvalidFrameError(LamError, ValueError):
    """A frame that cannot be used, with where it came from and what is wrong.

    Attributes:
        source: file or directory the frame was read from.
        index: index of the frame within ``source``.
        field: the offending field (``energy``, ``forces``, ``positions``, ``cell`` ...).
        reason: what is wrong with it.
    """

    def __init__(self, source: str, index: int, field: str, reason: str) -> None:
        self.source = str(source)
        self.index = index
        self.field = field
        self.reason = reason
        super().__init__(f"{self.source} frame {index}: field '{field}': {reason}")

    def to_dict(self, frame_id: str | None = None) -> dict[str, str]:
        """The skip-report entry for this error: ``{frame_id, field, reason}``."""
        return {
            "frame_id": frame_id or f"{self.source}#{self.index}",
            "field": self.field,
            "reason": self.reason,
        }


def _as_float_array(value: object) -> np.ndarray | None:
    """``value`` as a float64 array, or None when it is not numeric."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _check_labels(atoms: ase.Atoms, fail: _Fail, required: Collection[str]) -> None:
    """Energy must be a finite scalar, forces finite [N, 3], stress finite Voigt [6] or [3, 3]."""
    shapes = {"energy": [()], "forces": [(len(atoms), 3)], "stress": [(6,), (3, 3)]}
    for name in LABELS:
        raw = raw_label(atoms, name)
        if raw is None:
            if name in required:
                fail(name, "missing")
            continue
        value = _as_float_array(raw)
        if value is None:
            fail(name, f"not numeric: {raw!r:.60}")
        if value.shape not in shapes[name] and not (name == "energy" and value.shape == (1,)):
            expected = " or ".join(str(s) for s in shapes[name])
            fail(name, f"shape {value.shape}, expected {expected}")
        if not np.all(np.isfinite(value)):
            fail(name, f"non-finite value(s) ({int((~np.isfinite(value)).sum())} of {value.size})")


def _check_cell(atoms: ase.Atoms, fail: _Fail) -> None:
    """The lattice vectors along periodic axes must exist and be linearly independent."""
    pbc = atoms.pbc
    if not pbc.any():
        return
    cell = atoms.cell.array
    if not np.all(np.isfinite(cell)):
        fail("cell", "non-finite lattice vector(s)")
    periodic_vectors = cell[pbc]
    lengths = np.linalg.norm(periodic_vectors, axis=1)
    if np.any(lengths < 1e-8):
        fail("cell", f"periodic frame (pbc={pbc.tolist()}) without a lattice vector along a periodic axis")
    # Rank via singular values relative to the longest vector: catches parallel/coplanar vectors.
    singular = np.linalg.svd(periodic_vectors, compute_uv=False)
    if singular[-1] < 1e-8 * max(singular[0], 1.0):
        fail("cell", f"singular cell (lattice vectors along periodic axes {pbc.tolist()} are dependent)")


def _check_distances(atoms: ase.Atoms, min_distance: float, fail: _Fail) -> None:
    """No two atoms (or an atom and a periodic image) closer than ``min_distance`` Å."""
    if min_distance <= 0 or len(atoms) == 0:
        return
    pbc = atoms.pbc
    box = atoms.cell.array if pbc.any() else np.zeros((3, 3))
    # vesin's cell list is ~20x slower with sub-Å cutoffs (many tiny cells) than at ~3 Å, so search
    # at 3 Å and keep the short pairs.
    calculator = vesin.NeighborList(cutoff=max(float(min_distance), 3.0), full_list=False)
    i, j, shift, d = calculator.compute(
        points=np.ascontiguousarray(atoms.positions, dtype=np.float64),
        box=np.ascontiguousarray(box, dtype=np.float64),
        periodic=pbc,
        quantities="ijSd",
    )
    short = d < min_distance
    i, j, shift, d = i[short], j[short], shift[short], d[short]
    if len(d):
        k = int(np.argmin(d))
        image = "" if not shift[k].any() else f" (periodic image {shift[k].astype(int).tolist()})"
        fail(
            "positions",
            f"atoms {int(i[k])} and {int(j[k])}{image} are {d[k]:.4f} Å apart, closer than "
            f"min_distance={min_distance} Å ({len(d)} such pair(s))",
        )


def validate_atoms(
    atoms: ase.Atoms,
    source: str,
    index: int,
    min_distance: float = 0.5,
    required: Collection[str] = (),
) -> None:
    """Raise :class:`InvalidFrameError` if a frame is unusable.

    Checks, in order: atomic numbers in 1..118; finite positions; labels that are present are
    numeric, finite and of the right shape (energy scalar eV, forces [N, 3] eV/Å, stress Voigt [6]
    or [3, 3] eV/Å^3) and those in ``required`` are present; a periodic frame has independent
    lattice vectors along its periodic axes; no two atoms, periodic images included, are closer
    than ``min_distance`` Å.

    Args:
        atoms: the frame, labels in ``atoms.calc.results`` (or ``info``/``arrays``).
        source: file or directory it was read from (for the message).
        index: its index within ``source``.
        min_distance: smallest allowed interatomic distance, Å; 0 disables the check.
        required: labels that must be present (e.g. ``("energy", "forces")``).

    Raises:
        InvalidFrameError: naming source, index, field and reason.
    """

    def fail(field: str, reason: str) -> NoReturn:
        raise InvalidFrameError(source, index, field, reason)

    numbers = atoms.numbers
    bad = (numbers < 1) | (numbers > 118)
    if bad.any():
        fail("atomic_numbers", f"unknown element(s) Z={sorted(set(numbers[bad].tolist()))} (must be 1..118)")
    if not np.all(np.isfinite(atoms.positions)):
        fail("positions", "non-finite coordinate(s)")
    _check_labels(atoms, fail, required)
    _check_cell(atoms, fail)
    _check_distances(atoms, min_distance, fail)
