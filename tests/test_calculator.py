"""The ASE calculator: units, Voigt stress, agreement with ASE's numerical derivatives."""

import numpy as np
import pytest

from lam.calculator import LAMCalculator
from lam.model.config import preset
from lam.testing import build_model, organic_molecule, periodic_alloy


def test_forces_and_stress_match_ase_numerical_derivatives() -> None:
    atoms = periodic_alloy()
    calc = LAMCalculator(build_model(preset("student")))
    atoms.calc = calc
    forces = atoms.get_forces()
    stress = atoms.get_stress()  # Voigt, eV/Å^3
    np.testing.assert_allclose(forces[:3], calc.calculate_numerical_forces(atoms, d=1e-4)[:3], atol=1e-6)
    np.testing.assert_allclose(stress, calc.calculate_numerical_stress(atoms, d=1e-5), atol=1e-7)
    assert atoms.get_potential_energies().sum() == pytest.approx(atoms.get_potential_energy(), abs=1e-9)


def test_molecule_has_no_stress_but_energy_and_forces() -> None:
    atoms = organic_molecule()
    atoms.calc = LAMCalculator(build_model(preset("student")), dtype="float32")
    assert np.isfinite(atoms.get_potential_energy())
    assert atoms.get_forces().shape == (len(atoms), 3)


def test_multi_head_model_requires_a_head() -> None:
    from lam.model.config import HeadSpec

    model = build_model(preset("student"))
    model.add_head(HeadSpec("pbe"))
    with pytest.raises(ValueError, match="several heads"):
        LAMCalculator(model)
    assert LAMCalculator(model, head="pbe").head == "pbe"
