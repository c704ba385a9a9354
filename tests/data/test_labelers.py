"""Reference labellers: results equal the calculator's own, forces are -dE/dx, failures name the frame."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tblite/pyscf: the 2 shared cores, no oversubscription

import numpy as np
import pytest
from ase.build import bulk, fcc111, molecule
from ase.calculators.calculator import CalculationFailed
from ase.calculators.emt import EMT
from ase.calculators.fd import calculate_numerical_forces

from lam.data.labelers import LabelingError, label_frames, level_of_theory, make_calculator


def _rattled_cu(seed=0):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.rattle(0.05, rng=np.random.default_rng(seed))
    return atoms


def test_emt_labels_match_calculator_and_finite_differences():
    atoms = _rattled_cu()
    (labelled,) = label_frames([atoms], "emt", progress=False)
    direct = atoms.copy()
    direct.calc = EMT()
    assert labelled.get_potential_energy() == pytest.approx(direct.get_potential_energy(), abs=1e-12)
    np.testing.assert_allclose(labelled.get_stress(voigt=False), direct.get_stress(voigt=False), atol=1e-12)
    fd = calculate_numerical_forces(direct, eps=1e-4, iatoms=range(4))
    np.testing.assert_allclose(labelled.get_forces()[:4], fd, atol=1e-5)
    assert atoms.calc is None  # the input frame is not modified


def test_slab_gets_no_stress_and_molecule_none_either():
    slab = fcc111("Pt", (2, 2, 3), vacuum=6.0)
    slab.pbc = (True, True, False)
    labelled = label_frames([slab, molecule("H2O")], "emt", progress=False)
    assert all("stress" not in a.calc.results for a in labelled)
    assert labelled[0].get_forces().shape == (12, 3)


def test_gfn2_xtb_molecule_forces_are_minus_gradient():
    atoms = molecule("CH3OH")
    atoms.rattle(0.03, rng=np.random.default_rng(1))
    labelled, water = label_frames([atoms, molecule("H2O")], "gfn2-xtb", progress=False)
    direct = atoms.copy()
    direct.calc = make_calculator("gfn2-xtb")
    assert labelled.get_potential_energy() == pytest.approx(direct.get_potential_energy(), abs=1e-8)
    fresh = molecule("H2O")  # the shared calculator must reset when the composition changes
    fresh.calc = make_calculator("gfn2-xtb")
    assert water.get_potential_energy() == pytest.approx(fresh.get_potential_energy(), abs=1e-8)
    fd = calculate_numerical_forces(direct, eps=1e-3, iatoms=[0, 1])
    np.testing.assert_allclose(labelled.get_forces()[:2], fd, atol=2e-3)


def test_pyscf_energy_and_forces_in_ev():
    from pyscf import lib

    lib.num_threads(1)
    atoms = molecule("H2")
    atoms.positions[1, 2] += 0.05  # stretched: a non-zero force along the bond
    (labelled,) = label_frames([atoms], "pyscf:pbe/sto-3g", progress=False)
    energy = labelled.get_potential_energy()
    assert -32.0 < energy < -30.0  # about -1.15 Hartree
    direct = atoms.copy()
    direct.calc = make_calculator("pyscf:pbe/sto-3g")
    fd = calculate_numerical_forces(direct, eps=1e-3, iatoms=[1], icarts=[2])
    assert labelled.get_forces()[1, 2] == pytest.approx(fd[0, 0], abs=2e-3)
    assert labelled.get_forces()[1, 2] < 0  # pulled back towards the other atom


def test_failure_raises_with_frame_index():
    ok, bad = bulk("Cu"), bulk("Fe")  # EMT has no parameters for Fe
    bad.info["frame_id"] = "metals.xyz#7"
    with pytest.raises(LabelingError, match=r"frame 1 \(metals.xyz#7\): calculator 'emt' failed"):
        label_frames([ok, bad], "emt", progress=False)


def test_pyscf_refuses_periodic_frames():
    with pytest.raises(LabelingError, match="frame 0.*molecules only") as info:
        label_frames([bulk("Cu")], "pyscf:pbe/sto-3g", progress=False)
    assert isinstance(info.value.__cause__, CalculationFailed)


def test_specs_and_level_of_theory():
    assert level_of_theory("gfn1-xtb")["functional"] == "GFN1-xTB"
    pyscf = level_of_theory("pyscf:wb97x/6-31g*")
    assert (pyscf["functional"], pyscf["basis"]) == ("WB97X", "6-31g*")
    assert level_of_theory("emt")["code"].startswith("ase ")
    with pytest.raises(ValueError, match="unknown calculator spec 'dft'"):
        make_calculator("dft")
    with pytest.raises(ValueError, match="expected 'pyscf:<xc>/<basis>'"):
        make_calculator("pyscf:pbe")


def test_pyscf_unconverged_scf_raises():
    from pyscf import lib

    from lam.data.labelers import PySCFCalculator

    lib.num_threads(1)
    atoms = molecule("H2O")
    atoms.calc = PySCFCalculator("pbe", "sto-3g", max_cycle=1)
    with pytest.raises(CalculationFailed, match="SCF not converged in 1 cycles"):
        atoms.get_potential_energy()
