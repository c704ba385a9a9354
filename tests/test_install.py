"""A wheel of lam, installed without the repository beside it, fine-tunes and writes its model card.

Editable installs hide packaging mistakes (a template found through the repository, a resource left
out of the package data). This builds the wheel, installs it into a temporary folder, and runs a
fine-tuning there with the editable install's import hook removed.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

RUN = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__]
sys.path.insert(0, {target!r})
import lam
assert lam.__file__.startswith({target!r}), lam.__file__
from ase.build import bulk
from ase.calculators.emt import EMT
from lam.train.finetune import FinetuneOptions, finetune
frames = []
for i in range(8):
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.05, seed=i)
    atoms.calc = EMT()
    atoms.get_forces()
    frames.append(atoms)
options = FinetuneOptions(model="lam-mini", data="cu.extxyz", out="ft", head="mlearn_elemental_pbe",
                          max_steps=2, val_every=1, progress=False)
finetune(options, frames)
card = open("ft/README.md").read()
assert "lam-mini" in card and "## Licenses" in card, card
print("ok", lam.__file__)
"""


@pytest.mark.slow
def test_an_installed_wheel_fine_tunes_and_writes_a_card(tmp_path: Path) -> None:
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)]
    subprocess.run(build, check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("lam-*.whl")
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=600)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", RUN.format(target=str(target))], cwd=work, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().startswith("ok")
