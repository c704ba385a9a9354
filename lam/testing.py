"""Reusable physics tests for any lam model configuration (the NequIP/torch-sim test-mixin idea).

Subclass :class:`ModelPhysicsTests` in a test file and set ``config``::

    class TestStudentPhysics(ModelPhysicsTests):
        config = preset("student")

Every test builds a seeded float64 model and checks a law of physics or a contract of the model, with
the named tolerances of :class:`Tolerances`. Structure generators are public for reuse.
"""

from __future__ import annotations

from dataclasses import dataclass

import ase
import numpy as np
import torch
from ase.build import bulk, molecule
from torch_geometric.data import Batch

from lam.data.graph import AtomicGraph
from lam.model.config import DPA2Config, LAMConfig
from lam.model.lam import LAM
from lam.model.outputs import Predictions


@dataclass(frozen=True)
class Tolerances:
    """Named float64 tolerances (absolute, eV / eV/Å / eV/Å^3)."""

    invariance: float = 1e-9
    finite_difference_force: float = 1e-6
    finite_difference_stress: float = 1e-7
    cutoff_continuity: float = 1e-7
    nve_drift_per_atom: float = 2e-4  # eV/atom over the short run below


TOL = Tolerances()


# ---- structures ---------------------------------------------------------------------------------
def periodic_alloy(seed: int = 0, repeat: int = 2) -> ase.Atoms:
    """A rattled, slightly sheared fcc Cu-Au cell (periodic, triclinic; small enough to see own images)."""
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True) * (repeat, repeat, repeat)
    rng = np.random.default_rng(seed)
    atoms.numbers[rng.random(len(atoms)) < 0.4] = 79
    atoms.set_cell(atoms.cell.array @ np.array([[1, 0.04, 0], [0, 1, 0.03], [0.02, 0, 1]]), scale_atoms=True)
    atoms.rattle(0.08, seed=seed)
    return atoms


def organic_molecule() -> ase.Atoms:
    """Ethanol, non-periodic, slightly distorted."""
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.03, seed=3)
    return atoms


def slab_with_adsorbate() -> ase.Atoms:
    """A Pt(111)-like slab with an O adatom and vacuum along c: mixed periodicity (T, T, F)."""
    from ase.build import add_adsorbate, fcc111

    atoms = fcc111("Pt", size=(2, 2, 3), vacuum=6.0)
    add_adsorbate(atoms, "O", 1.2, "fcc")
    atoms.pbc = (True, True, False)
    atoms.rattle(0.02, seed=5)
    return atoms


FCC_LATTICE = {"Cu": 3.61, "Al": 4.05, "Ni": 3.52}  # Å, EMT-friendly metals


def emt_labelled_cells(symbol: str, n: int, seed: int, stress: bool = True) -> list[ase.Atoms]:
    """``n`` rattled, slightly strained 4-atom fcc cells of ``symbol`` labelled by ASE's EMT.

    Labels (energy, forces, and stress unless ``stress=False``) sit in a ``SinglePointCalculator``;
    ``info["frame_id"]`` is ``"<symbol>#<index>"``. Small, real training data for tests.
    """
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(seed)
    frames = []
    for index in range(n):
        atoms = bulk(symbol, "fcc", a=FCC_LATTICE[symbol] * (1 + 0.02 * rng.standard_normal()), cubic=True)
        atoms.rattle(0.08, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        labels = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        if stress:
            labels["stress"] = atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, **labels)
        atoms.info["frame_id"] = f"{symbol}#{index}"
        frames.append(atoms)
    return frames


# ---- helpers --------------------------------------------------------------------------------------
def build_model(config: LAMConfig, seed: int = 0) -> LAM:
    """A seeded float64 model in eval mode with non-trivial element references."""
    torch.manual_seed(seed)
    model = LAM(config).double().eval()
    for head in model.heads.values():
        head.set_energy_references({1: -13.6, 6: -1030.0, 8: -2040.0, 29: -3.7, 78: -6.0, 79: -3.2})
    return model


def predict(model: LAM, frames: list[ase.Atoms], stress: bool = False) -> Predictions:
    """Run the model on a list of frames as one batch."""
    graphs = [AtomicGraph.from_atoms(a, model.cutoff) for a in frames]
    return model(Batch.from_data_list(graphs), compute_forces=True, compute_stress=stress)


