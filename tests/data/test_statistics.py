"""Per-element energy references, force RMS, neighbour counts and the stats cache."""

import json
import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from lam.data.statistics import (
    cached_statistics,
    compute_statistics,
    fit_energy_references,
    fit_per_element,
    fit_reference_correction,
    force_rms,
    mean_neighbor_count,
    stats_path,
)

TRUE_REFS = {1: -13.6, 6: -1030.5, 8: -2041.0, 29: -0.25}


def _frame(numbers, energy, forces=None, head=None):
    atoms = Atoms(numbers=numbers, positions=np.arange(3 * len(numbers)).reshape(-1, 3) * 1.5)
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    if head:
        atoms.info["head"] = head
    return atoms


def _synthetic(rng, elements, n_frames, refs=TRUE_REFS):
    frames = []
    for _ in range(n_frames):
        numbers = rng.choice(elements, size=rng.integers(2, 12))
        frames.append(_frame(numbers, sum(refs[int(z)] for z in numbers)))
    return frames


def test_references_recover_known_values_exactly():
    frames = _synthetic(np.random.default_rng(0), [1, 6, 8, 29], 40)
    refs = fit_energy_references(frames)
    assert set(refs) == {1, 6, 8, 29}
    for z, e in refs.items():
        assert e == pytest.approx(TRUE_REFS[z], abs=1e-9)


def test_missing_elements_get_no_reference():
    refs = fit_energy_references(_synthetic(np.random.default_rng(1), [1, 8], 10))
    assert set(refs) == {1, 8}
    assert refs[8] == pytest.approx(TRUE_REFS[8], abs=1e-9)


def test_rank_deficient_fixed_ratio_is_reported_and_min_norm():
    # Only water: H and O always in ratio 2:1, so only 2 e_H + e_O is determined.
    frames = [_frame([1, 1, 8] * k, k * (2 * TRUE_REFS[1] + TRUE_REFS[8])) for k in (1, 2, 3)]
    with pytest.warns(UserWarning, match="rank 1 < 2"):
        refs = fit_energy_references(frames)
    assert 2 * refs[1] + refs[8] == pytest.approx(2 * TRUE_REFS[1] + TRUE_REFS[8], abs=1e-9)
    # min-norm solution of [2, 1] . e = c is e = c [2, 1] / 5
    assert refs[1] == pytest.approx(2 * refs[8], rel=1e-9)


def test_full_rank_does_not_warn_and_ridge_shrinks():
    frames = _synthetic(np.random.default_rng(2), [1, 8], 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = fit_energy_references(frames)
    ridged = fit_energy_references(frames, ridge=1.0)
    assert sum(v**2 for v in ridged.values()) < sum(v**2 for v in plain.values())


def test_frames_without_energy_are_ignored():
    frames = _synthetic(np.random.default_rng(3), [1, 6], 8)
    frames.append(Atoms("C2"))  # no calculator, no energy
    refs = fit_energy_references(frames)
    assert refs[6] == pytest.approx(TRUE_REFS[6], abs=1e-9)


def test_reference_correction_recovers_per_element_shift():
    rng = np.random.default_rng(4)
    numbers = [rng.choice([1, 6, 8], size=rng.integers(3, 9)) for _ in range(20)]
    shift = {1: 0.3, 6: -1.2, 8: 2.0}
    residual = np.array([sum(shift[int(z)] for z in n) for n in numbers])
    fit = fit_reference_correction(residual, numbers)
    assert not fit.rank_deficient and fit.rms_residual_per_atom < 1e-10
    assert fit.references == pytest.approx(shift, abs=1e-9)


def test_fit_needs_frames():
    with pytest.raises(ValueError, match="at least one frame"):
        fit_per_element([], np.array([]))


def test_force_rms_and_neighbor_count():
    forces = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    assert force_rms([_frame([1, 1], -1.0, forces)]) == pytest.approx(np.sqrt(5 / 6))
    assert force_rms([_frame([1, 1], -1.0)]) is None
    # fcc: 12 nearest neighbours at a/sqrt(2) = 2.55 Å for Cu; a 3 Å cutoff catches exactly those.
    assert mean_neighbor_count([bulk("Cu", "fcc", a=3.61)], 3.0) == pytest.approx(12.0)
    assert mean_neighbor_count([bulk("Cu", "fcc", a=3.61, cubic=True)], 3.0) == pytest.approx(12.0)


def test_statistics_grouped_by_head_and_cached(tmp_path):
    rng = np.random.default_rng(5)
    frames = _synthetic(rng, [1, 8], 6)
    for atoms in frames[:3]:
        atoms.info["head"] = "a"
    stats = compute_statistics(frames, cutoff=2.0, default_head="b")
    assert set(stats) == {"a", "b"} and stats["a"]["frames"] == 3
    assert json.loads(json.dumps(stats)) == stats  # JSON-able

    data = tmp_path / "frames.xyz"
    data.write_text("stand-in data file")
    first = cached_statistics(data, frames=frames, cutoff=2.0)
    assert stats_path(data).is_file()
    # Same checksum: served from the cache even with different frames passed.
    assert cached_statistics(data, frames=frames[:1], cutoff=2.0) == first
    data.write_text("changed data file")
    assert cached_statistics(data, frames=frames[:1], cutoff=2.0)["heads"]["a"]["frames"] == 1


def test_references_from_training_dataset_per_head(tmp_path):
    from lam.data.training_format import load_training_dataset, write_training_dataset

    rng = np.random.default_rng(6)
    frames = _synthetic(rng, [1, 6, 8], 12)
    other = {1: 5.0, 6: 6.0, 8: 7.0}  # a second level of theory with other references
    frames += _synthetic(rng, [1, 6, 8], 12, refs=other)
    for k, atoms in enumerate(frames):
        atoms.info["head"] = "first" if k < 12 else "second"
    dataset = load_training_dataset(write_training_dataset(frames, tmp_path / "ds", head="unused"))
    assert fit_energy_references(dataset, head="first") == pytest.approx({z: TRUE_REFS[z] for z in other})
    assert fit_energy_references(dataset, head="second") == pytest.approx(other)
    stats = compute_statistics(dataset, cutoff=2.0)
    assert stats["second"]["energy_references_eV"] == pytest.approx({"H": 5.0, "C": 6.0, "O": 7.0})
