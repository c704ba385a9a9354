"""Multi-task data: homogeneous-head batches, sampling probabilities, step-reproducible order, DDP shards."""

from collections import Counter

import numpy as np
import pytest
import torch

from lam import keys
from lam.data.datamodule import MultiTaskBatchSampler, MultiTaskDataModule, dataset_probabilities
from lam.testing import emt_labelled_cells

torch.set_num_threads(1)
emt_frames = emt_labelled_cells


def test_probabilities_from_sizes_temperature_and_weights():
    sizes = {"big": 900, "small": 100}
    assert dataset_probabilities(sizes, 1.0) == pytest.approx({"big": 0.9, "small": 0.1})
    assert dataset_probabilities(sizes, 2.0) == pytest.approx({"big": 0.75, "small": 0.25})  # 30:10
    flat = dataset_probabilities(sizes, 1e6)
    assert flat["big"] == pytest.approx(0.5, abs=1e-4)
    assert dataset_probabilities(sizes, weights={"big": 1, "small": 3}) == pytest.approx(
        {"big": 0.25, "small": 0.75}
    )
    with pytest.raises(ValueError, match="missing \\['small'\\]"):
        dataset_probabilities(sizes, weights={"big": 1})
    with pytest.raises(ValueError, match="temperature"):
        dataset_probabilities(sizes, 0.0)


def test_batches_are_homogeneous_and_follow_the_probabilities():
    sizes, probs = [50, 30, 20], [0.6, 0.3, 0.1]
    sampler = MultiTaskBatchSampler(sizes, probs, batch_size=4, steps_per_epoch=2000, seed=1)
    owner = np.repeat(np.arange(3), sizes)  # dataset of each concatenated index
    counts = Counter()
    for batch in sampler:
        datasets = set(owner[batch])
        assert len(batch) == 4 and len(datasets) == 1 and len(set(batch)) == 4
        counts[datasets.pop()] += 1
    assert [counts[d] / 2000 for d in range(3)] == pytest.approx(probs, abs=0.04)


def test_order_is_a_function_of_the_step_so_resume_is_exact():
    def make():
        return MultiTaskBatchSampler([10, 7], [0.5, 0.5], batch_size=3, steps_per_epoch=5, seed=7)

    full = make()
    uninterrupted = [batch for _ in range(3) for batch in full]  # three epochs, as Lightning iterates
    assert uninterrupted == [full.batch(step) for step in range(15)]  # each epoch goes on, none repeats
    assert uninterrupted[:5] != uninterrupted[5:10]
    resumed = make()
    resumed.next_step = 7  # killed after 7 steps: epoch 1, batch 2
    tail = list(resumed)
    assert len(tail) == 3  # the rest of epoch 1
    tail += list(resumed)
    assert tail == uninterrupted[7:]
    other_seed = MultiTaskBatchSampler([10, 7], [0.5, 0.5], batch_size=3, steps_per_epoch=5, seed=8)
    assert list(other_seed) != uninterrupted[:5]


def test_ddp_ranks_share_the_dataset_and_split_the_global_batch():
    ranks = [
        MultiTaskBatchSampler([40, 40], [0.5, 0.5], 2, 20, seed=3, rank=r, world_size=2) for r in range(2)
    ]
    single = MultiTaskBatchSampler([40, 40], [0.5, 0.5], 4, 20, seed=3)
    for step in range(20):
        batch0, batch1 = ranks[0].batch(step), ranks[1].batch(step)
        assert (np.array(batch0) < 40).all() == (np.array(batch1) < 40).all()  # same dataset on both ranks
        assert sorted(batch0 + batch1) == sorted(single.batch(step))  # together: one global batch


@pytest.fixture(scope="module")
def datamodule():
    dm = MultiTaskDataModule(
        {"cu": emt_frames("Cu", 12, 0), "al": emt_frames("Al", 8, 1, stress=False)},
        batch_size=3,
        val_fraction=0.25,
        seed=0,
        cutoff=4.0,
        steps_per_epoch=6,
    )
    dm.setup()
    return dm


def test_split_loaders_and_statistics(datamodule):
    assert datamodule.heads == ["cu", "al"]
    assert (len(datamodule.train_sets["cu"]), len(datamodule.val_sets["cu"])) == (9, 3)
    assert (len(datamodule.train_sets["al"]), len(datamodule.val_sets["al"])) == (6, 2)
    train_ids = set(datamodule.train_sets["cu"]["frame_id"])
    assert not train_ids & set(datamodule.val_sets["cu"]["frame_id"])  # held out means held out
    batches = list(datamodule.train_dataloader())
    assert len(batches) == 6
    for batch in batches:
        heads = set(batch[keys.HEAD])
        assert len(heads) == 1 and batch.num_graphs == 3
        assert set(batch[keys.FRAME_ID]) <= set(datamodule.train_sets[heads.pop()]["frame_id"])
    val = datamodule.val_dataloader()
    assert [set(next(iter(loader))[keys.HEAD]) for loader in val] == [{"cu"}, {"al"}]
    stats = datamodule.head_statistics()
    expected = [f.get_potential_energy() for f in emt_frames("Cu", 12, 0)]
    assert sorted(stats["cu"]["energy"]) == pytest.approx(
        sorted(np.array(expected)[[int(i.split("#")[1]) for i in train_ids]])
    )
    assert all(len(n) == 4 for n in stats["cu"]["numbers"]) and stats["al"]["force_rms"] > 0


def test_resume_position_comes_from_the_checkpoint_state(datamodule):
    first = [b[keys.FRAME_ID] for b in datamodule.train_dataloader()]
    datamodule.load_state_dict({"next_step": 4})
    resumed = [b[keys.FRAME_ID] for b in datamodule.train_dataloader()]
    assert resumed == first[4:]
