"""Stratified holdouts: every config_type in proportion, and the fine-tuning split that uses them."""

import collections

import ase
import numpy as np
import pytest

from lam.data.splits import frame_groups, split_frames, stratified_holdout


def _groups() -> list[str]:
    # Ta-like: two big groups, some medium ones and a rare one (3 of 363)
    sizes = {"elastic": 200, "volume": 82, "gsf": 44, "displaced": 27, "surface": 7, "liquid": 3}
    return [name for name, size in sizes.items() for _ in range(size)]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_held", [10, 60, 120])
def test_holdout_represents_each_group_in_proportion(seed, n_held):
    groups = _groups()
    held = stratified_holdout(groups, n_held, seed)
    assert len(held) == len(set(held.tolist())) == n_held
    counts = collections.Counter(groups[i] for i in held)
    for name, size in collections.Counter(groups).items():
        assert abs(counts[name] - size * n_held / len(groups)) < 1.0


def test_holdout_is_seeded():
    groups = _groups()
    assert np.array_equal(stratified_holdout(groups, 60, 3), stratified_holdout(groups, 60, 3))
    assert not np.array_equal(stratified_holdout(groups, 60, 3), stratified_holdout(groups, 60, 4))


def _frames(groups: list[str | None]) -> list[ase.Atoms]:
    frames = []
    for index, group in enumerate(groups):
        atoms = ase.Atoms("H", positions=[[0.0, 0.0, 0.0]], info={"index": index})
        if group is not None:
            atoms.info["config_type"] = group
        frames.append(atoms)
    return frames


def test_frame_groups_needs_every_frame_labelled():
    assert frame_groups(_frames(["a", "b"])) == ["a", "b"]
    assert frame_groups(_frames(["a", None])) is None


def test_finetune_split_holds_out_each_config_type_in_proportion():
    groups = ["common"] * 180 + ["rare"] * 20
    split = split_frames(_frames(groups), val_fraction=0.1, test_fraction=0.1, seed=0)
    held = split.val + split.test
    assert (len(split.train), len(split.val), len(split.test)) == (160, 20, 20)
    assert sum(a.info["config_type"] == "rare" for a in held) == 4  # 20 * 40 / 200
    indices = [a.info["index"] for a in split.train + held]
    assert sorted(indices) == list(range(200))  # nothing dropped, nothing twice
    # validation and test are both drawn from the stratified holdout, not one group each
    assert {a.info["config_type"] for a in split.val} == {"common", "rare"}


def test_finetune_split_without_config_type_is_the_seeded_random_split():
    frames = _frames([None] * 50)
    split = split_frames(frames, val_fraction=0.1, test_fraction=0.1, seed=1)
    order = np.random.default_rng(1).permutation(50)
    assert [a.info["index"] for a in split.val] == order[:5].tolist()