def energy_of(model: LAM, atoms: ase.Atoms) -> float:
    """Total energy of one frame, eV."""
    graph = AtomicGraph.from_atoms(atoms, model.cutoff)
    return float(model(Batch.from_data_list([graph]), compute_forces=False).energy.detach()[0])


def cutoffs_of(config: LAMConfig) -> list[float]:
    """Every cutoff radius the descriptor uses (each must be crossed smoothly)."""
    d = config.descriptor
    if isinstance(d, DPA2Config):
        radii = [d.repinit_cutoff, d.repformer_cutoff]
        return radii + ([d.three_body_cutoff] if d.use_three_body else [])
    return [d.cutoff]


def random_rotation(seed: int) -> np.ndarray:
    """A random proper rotation matrix."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


# ---- the mixin ------------------------------------------------------------------------------------
class ModelPhysicsTests:
    """Physics and contract tests every model configuration must pass; set ``config`` in a subclass."""

    config: LAMConfig
    tol: Tolerances = TOL
    # frozen weights (as the ASE calculator holds them) take the hand-written inference derivatives
    frozen: bool = False

    def model(self) -> LAM:
        """A fresh seeded float64 model of this configuration."""
        return build_model(self.config).for_inference(self.frozen)

    def test_rotation_translation_invariance(self) -> None:
        """E is invariant and F equivariant under a rigid rotation and translation (cell rotated too)."""
        model = self.model()
        for atoms in (periodic_alloy(), organic_molecule(), slab_with_adsorbate()):
            rotation = random_rotation(7)
            moved = atoms.copy()
            moved.positions = atoms.positions @ rotation.T + np.array([0.3, -1.2, 2.1])
            moved.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
            ref, out = predict(model, [atoms]), predict(model, [moved])
            assert abs(float((ref.energy - out.energy).detach())) < self.tol.invariance * len(atoms)
            rotated_forces = ref.forces.detach().numpy() @ rotation.T
            np.testing.assert_allclose(
                out.forces.detach().numpy(), rotated_forces, atol=self.tol.invariance * 10
            )

    def test_permutation_invariance(self) -> None:
        """Reordering atoms permutes forces and leaves the energy unchanged."""
        model = self.model()
        atoms = periodic_alloy()
        order = np.random.default_rng(1).permutation(len(atoms))
        ref, out = predict(model, [atoms]), predict(model, [atoms[order]])
        assert abs(float((ref.energy - out.energy).detach())) < self.tol.invariance * len(atoms)
        np.testing.assert_allclose(out.forces.detach().numpy(), ref.forces.detach().numpy()[order], atol=1e-9)

    def test_forces_are_finite_differences_of_energy(self) -> None:
        """F = -dE/dx, checked by central differences on several coordinates of three systems."""
        model = self.model()
        h = 1e-4
        for atoms in (periodic_alloy(), organic_molecule(), slab_with_adsorbate()):
            forces = predict(model, [atoms]).forces.detach().numpy()
            for atom, axis in [(0, 0), (1, 2), (len(atoms) - 1, 1)]:
                plus, minus = atoms.copy(), atoms.copy()
                plus.positions[atom, axis] += h
                minus.positions[atom, axis] -= h
                numeric = -(energy_of(model, plus) - energy_of(model, minus)) / (2 * h)
                assert abs(numeric - forces[atom, axis]) < self.tol.finite_difference_force * max(
                    1.0, abs(numeric)
                ), (atom, axis, numeric, forces[atom, axis])

    def test_stress_is_finite_difference_of_strain(self) -> None:
        """σ = (1/V) dE/dε by central differences of a homogeneous strain (ASE sign)."""
        model = self.model()
        atoms = periodic_alloy()
        stress = predict(model, [atoms], stress=True).stress.detach().numpy()[0]
        h = 1e-5
        for i, j in [(0, 0), (1, 2), (2, 1), (0, 1)]:
            energies = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[i, j] += sign * h / 2
                strain[j, i] += sign * h / 2
                strained = atoms.copy()
                strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
                energies.append(energy_of(model, strained))
            numeric = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
            assert abs(numeric - stress[i, j]) < self.tol.finite_difference_stress, (
                i,
                j,
                numeric,
                stress[i, j],
            )

    def test_supercell_is_extensive(self) -> None:
        """A 2x1x2 supercell has 4x the energy and the same per-atom forces."""
        model = self.model()
        atoms = periodic_alloy()
        big = atoms * (2, 1, 2)
        small_out, big_out = predict(model, [atoms]), predict(model, [big])
        assert abs(float(big_out.energy.detach()) - 4 * float(small_out.energy.detach())) < 1e-8 * len(big)
        np.testing.assert_allclose(
            big_out.forces.detach().numpy()[: len(atoms)], small_out.forces.detach().numpy(), atol=1e-9
        )

    def test_continuous_across_every_cutoff(self) -> None:
        """Energy and forces are continuous when a neighbour crosses each cutoff radius."""
        model = self.model()
        for cutoff in cutoffs_of(self.config):
            values = []
            for distance in (cutoff - 1e-6, cutoff + 1e-6):
                trimer = ase.Atoms("CuAuCu", positions=[[0, 0, 0], [2.4, 0, 0], [-distance, 0.0, 0.0]])
                out = predict(model, [trimer])
                values.append((float(out.energy.detach()), out.forces.detach().numpy()))
            assert abs(values[0][0] - values[1][0]) < self.tol.cutoff_continuity, cutoff
            np.testing.assert_allclose(values[0][1], values[1][1], atol=1e-5)

    def test_batch_equals_frames_one_at_a_time(self) -> None:
        """Batching frames of different sizes and periodicities changes nothing."""
        model = self.model()
        frames = [periodic_alloy(), organic_molecule(), slab_with_adsorbate()]
        batched = predict(model, frames, stress=True)
        start = 0
        for k, atoms in enumerate(frames):
            alone = predict(model, [atoms], stress=True)
            assert abs(float((batched.energy[k] - alone.energy[0]).detach())) < 1e-9 * len(atoms)
            np.testing.assert_allclose(
                batched.forces[start : start + len(atoms)].detach().numpy(),
                alone.forces.detach().numpy(),
                atol=1e-9,
            )
            np.testing.assert_allclose(
                batched.stress[k].detach().numpy(), alone.stress[0].detach().numpy(), atol=1e-10
            )
            start += len(atoms)

    def test_no_gradient_leaks_between_frames(self) -> None:
        """The energy of one frame does not depend on the positions of another frame in the batch."""
        model = self.model()
        frames = [organic_molecule(), periodic_alloy()]
        graphs = [AtomicGraph.from_atoms(a, model.cutoff) for a in frames]
        batch = Batch.from_data_list(graphs)
        batch.pos.requires_grad_(True)
        out = model(batch, compute_forces=False)
        (grad,) = torch.autograd.grad(out.energy[0], batch.pos)
        assert torch.count_nonzero(grad[len(frames[0]) :]) == 0
        assert torch.count_nonzero(grad[: len(frames[0])]) > 0

    def test_isolated_atom_gives_element_reference(self) -> None:
        """An atom with no neighbours has exactly its head's element reference energy, and zero force."""
        model = self.model()
        for symbol, reference in (("Cu", -3.7), ("O", -2040.0), ("H", -13.6)):
            out = predict(model, [ase.Atoms(symbol, positions=[[0.0, 0.0, 0.0]])])
            assert abs(float(out.energy.detach()) - reference) < 1e-9
            assert torch.count_nonzero(out.forces) == 0
            assert torch.isfinite(out.energy).all()

    def test_save_and_load_give_identical_outputs(self, tmp_path: object) -> None:
        """save_pretrained -> from_pretrained (strict, safetensors) reproduces outputs bit for bit."""
        model = self.model()
        model.save_pretrained(tmp_path)
        loaded = LAM.from_pretrained(str(tmp_path)).eval().for_inference(self.frozen)
        assert loaded.config == model.config
        frames = [periodic_alloy(), organic_molecule()]
        a, b = predict(model, frames), predict(loaded, frames)
        assert torch.equal(a.energy, b.energy) and torch.equal(a.forces, b.forces)

    def test_nve_conserves_energy(self) -> None:
        """Velocity Verlet (ASE) with the model's forces conserves total energy."""
        from ase import units
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
        from ase.md.verlet import VelocityVerlet

        from lam.calculator import LAMCalculator

        atoms = periodic_alloy()
        atoms.calc = LAMCalculator(self.model())
        MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
        dynamics = VelocityVerlet(atoms, timestep=1.0 * units.fs)
        totals = []
        for _ in range(40):
            dynamics.run(1)
            totals.append(atoms.get_total_energy())
        drift = (max(totals) - min(totals)) / len(atoms)
        assert drift < self.tol.nve_drift_per_atom, drift
