"""Teacher labels through Lightning's predict loop: one process or several spawned ranks, same numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lam.errors import LamError
from lam.model.config import preset
from lam.predict import iter_results
from lam.testing import build_model, organic_molecule, periodic_alloy
from lam.train.distill.labelling import label_with_lightning


@pytest.fixture(scope="module")
def teacher() -> torch.nn.Module:
    model = build_model(preset("tiny")).double()
    for head in model.heads.values():
        head.energy_scale.fill_(300.0)  # forces well above rounding
    return model.for_inference()


@pytest.mark.parametrize("devices", [1, 2], ids=["one process", "two spawned ranks"])
def test_labels_equal_the_predict_loop_in_frame_order(teacher, devices: int) -> None:
    # 5 groups of one frame each over 2 ranks: Lightning pads the shards with a repeated group
    frames = [periodic_alloy(seed=s, repeat=1) for s in range(3)]
    frames += [organic_molecule(), periodic_alloy(seed=9)]
    head = next(iter(teacher.heads))
    expected = list(iter_results(teacher, frames, head, allow_unseen_elements=True))
    labelled = label_with_lightning([f.copy() for f in frames], teacher, head, devices=devices, batch_atoms=1,
                                    allow_unseen_elements=True)
    assert [len(a) for a in labelled] == [len(f) for f in frames]
    for atoms, want in zip(labelled, expected, strict=True):
        assert atoms.get_potential_energy() == pytest.approx(want["energy"], abs=1e-10)
        np.testing.assert_allclose(atoms.get_forces(), want["forces"], atol=1e-10)
        assert ("stress" in atoms.calc.results) == ("stress" in want)  # bulk cells only
    assert max(float(np.abs(a.get_forces()).max()) for a in labelled) > 1e-3


def test_an_element_the_head_never_saw_is_refused_before_any_rank_starts(teacher) -> None:
    head = next(iter(teacher.heads))
    uranium = periodic_alloy()
    uranium.numbers[:] = 92
    with pytest.raises(LamError):
        label_with_lightning([uranium], teacher, head, devices=2)
