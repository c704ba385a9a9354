"""LAM contract: heads, bad input, dtypes, loading."""

import ase
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from lam.data.graph import AtomicGraph
from lam.model.config import HeadSpec, preset
from lam.model.lam import LAM
from lam.testing import build_model, organic_molecule, periodic_alloy, predict


def test_unknown_head_lists_the_heads() -> None:
    model = build_model(preset("student"))
    with pytest.raises(KeyError, match="default"):
        predict_head(model, "pbe")


def predict_head(model: LAM, head: str) -> None:
    graph = AtomicGraph.from_atoms(organic_molecule(), model.cutoff)
    model(Batch.from_data_list([graph]), head=head)


def test_add_copy_and_drop_heads() -> None:
    model = build_model(preset("student"))
    model.add_head(HeadSpec("wb97x", level_of_theory="wB97X/6-31G(d)"), copy_from="default")
    graph = Batch.from_data_list([AtomicGraph.from_atoms(organic_molecule(), model.cutoff)])
    a, b = model(graph, head="default"), model(graph, head="wb97x")
    assert torch.equal(a.energy, b.energy)
    model.heads["wb97x"].set_energy_references({1: 0.0, 6: 0.0, 8: 0.0})
    assert not torch.equal(model(graph, head="wb97x").energy, a.energy)
    assert model.config.head_names == ("default", "wb97x")
    model.drop_head("default")
    assert model.config.head_names == ("wb97x",)
    with pytest.raises(ValueError, match="last head"):
        model.drop_head("wb97x")


def test_element_outside_periodic_table_is_rejected() -> None:
    model = build_model(preset("student"))
    graph = AtomicGraph.from_arrays(np.array([0, 1]), np.array([[0, 0, 0], [1.0, 0, 0]]), np.zeros((3, 3)),
                                    np.zeros(3, bool), cutoff=model.cutoff)
    with pytest.raises(ValueError, match="atomic numbers"):
        model(Batch.from_data_list([graph]))


def test_atoms_without_neighbours_give_finite_results() -> None:
    model = build_model(preset("student"))
    far_apart = ase.Atoms("CuOH", positions=[[0, 0, 0], [20, 0, 0], [0, 30, 0]])
    out = predict(model, [far_apart])
    assert torch.isfinite(out.energy).all() and torch.count_nonzero(out.forces) == 0
    assert abs(float(out.energy.detach()) - (-3.7 - 2040.0 - 13.6)) < 1e-9


def test_float32_agrees_with_float64() -> None:
    model64 = build_model(preset("student"))
    model32 = build_model(preset("student")).float()
    atoms = periodic_alloy()
    g64 = Batch.from_data_list([AtomicGraph.from_atoms(atoms, model64.cutoff)])
    g32 = Batch.from_data_list([AtomicGraph.from_atoms(atoms, model32.cutoff, dtype=torch.float32)])
    e64, e32 = model64(g64).energy.detach(), model32(g32).energy.detach()
    assert e32.dtype == torch.float32
    assert abs(float(e64) - float(e32)) < 1e-4 * abs(float(e64))


def test_loading_refuses_missing_weights(tmp_path) -> None:  # noqa: ANN001
    model = build_model(preset("student"))
    model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        LAM.from_pretrained(str(tmp_path))


def test_isolated_atom_features_follow_weight_changes_in_eval_mode() -> None:
    """The eval-mode cache of isolated-atom features is dropped when a descriptor weight changes."""
    model = build_model(preset("student")).eval()
    numbers = torch.tensor([1, 6, 8, 6])
    like = torch.zeros(1, 3, dtype=next(model.parameters()).dtype)
    cached = model.isolated_features(numbers, like)
    assert torch.equal(cached, model.train().isolated_features(numbers, like).detach())
    model.eval()
    with torch.no_grad():
        model.descriptor.type_embedding.table.weight.add_(0.1)
    changed = model.isolated_features(numbers, like)
    assert not torch.equal(changed, cached)
    assert torch.equal(changed, model.train().isolated_features(numbers, like).detach())
