"""Models saved by earlier lam versions keep loading and keep predicting the same numbers.

Each folder under ``tests/fixtures/models/`` was written once by ``scripts/make_model_fixture.py``
and is never regenerated; its ``expected.json`` holds the energies and forces it gave then.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from lam.calculator import LAMCalculator
from lam.model.lam import LAM
from lam.testing import organic_molecule, periodic_alloy, predict

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "models").iterdir())


@pytest.mark.parametrize("folder", FIXTURES, ids=[f.name for f in FIXTURES])
def test_saved_model_loads_and_predicts_what_it_did(folder: Path) -> None:
    expected = json.loads((folder / "expected.json").read_text())
    frames = [periodic_alloy(), organic_molecule()]
    out = predict(LAM.from_pretrained(folder).double(), frames)
    np.testing.assert_allclose(out.energy.detach().numpy(), expected["energy"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(out.forces.detach().numpy(), expected["forces"], rtol=0, atol=1e-9)
    # the calculator's inference path (hand-written derivatives) gives the same forces
    atoms = frames[1]
    atoms.calc = LAMCalculator(str(folder), skin=0.0)
    n_first = len(frames[0])
    np.testing.assert_allclose(atoms.get_forces(), np.array(expected["forces"])[n_first:], rtol=0, atol=1e-9)


def test_there_are_fixtures_of_both_descriptors() -> None:
    kinds = {json.loads((f / "config.json").read_text())["descriptor"]["kind"] for f in FIXTURES}
    assert kinds == {"dpa2", "two_body"}
    versions = {json.loads((f / "config.json").read_text()).get("schema_version", 1) for f in FIXTURES}
    assert versions >= {1, 2}  # every schema lam has written keeps a fixture
