"""The distilled student learns a shipped teacher (``lam-mini``) in the quick setting.

Before issue 18's fixes the student's held-out force error equalled the teacher's force RMS (what
zero forces give) and its energies were tens to hundreds of meV/atom off. Switching fixes off one
at a time in this setting: without the energy scale fitted to the labels the molecule's ratio is
1.02, without re-centring the energies after training both are 31-34 meV/atom off; both fail here.
(The neighbour divisor and the reference shift change little in this setting; their effect is
measured in scripts/results/distill_student_learning.json.) Issue 18's goal of 25% is met by the
default budget on water (docs/benchmarks.md), not by this quick one (docs/limitations.md).
"""

from __future__ import annotations

from pathlib import Path

import ase.build
import pytest

from lam.train.distill import DistillOptions, distill

# system, head, temperature (K), bound on held-out force RMSE / teacher force RMS (measured: 0.54, 0.36)
CASES = {
    "molecule": (lambda: ase.build.molecule("CH3CH2OH"), "s66x8_wb97x", 300.0, 0.65),
    "crystal": (lambda: ase.build.bulk("Cu", cubic=True).repeat(2), "mptrj_random1k_pbe", 600.0, 0.45),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_student_learns_lam_mini_in_the_quick_setting(case: str, tmp_path: Path) -> None:
    build, head, temperature, bound = CASES[case]
    options = DistillOptions(teacher="lam-mini", head=head, structures=case, out=tmp_path / "student",
                             temperatures=[temperature], iterations=1, quick=True, progress=False)
    record = distill(options, [build()]).iterations[-1]
    held = record["holdout"]
    assert held["force_rmse"] < bound * record["holdout_teacher_force_rms"]
    assert held["energy_mae_per_atom"] < 0.02  # eV/atom: 0.1-0.5 before the energies were re-centred
