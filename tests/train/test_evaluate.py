"""Evaluation metrics, parity plots and the energy-reference refit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import ase
import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from torch_geometric.data import Batch

from lam.data.graph import AtomicGraph
from lam.model.config import HeadSpec, preset
from lam.model.lam import LAM
from lam.train.evaluate import error_metrics, evaluate, format_table, predict
from lam.train.refit import model_energies, rank_heads, refit_energy_references

torch.set_num_threads(1)


def tiny_model(heads: tuple[str, ...] = ("a", "b"), seed: int = 0) -> LAM:
    """A float64 student model whose heads know Al and Cu (references set)."""
    torch.manual_seed(seed)
    config = dataclasses.replace(preset("student"), heads=tuple(HeadSpec(h) for h in heads))
    model = LAM(config).double()
    for head in model.heads.values():
        head.set_energy_references({13: -3.0, 29: -4.0})
    return model


def alloy_frames(n: int, seed: int = 0) -> list[ase.Atoms]:
    """Rattled 4-atom fcc Al/Cu cells of varied composition (periodic)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
        atoms.numbers[: i % 5] = 13  # 0..4 Al atoms: compositions span both elements
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        frames.append(atoms)
    return frames


def emt_labelled(frames: list[ase.Atoms]) -> list[ase.Atoms]:
    for atoms in frames:
        atoms.calc = EMT()
        atoms.calc = SinglePointCalculator(
            atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces()
        )
    return frames


def model_labelled(
    model: LAM, head: str, frames: list[ase.Atoms], shift: dict[int, float]
) -> list[ase.Atoms]:
    """Frames labelled by the model's own head, energies shifted by ``shift[Z]`` per atom."""
    for atoms in frames:
        graph = Batch.from_data_list([AtomicGraph.from_atoms(atoms, model.cutoff)])
        pred = model(graph, head=head)
        offset = sum(shift[int(z)] for z in atoms.numbers)
        atoms.calc = SinglePointCalculator(
            atoms, energy=float(pred.energy.detach()[0]) + offset, forces=pred.forces.detach().numpy()
        )
    return frames


def test_refit_recovers_a_known_per_element_shift_exactly() -> None:
    model = tiny_model()
    shift = {13: 0.37, 29: -1.25}
    frames = model_labelled(model, "a", alloy_frames(8), shift)
    result = refit_energy_references(model, frames, "a")
    assert result.shifts == pytest.approx(shift, abs=1e-8)
    assert model.heads["a"].energy_references() == pytest.approx({13: -3.0 + 0.37, 29: -4.0 - 1.25}, abs=1e-8)
    assert model.heads["b"].energy_references() == {13: -3.0, 29: -4.0}  # other heads untouched
    targets = np.array([a.get_potential_energy() for a in frames])
    assert np.allclose(model_energies(model, frames, "a"), targets, atol=1e-8)


def test_refit_lowers_the_step0_energy_error_on_emt_data() -> None:
    model = tiny_model()
    frames = emt_labelled(alloy_frames(10))
    before = error_metrics(predict(model, frames, "a"))["energy_mae_per_atom"]
    refit_energy_references(model, frames, "a")
    after = error_metrics(predict(model, frames, "a"))["energy_mae_per_atom"]
    assert after < 0.2 * before, (before, after)


def test_refit_without_energy_labels_is_an_error() -> None:
    with pytest.raises(ValueError, match="energy label"):
        refit_energy_references(tiny_model(), alloy_frames(3), "a")


def test_rank_heads_picks_the_head_that_made_the_labels_and_restores_references() -> None:
    model = tiny_model(("a", "b", "c"))
    frames = model_labelled(model, "b", alloy_frames(6), {13: 2.0, 29: -1.0})
    ranking = rank_heads(model, frames)
    assert ranking[0][0] == "b"
    assert ranking[0][1]["force_rmse"] < 1e-10 < ranking[1][1]["force_rmse"]
    assert ranking[0][1]["energy_mae_per_atom"] < 1e-8  # refit inside the ranking absorbs the shift
    assert all(h.energy_references() == {13: -3.0, 29: -4.0} for h in model.heads.values())


def test_metrics_are_exact_on_self_labelled_frames_and_masks_missing_labels() -> None:
    model = tiny_model()
    frames = model_labelled(model, "a", alloy_frames(4), {13: 0.0, 29: 0.1})
    frames.append(alloy_frames(1, seed=9)[0])  # unlabelled: must not count
    metrics = evaluate(model, frames, ["a"])["a"]
    assert metrics["n_frames_energy"] == 4
    assert metrics["n_atoms_forces"] == 16
    assert metrics["force_rmse"] == pytest.approx(0.0, abs=1e-10)
    assert metrics["energy_mae_per_atom"] == pytest.approx(expected_mae(frames[:4]), abs=1e-9)
    assert metrics["stress_rmse"] is None  # no stress labels: no number, not 0
    assert "a" in format_table({"a": metrics})


def expected_mae(frames: list[ase.Atoms]) -> float:
    """MAE per atom of a 0.1 eV shift on Cu atoms only."""
    return float(np.mean([0.1 * np.sum(a.numbers == 29) / len(a) for a in frames]))


def test_evaluate_writes_a_parity_plot(tmp_path: Path) -> None:
    model = tiny_model()
    frames = emt_labelled(alloy_frames(3))
    evaluate(model, frames, ["a", "b"], plot_dir=tmp_path)
    for head in ("a", "b"):
        png = tmp_path / f"parity_{head}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
