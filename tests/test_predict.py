"""lam.predict: batched prediction packed up to an atom budget, equal to the calculator frame by frame."""

import ase.build
import numpy as np
import pytest
from ase.build import bulk

import lam
from lam.calculator import LAMCalculator
from lam.model.config import preset
from lam.predict import iter_predict
from lam.testing import build_model, organic_molecule, periodic_alloy, slab_with_adsorbate


def mixed_frames() -> list[ase.Atoms]:
    """Frames of 3 to 16 atoms: bulk cells (stress), a molecule and a slab (none)."""
    alloy = periodic_alloy()
    small = bulk("Cu", "fcc", a=3.6, cubic=True)
    small.rattle(0.05, seed=3)
    return [alloy, organic_molecule(), small, slab_with_adsorbate(), periodic_alloy(seed=1)]


def test_lam_predict_takes_a_model_name() -> None:
    """The notebook one-liner: ``lam.predict("lam-mini", frames, head=...)``."""
    water = ase.build.molecule("H2O")
    [predicted] = lam.predict("lam-mini", [water], head="s66x8_wb97x")
    reference = water.copy()
    reference.calc = LAMCalculator("lam-mini", head="s66x8_wb97x", dtype="float32")
    energy = reference.get_potential_energy()
    assert predicted.get_potential_energy() == pytest.approx(energy, abs=1e-3)
    np.testing.assert_allclose(predicted.get_forces(), reference.get_forces(), atol=1e-4)
    assert np.abs(predicted.get_forces()).max() > 1e-3  # a bent molecule off its minimum has forces
    assert water.calc is None  # the input frame is left alone; the result is a copy


def test_batches_equal_the_calculator_frame_by_frame() -> None:
    model = build_model(preset("student"))
    frames = mixed_frames()
    batched = lam.predict(model, (atoms for atoms in frames), batch_atoms=20)  # a generator works
    calc = LAMCalculator(model, skin=0.0)
    for atoms, predicted in zip(frames, batched, strict=True):
        probe = atoms.copy()
        probe.calc = calc
        assert predicted.get_chemical_formula() == atoms.get_chemical_formula()
        assert predicted.get_potential_energy() == pytest.approx(probe.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(predicted.get_forces(), probe.get_forces(), atol=1e-10)
        per_atom = predicted.get_potential_energies()
        np.testing.assert_allclose(per_atom, probe.get_potential_energies(), atol=1e-10)
        if atoms.pbc.all():
            np.testing.assert_allclose(predicted.get_stress(), probe.get_stress(), atol=1e-10)
        else:
            assert "stress" not in predicted.calc.results


def test_frames_are_packed_up_to_the_atom_budget(monkeypatch) -> None:
    model = build_model(preset("student"))
    sizes = []
    forward = type(model).forward

    def counting(self, batch, *args, **kwargs):
        sizes.append(int(batch.num_nodes))
        return forward(self, batch, *args, **kwargs)

    monkeypatch.setattr(type(model), "forward", counting)
    frames = mixed_frames()
    list(iter_predict(model, frames, batch_atoms=20))
    lengths = [len(atoms) for atoms in frames]
    assert sum(sizes) == sum(lengths)
    assert len(sizes) < len(frames)  # some frames shared a batch
    assert all(size <= 20 or size in lengths for size in sizes)  # only a frame over budget goes alone
    sizes.clear()
    list(iter_predict(model, frames, batch_atoms=1))
    assert sizes == lengths
