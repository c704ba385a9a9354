"""The DeePMD-style loss: masks, per-atom energy normalisation, prefactor schedule; LR schedules."""

import math

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from torch_geometric.data import Batch

from lam.data.graph import AtomicGraph
from lam.model.outputs import Predictions
from lam.train.losses import EnergyForceStressLoss
from lam.train.schedules import LRSchedule


def _graph(atoms, energy=None, forces=None, stress=None):
    atoms.calc = SinglePointCalculator(
        atoms, **{k: v for k, v in dict(energy=energy, forces=forces, stress=stress).items() if v is not None}
    )
    return AtomicGraph.from_atoms(atoms, cutoff=3.0)


@pytest.fixture
def batch():
    """Frame 0: Cu bulk (2 atoms) with energy+forces+stress; frame 1: H2O (3 atoms) with forces only."""
    cu = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    water = molecule("H2O")
    g0 = _graph(cu, energy=-8.0, forces=np.ones((2, 3)), stress=np.full(6, 0.01))
    g1 = _graph(water, forces=np.zeros((3, 3)))
    return Batch.from_data_list([g0, g1])


def _pred(energy, forces, stress):
    return Predictions(
        energy=torch.tensor(energy, dtype=torch.float64),
        node_energy=torch.zeros(5),
        forces=torch.tensor(forces, dtype=torch.float64),
        stress=torch.tensor(stress, dtype=torch.float64),
    )


def test_terms_are_masked_and_per_atom(batch):
    loss = EnergyForceStressLoss(1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    forces = np.zeros((5, 3))
    forces[:2] = 1.0 + 0.5  # error 0.5 on the Cu atoms
    forces[2:] = 100.0  # water has forces 0: error 100 counts
    stress = np.zeros((2, 3, 3))
    stress[1] = 50.0  # water has no stress label: must not count
    terms = loss(_pred([-8.0 + 2 * 0.3, 1e6], forces, stress), batch)
    assert math.isclose(float(terms.energy), 0.3**2)  # per atom; the unlabelled water energy is ignored
    assert math.isclose(float(terms.forces), (6 * 0.25 + 9 * 100.0**2) / 15)
    assert math.isclose(float(terms.stress), 0.01**2 * 5 / 9 + 0.01**2 * 4 / 9)  # pred 0 vs voigt 0.01
    assert math.isclose(float(terms.total), float(terms.energy + terms.forces + terms.stress))


def test_missing_labels_contribute_nothing_but_keep_the_graph(batch):
    batch.has_energy[:] = False
    batch.has_stress[:] = False
    energy = torch.tensor([5.0, 6.0], dtype=torch.float64, requires_grad=True)
    pred = Predictions(
        energy=energy,
        node_energy=torch.zeros(5),
        forces=torch.zeros(5, 3, dtype=torch.float64),
        stress=torch.zeros(2, 3, 3, dtype=torch.float64),
    )
    terms = EnergyForceStressLoss(1.0, 1.0, 0.0, 0.0, 1.0, 1.0)(pred, batch)
    assert float(terms.total) == 0.0
    terms.total.backward()  # connected to the prediction with a zero gradient
    assert torch.equal(energy.grad, torch.zeros(2, dtype=torch.float64))


def test_prefactors_follow_the_learning_rate_decay():
    loss = EnergyForceStressLoss(energy_start=0.02, energy_limit=1.0, forces_start=1000.0, forces_limit=1.0)
    assert loss.prefactors(1.0) == pytest.approx((0.02, 1000.0, 0.0))
    assert loss.prefactors(0.0) == pytest.approx((1.0, 1.0, 0.0))
    assert loss.prefactors(0.5) == pytest.approx((0.51, 500.5, 0.0))
    assert not loss.uses_stress
    with pytest.raises(ValueError, match="prefactors"):
        EnergyForceStressLoss(energy_start=-1.0)


def test_exponential_and_cosine_schedules_with_warmup():
    exp = LRSchedule("exp", warmup_steps=10, decay_steps=100, final_ratio=0.01)
    assert exp(0) == pytest.approx(0.1)  # first warmup step
    assert exp(9) == pytest.approx(1.0)
    assert exp.decay(5) == 1.0  # warmup does not move the loss prefactors
    assert exp(60) == pytest.approx(0.1)  # half-way through the decay: sqrt(0.01)
    assert exp(110) == pytest.approx(0.01) and exp(10_000) == pytest.approx(0.01)
    cos = LRSchedule("cosine", warmup_steps=0, decay_steps=100, final_ratio=0.1)
    assert cos(0) == pytest.approx(1.0)
    assert cos(50) == pytest.approx(0.55)
    assert cos(100) == pytest.approx(0.1)
    values = [cos(s) for s in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    with pytest.raises(ValueError, match="kind"):
        LRSchedule("linear")
    with pytest.raises(ValueError, match="final_ratio"):
        LRSchedule(final_ratio=0.0)
