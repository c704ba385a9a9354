"""neighbor_list against a brute-force O(N^2) search over periodic images."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lam.data.neighbors import neighbor_list


def _filled_cell(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """Replace zero lattice vectors along non-periodic axes by unit normals, to measure plane spacings."""
    cell = cell.copy()
    for axis in np.flatnonzero(~pbc):
        if not cell[axis].any():
            others = [cell[k] for k in range(3) if k != axis]
            normal = np.cross(*others)
            cell[axis] = normal / np.linalg.norm(normal) if normal.any() else np.eye(3)[axis]
    return cell


def brute_force(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float
) -> dict[tuple[int, int, tuple[int, ...]], float]:
    """Every (i, j, shift) with 0 < |x_j - x_i + shift @ cell| < cutoff, mapped to its distance."""
    pbc = np.asarray(pbc, dtype=bool)
    ranges = [range(1)] * 3
    if pbc.any():
        filled = _filled_cell(cell, pbc)
        volume = abs(np.linalg.det(filled))
        fractional = positions @ np.linalg.inv(filled)
        spread = np.ceil(
            fractional.max(axis=0) - fractional.min(axis=0)
        )  # unwrapped positions need more images
        for axis in np.flatnonzero(pbc):
            spacing = volume / np.linalg.norm(np.cross(filled[(axis + 1) % 3], filled[(axis + 2) % 3]))
            n = int(np.ceil(cutoff / spacing) + spread[axis])
            ranges[axis] = range(-n, n + 1)
    pairs = {}
    for shift in itertools.product(*ranges):
        offset = np.asarray(shift, dtype=float) @ cell
        vectors = positions[None, :, :] - positions[:, None, :] + offset  # [i, j, 3]
        distances = np.linalg.norm(vectors, axis=-1)
        for i, j in zip(*np.nonzero((distances < cutoff) & (distances > 0)), strict=True):
            pairs[(int(i), int(j), shift)] = float(distances[i, j])
    return pairs


def _as_pairs(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float) -> dict:
    edge_index, cell_shift = neighbor_list(positions, cell, pbc, cutoff)
    assert edge_index.dtype == np.int64 and cell_shift.shape == (edge_index.shape[1], 3)
    assert np.all(np.diff(edge_index[0]) >= 0), "edges must be sorted by centre"
    i, j = edge_index
    vectors = positions[j] - positions[i] + cell_shift @ cell
    distances = np.linalg.norm(vectors, axis=1)
    return {
        (int(a), int(b), tuple(int(s) for s in shift)): float(d)
        for a, b, shift, d in zip(i, j, cell_shift, distances, strict=True)
    }


def _random_positions(cell: np.ndarray, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3)) @ cell


CASES = {
    "cubic": (np.eye(3) * 6.0, [True, True, True], 3.5, 20),
    "triclinic": (np.array([[5.0, 0.0, 0.0], [1.7, 4.6, 0.0], [-1.2, 0.9, 5.3]]), [True] * 3, 4.0, 16),
    "slab_mixed_pbc": (
        np.array([[5.0, 0.0, 0.0], [2.5, 4.3, 0.0], [0.0, 0.0, 12.0]]),
        [True, True, False],
        3.0,
        14,
    ),
    "own_images": (np.array([[2.0, 0.0, 0.0], [0.3, 2.2, 0.0], [0.2, 0.4, 1.9]]), [True] * 3, 5.0, 2),
    "wire": (np.diag([2.5, 9.0, 9.0]), [True, False, False], 4.0, 5),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_brute_force(name: str) -> None:
    cell, pbc, cutoff, n_atoms = CASES[name]
    pbc = np.asarray(pbc)
    positions = _random_positions(cell, n_atoms, seed=len(name))
    expected = brute_force(positions, cell, pbc, cutoff)
    got = _as_pairs(positions, cell, pbc, cutoff)
    assert set(got) == set(expected)
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), rtol=1e-12)
    if name == "own_images":  # cutoff > cell length: an atom sees its own periodic images
        assert any(i == j for i, j, _ in got)


ZERO_VECTOR_CASES = {
    "slab_TTF": (np.array([[4.0, 0.0, 0.0], [0.0, 4.5, 0.0], [0.0, 0.0, 0.0]]), [True, True, False]),
    "slab_TFT": (np.array([[3.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.0, 3.5]]), [True, False, True]),
    "wire_TFF": (np.diag([2.5, 0.0, 0.0]), [True, False, False]),
}


@pytest.mark.parametrize("name", list(ZERO_VECTOR_CASES))
def test_zero_lattice_vector_along_non_periodic_axis(name: str) -> None:
    cell, pbc = ZERO_VECTOR_CASES[name]
    pbc = np.asarray(pbc)
    positions = np.random.default_rng(3).random((10, 3)) * 5.0 - 1.0
    expected = brute_force(positions, cell, pbc, 3.2)
    got = _as_pairs(positions, cell, pbc, 3.2)
    assert set(got) == set(expected) and len(got) > 0
    assert all(shift[axis] == 0 for _, _, shift in got for axis in np.flatnonzero(~pbc))


def test_molecule_without_cell() -> None:
    positions = np.random.default_rng(4).random((12, 3)) * 4.0
    expected = brute_force(positions, np.zeros((3, 3)), np.zeros(3, dtype=bool), 2.5)
    got = _as_pairs(positions, np.zeros((3, 3)), np.zeros(3, dtype=bool), 2.5)
    assert set(got) == set(expected) and all(shift == (0, 0, 0) for _, _, shift in got)
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), rtol=1e-12)


def test_full_list_is_symmetric() -> None:
    cell, pbc, cutoff, n_atoms = CASES["triclinic"]
    pairs = _as_pairs(_random_positions(cell, n_atoms, 0), cell, np.asarray(pbc), cutoff)
    assert all((j, i, tuple(-s for s in shift)) in pairs for i, j, shift in pairs)


def test_unwrapped_positions_outside_the_cell() -> None:
    cell, pbc, cutoff, n_atoms = CASES["triclinic"]
    positions = _random_positions(cell, n_atoms, 5)
    positions[::3] += 3 * cell[0] - 2 * cell[2]  # as in an unwrapped MD trajectory
    expected = brute_force(positions, cell, np.asarray(pbc), cutoff)
    got = _as_pairs(positions, cell, np.asarray(pbc), cutoff)
    assert set(got) == set(expected)
