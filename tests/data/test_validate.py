"""validate_atoms: every kind of bad frame is caught and named (source, frame index, field)."""

from __future__ import annotations

import ase
import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from lam.data.validate import InvalidFrameError, validate_atoms


def _h2(**results: object) -> ase.Atoms:
    atoms = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def _raises(atoms: ase.Atoms, field: str, **kwargs: object) -> InvalidFrameError:
    with pytest.raises(InvalidFrameError) as info:
        validate_atoms(atoms, "some/file.extxyz", 7, **kwargs)
    error = info.value
    assert (error.source, error.index, error.field) == ("some/file.extxyz", 7, field)
    assert str(error).startswith(f"some/file.extxyz frame 7: field '{field}': ")
    return error


def test_good_frames_pass(frames: list[ase.Atoms]) -> None:
    for k, atoms in enumerate(frames):
        validate_atoms(atoms, "frames", k)
    validate_atoms(_h2(), "unlabelled", 0)  # labels are optional


@pytest.mark.parametrize(
    ("results", "field"),
    [
        ({"energy": float("nan")}, "energy"),
        ({"energy": float("inf")}, "energy"),
        ({"energy": -1.0, "forces": np.array([[0, 0, np.nan], [0, 0, 0]])}, "forces"),
        ({"energy": -1.0, "forces": np.zeros((3, 3))}, "forces"),
        ({"energy": -1.0, "forces": np.zeros(6)}, "forces"),
        ({"energy": -1.0, "stress": np.zeros(5)}, "stress"),
        ({"energy": -1.0, "stress": np.array([0, 0, 0, 0, 0, np.inf])}, "stress"),
    ],
)
def test_bad_labels(results: dict, field: str) -> None:
    _raises(_h2(**results), field)


def test_non_numeric_energy() -> None:
    atoms = _h2()
    atoms.info["energy"] = "n/a"
    assert "not numeric" in _raises(atoms, "energy").reason


def test_required_label_missing() -> None:
    assert _raises(_h2(energy=-1.0), "forces", required=("energy", "forces")).reason == "missing"


@pytest.mark.parametrize("z", [0, 119])
def test_unknown_element(z: int) -> None:
    atoms = _h2()
    atoms.numbers[0] = z
    assert str(z) in _raises(atoms, "atomic_numbers").reason


def test_non_finite_position() -> None:
    atoms = _h2()
    atoms.positions[1, 2] = np.nan
    _raises(atoms, "positions")


def test_too_close_molecule_and_threshold() -> None:
    atoms = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.3]])
    assert "0.3000 Å" in _raises(atoms, "positions").reason
    validate_atoms(atoms, "f", 0, min_distance=0.2)
    validate_atoms(atoms, "f", 0, min_distance=0.0)


def test_too_close_across_periodic_boundary() -> None:
    atoms = ase.Atoms("H2", positions=[[0.1, 1, 1], [4.8, 1, 1]], cell=np.eye(3) * 5.0, pbc=True)
    assert "periodic image" in _raises(atoms, "positions").reason
    atoms.pbc = False  # without periodicity the same atoms are 4.7 Å apart
    validate_atoms(atoms, "f", 0)


def test_own_image_too_close_in_tiny_cell() -> None:
    atoms = ase.Atoms("H", positions=[[0, 0, 0]], cell=np.eye(3) * 0.4, pbc=True)
    _raises(atoms, "positions")


def test_slab_across_non_periodic_axis_is_fine() -> None:
    # z is not periodic: the atoms at z=0.1 and z=4.8 are not neighbours through the cell.
    atoms = ase.Atoms(
        "H2", positions=[[1, 1, 0.1], [1, 1, 4.8]], cell=np.eye(3) * 5.0, pbc=[True, True, False]
    )
    validate_atoms(atoms, "f", 0)


def test_slab_without_vector_along_non_periodic_axis() -> None:
    atoms = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=np.diag([4.0, 4.0, 0.0]), pbc=[1, 1, 0])
    validate_atoms(atoms, "f", 0)


def test_periodic_without_cell() -> None:
    atoms = _h2()
    atoms.pbc = True
    _raises(atoms, "cell")
    atoms.pbc = [True, False, False]
    _raises(atoms, "cell")


def test_singular_cell() -> None:
    atoms = _h2()
    atoms.cell = [[3, 0, 0], [0, 3, 0], [3, 3, 0]]
    atoms.pbc = True
    assert "singular" in _raises(atoms, "cell").reason
