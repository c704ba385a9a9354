"""lam.integrations.torchsim: a lam model as a TorchSim ModelInterface, equal to the calculator."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

ts = pytest.importorskip("torch_sim")

from torch_sim.models.interface import validate_model_outputs  # noqa: E402
from torch_sim.units import MetalUnits  # noqa: E402

from lam import LAM, LAMCalculator  # noqa: E402
from lam.integrations.torchsim import LAMModel  # noqa: E402

HEAD = "mptrj_random1k_pbe"  # covers H, C, O, Si, Fe, Cu, Au
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def lam_mini() -> LAM:
    return LAM.from_pretrained("lam-mini").double()


@pytest.fixture(scope="module")
def model(lam_mini: LAM) -> LAMModel:
    return LAMModel(lam_mini, HEAD, device="cpu", dtype=torch.float64)


def periodic_systems() -> list[Atoms]:
    """Three periodic systems of different sizes: Cu fcc, a CuAu cell, methanol in a vacuum box."""
    copper = bulk("Cu", "fcc", a=3.6, cubic=True)
    copper.rattle(0.05, seed=1)
    alloy = bulk("Cu", "fcc", a=3.8, cubic=True).repeat((2, 1, 1))
    alloy.numbers[::2] = 79
    alloy.rattle(0.05, seed=2)
    methanol = molecule("CH3OH", vacuum=6.0)
    methanol.pbc = True
    methanol.rattle(0.02, seed=3)
    return [copper, alloy, methanol]


def assert_equals_calculator(out: dict, frames: list[Atoms], calc: LAMCalculator, stress: bool) -> None:
    bounds = np.cumsum([0] + [len(atoms) for atoms in frames])
    for index, atoms in enumerate(frames):
        probe = atoms.copy()
        probe.calc = calc
        energy = float(out["energy"][index])
        assert energy == pytest.approx(probe.get_potential_energy(), abs=1e-6)
        forces = out["forces"][bounds[index]:bounds[index + 1]].numpy()
        np.testing.assert_allclose(forces, probe.get_forces(), atol=1e-6)
        assert np.abs(forces).max() > 1e-2  # rattled: a real comparison, not zeros against zeros
        if stress:
            np.testing.assert_allclose(out["stress"][index].numpy(), probe.get_stress(voigt=False), atol=1e-6)


def test_batched_systems_equal_the_calculator(model: LAMModel, lam_mini: LAM) -> None:
    frames = periodic_systems()
    state = ts.io.atoms_to_state(frames, CPU, torch.float64)
    out = model(state)
    assert out["energy"].shape == (3,)
    assert out["forces"].shape == (state.n_atoms, 3)
    assert out["stress"].shape == (3, 3, 3)
    calc = LAMCalculator(lam_mini, head=HEAD, skin=0.0)
    assert_equals_calculator(out, frames, calc, stress=True)
    assert np.abs(out["stress"][:2].numpy()).max() > 1e-3  # strained metal cells are under stress


def test_molecules_without_a_cell_equal_the_calculator(model: LAMModel, lam_mini: LAM) -> None:
    frames = [molecule("H2O"), molecule("CH4")]
    for atoms in frames:
        atoms.rattle(0.03, seed=4)
    state = ts.io.atoms_to_state(frames, CPU, torch.float64)
    assert not state.pbc
    out = model(state)
    assert_equals_calculator(out, frames, LAMCalculator(lam_mini, head=HEAD, skin=0.0), stress=False)
    assert torch.all(out["stress"] == 0)  # no cell, no stress (lam's convention)


def test_atoms_outside_the_cell_and_dict_input(model: LAMModel) -> None:
    """MD leaves positions unwrapped; TorchSim may also pass a plain dict of tensors."""
    state = ts.io.atoms_to_state(periodic_systems(), CPU, torch.float64)
    reference = model(state)
    shifted = state.clone()
    first = state.system_idx == 0
    shifted.positions[first] += state.row_vector_cell[0].sum(dim=0)  # one lattice vector of each kind
    as_dict = {
        "positions": shifted.positions, "cell": shifted.cell, "pbc": shifted.pbc,
        "atomic_numbers": shifted.atomic_numbers, "system_idx": shifted.system_idx,
    }
    out = model(as_dict)
    for key in ("energy", "forces", "stress"):
        torch.testing.assert_close(out[key], reference[key], atol=1e-10, rtol=0)


def test_follows_the_torchsim_model_contract(model: LAMModel) -> None:
    validate_model_outputs(model, CPU, torch.float64)  # TorchSim's own check: Si and Fe, batched vs single


def test_unseen_elements_are_refused(lam_mini: LAM) -> None:
    from lam.hub.coverage import UnseenElementError

    organic = LAMModel(lam_mini, "s66x8_wb97x", device="cpu")
    state = ts.io.atoms_to_state([bulk("Cu", "fcc", a=3.6)], CPU, torch.float64)
    with pytest.raises(UnseenElementError, match="Cu"):
        organic(state)


@pytest.mark.filterwarnings("ignore:Optimize has reached max steps")  # 40 steps on purpose, not convergence
def test_cell_relaxation_lowers_every_energy(model: LAMModel) -> None:
    """A FIRE relaxation of positions and cells through ``torch_sim.optimize``: stress drives the cells."""
    state = ts.io.atoms_to_state(periodic_systems()[:2], CPU, torch.float64)
    start = model(state)
    relaxed = ts.optimize(state, model, optimizer=ts.frechet_cell_fire, max_steps=40, steps_between_swaps=40)
    end = model(relaxed)["energy"]
    assert torch.all(end < start["energy"] - 0.01), (start["energy"], end)
    # ASE's sign: a cell under tension (positive trace) shrinks, one under compression grows
    tension = start["stress"].diagonal(dim1=-2, dim2=-1).sum(-1)  # [n_systems]
    assert torch.all(tension.abs() > 0.03), tension
    assert torch.equal(torch.sign(relaxed.volume - state.volume), -torch.sign(tension))


def test_nve_conserves_energy(model: LAMModel) -> None:
    """Velocity Verlet (TorchSim's NVE) at 1 fs in float64: total energy drifts far less than it moves."""
    state = ts.io.atoms_to_state(periodic_systems()[:2], CPU, torch.float64)
    femtosecond, kelvin = 0.001 * MetalUnits.time, MetalUnits.temperature  # TorchSim's metal units
    init, step = ts.nve(model=model, dt=torch.tensor(femtosecond), kT=torch.tensor(300 * kelvin), seed=0)
    state = init(state)

    def total(md) -> torch.Tensor:
        kinetic = ts.calc_kinetic_energy(masses=md.masses, momenta=md.momenta, system_idx=md.system_idx)
        return md.energy + kinetic  # [n_systems], eV

    start, potential = total(state), state.energy.clone()
    exchanged = torch.zeros_like(potential)  # [n_systems] largest potential-energy change on the way
    for _ in range(20):
        state = step(state)
        exchanged = torch.maximum(exchanged, (state.energy - potential).abs())
    drift = (total(state) - start).abs()
    assert torch.all(exchanged > 5e-3), exchanged  # kinetic and potential energy really traded
    assert torch.all(drift < 1e-4) and torch.all(drift < 0.01 * exchanged), (drift, exchanged)
