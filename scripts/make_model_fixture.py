"""Write a model folder and the predictions it must keep giving: a fixture that future lam versions load.

    python scripts/make_model_fixture.py tests/fixtures/models/student-schema1 --preset student

Run it once per saved format (a new ``schema_version``); never regenerate an existing fixture, since
its point is to hold what an older lam wrote. ``tests/test_model_fixtures.py`` loads every folder
under ``tests/fixtures/models/`` and checks energies and forces against its ``expected.json``.
"""

import argparse
import json
from pathlib import Path

from lam._version import __version__
from lam.model.config import preset
from lam.model.lam import LAM
from lam.testing import build_model, organic_molecule, periodic_alloy, predict
from lam.train.distill.student import set_neighbor_normalizer

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("out", type=Path)
parser.add_argument("--preset", default="student")
parser.add_argument("--neighbor-normalizer", type=float, default=None, help="a student's (schema 3 on)")
args = parser.parse_args()
if args.out.exists():
    raise SystemExit(f"{args.out} exists: fixtures are never regenerated")

model = build_model(preset(args.preset), seed=0)
for index, head in enumerate(model.heads.values()):  # references and scale away from their defaults
    head.set_energy_references({1: -13.6 - index, 6: -1030.0, 8: -2040.0, 29: -3.5, 79: -4.2})
    head.energy_scale.fill_(3.0)
if args.neighbor_normalizer is not None:
    set_neighbor_normalizer(model, args.neighbor_normalizer)
model.save_pretrained(args.out)
frames = [periodic_alloy(), organic_molecule()]
out = predict(LAM.from_pretrained(args.out).double(), frames)
expected = {
    "lam_version": __version__,
    "preset": args.preset,
    "frames": ["lam.testing.periodic_alloy()", "lam.testing.organic_molecule()"],
    "energy": out.energy.detach().tolist(),  # eV, one per frame
    "forces": out.forces.detach().tolist(),  # eV/Å, the frames' atoms in order
}
(args.out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
print(f"wrote {args.out} (energies {expected['energy']})")
