"""DP-GEN selection in ``lam distill``: trust levels, the cap, a committee run, errors against DFT."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk
from test_distill import FAST, starts, teacher_folder  # noqa: E402

from lam.testing import emt_labelled_cells
from lam.train.distill import DistillOptions, distill
from lam.train.distill.options import quick_budget
from lam.train.distill.select import select


def committee_run(teacher: Path, out: Path, **overrides: object) -> DistillOptions:
    """``FAST`` with a committee of two students distilling ``teacher`` into ``out`` from the alloy starts."""
    return dataclasses.replace(FAST, teacher=str(teacher), out=out, structures="alloy", committee=2,
                               **overrides)


def test_frames_are_sorted_by_their_committee_deviation() -> None:
    chosen = select(
        [0.01, 0.07, 0.2, 0.05, 0.15, 0.049], trust_lo=0.05, trust_hi=0.15, max_selected=0, seed=0
    )
    assert chosen.accurate == [0, 5] and chosen.selected == [1, 3, 4] and chosen.failed == [2]
    assert chosen.counts()["accurate_fraction"] == pytest.approx(2 / 6)


def test_the_cap_keeps_a_seeded_subset_and_reports_the_rest() -> None:
    deviations = [0.1] * 10
    first = select(deviations, 0.05, 0.15, max_selected=3, seed=1)
    assert len(first.selected) == 3 and len(first.skipped) == 7
    assert first.selected == select(deviations, 0.05, 0.15, max_selected=3, seed=1).selected
    with pytest.raises(ValueError, match="trust_lo < trust_hi"):
        select(deviations, 0.2, 0.1, 0, 0)


def test_a_committee_labels_only_what_it_disagrees_on(tmp_path: Path) -> None:
    """Round 2 scores every explored frame; only frames between the trust levels get teacher labels.

    Trust levels around the committee's typical deviation make all three verdicts likely; the
    invariants hold whatever the split: labelled = selected, and the counts add up.
    """
    ase.io.write(tmp_path / "dft.extxyz", emt_labelled_cells("Cu", 3, seed=2))
    options = committee_run(teacher_folder(tmp_path), tmp_path / "student", trust_lo=1e-4, trust_hi=0.5,
                            accurate_fraction=1.01, test_data=str(tmp_path / "dft.extxyz"), ensemble=True)
    result = distill(options, starts())
    first, second = result.iterations
    assert first["selection"]["by"] == "all" and first["labelled"] == first["frames_teacher_md"]
    chosen = second["selection"]
    explored = second["frames_teacher_md"] + second["frames_student_md"]
    assert chosen["candidates"] == explored
    assert chosen["accurate"] + chosen["selected"] + chosen["failed"] + chosen["over_cap"] == explored
    assert second["labelled"] == chosen["selected"]
    spread = chosen["deviation_percentiles"]
    assert 0 < spread["10"] <= spread["50"] <= spread["90"]
    assert len(second["committee_holdout_force_rmse"]) == 2
    report = json.loads((tmp_path / "student" / "report.json").read_text())
    against = report["against_test_data"]
    assert (
        against["frames"] == 3
        and against["student"]["force_rmse"] > 0
        and against["teacher"]["force_rmse"] > 0
    )
    # the ensemble: every member a model folder; the mean is no worse than the members on average
    ensemble = report["ensemble"]
    assert ensemble["members"] == ["committee/member_0", "committee/member_1"]
    member_errors = second["committee_holdout_force_rmse"]
    assert ensemble["holdout"]["force_rmse"] <= sum(member_errors) / 2 + 1e-12
    from lam.calculator import LAMCalculator

    folders = [tmp_path / "student" / m for m in ensemble["members"]]
    atoms = starts()[0]
    atoms.calc = LAMCalculator(folders, head="pbe")
    each = []
    for folder in folders:
        single = starts()[0]
        single.calc = LAMCalculator(folder, head="pbe")
        each.append(single.get_forces())
    assert np.allclose(atoms.get_forces(), np.mean(each, axis=0), atol=1e-6)


def test_a_committee_that_agrees_everywhere_stops_early(tmp_path: Path) -> None:
    options = committee_run(teacher_folder(tmp_path), tmp_path / "student", iterations=3, trust_lo=10.0,
                            trust_hi=20.0)
    result = distill(options, starts())
    assert len(result.iterations) == 2 and result.converged
    second = result.iterations[1]
    assert second["selection"]["accurate_fraction"] == 1.0 and second["labelled"] == 0


def test_committee_options_are_checked() -> None:
    with pytest.raises(ValueError, match="committee >= 1"):
        DistillOptions(committee=0)
    with pytest.raises(ValueError, match="ensemble needs a committee"):
        DistillOptions(ensemble=True)
    with pytest.raises(ValueError, match="one process"):  # several ranks would all write the run folder
        DistillOptions(devices=2)
    assert DistillOptions(devices=1, num_nodes=1).devices == 1


def spy_on(monkeypatch, module, name: str) -> list[tuple]:
    """Record the positional arguments of every call of ``module.name`` (which still runs)."""
    real, log = getattr(module, name), []

    def recorded(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        log.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, recorded)
    return log


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory) -> tuple[DistillOptions, Path]:
    """An uninterrupted 2-round committee run (trust levels that label everything: round 2 trains)."""
    root = tmp_path_factory.mktemp("whole")
    options = committee_run(teacher_folder(root), root / "whole", trust_lo=0.0, trust_hi=1e9)
    distill(options, starts())
    return options, root / "whole" / "model.safetensors"


# (function of lam.train.distill.run that dies, on which call) -> what a kill there leaves behind
KILLS = {
    "exploring round 2": ("explore", lambda args: args[0] == 2),
    "labelling round 2": ("label_frames", lambda args: True),
    "training round 1, member 0": ("train_student", lambda args: args[-1] == "round_1_member_0"),
    "training round 2, member 1": ("train_student", lambda args: args[-1] == "round_2_member_1"),
}


@pytest.mark.parametrize("stage", list(KILLS))
def test_a_run_killed_in_any_stage_resumes_there_with_the_same_student(
    stage: str, whole_run: tuple[DistillOptions, Path], tmp_path: Path, monkeypatch
) -> None:
    from safetensors.torch import load_file

    from lam.train.distill import run as run_module

    whole, whole_weights = whole_run
    killed = dataclasses.replace(whole, out=tmp_path / "killed")
    name, dies_here = KILLS[stage]
    original = getattr(run_module, name)
    labelled_calls = [0]

    def dies(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if name == "label_frames":  # round 1 labels first; die on round 2's
            labelled_calls[0] += 1
        if dies_here(args) and (name != "label_frames" or labelled_calls[0] == 2):
            raise KeyboardInterrupt  # what a kill leaves: the stages before this one stored
        return original(*args, **kwargs)

    monkeypatch.setattr(run_module, name, dies)
    with pytest.raises(KeyboardInterrupt):
        distill(killed, starts())
    monkeypatch.setattr(run_module, name, original)
    calls = {spied: spy_on(monkeypatch, run_module, spied) 
             for spied in ("explore", "label_frames", "train_student")}
    result = distill(dataclasses.replace(killed, resume=True), starts())
    assert [r["iteration"] for r in result.iterations] == [1, 2]
    got, expected = load_file(tmp_path / "killed" / "model.safetensors"), load_file(whole_weights)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key
    trained_again = [a[-1] for a in calls["train_student"]]
    if stage == "labelling round 2":  # the round's exploration is not run again
        assert calls["explore"] == [] and len(calls["label_frames"]) == 1
    if stage == "training round 2, member 1":  # nor its labelling, nor member 0's training
        assert calls["explore"] == calls["label_frames"] == [] and trained_again == ["round_2_member_1"]
    assert not list((tmp_path / "killed" / "rounds").glob("*.stages"))  # cleared once rounds are whole


def test_a_fresh_run_refuses_a_killed_runs_folder(whole_run: tuple, tmp_path: Path) -> None:
    """Without --resume or --overwrite the checkpoints of a killed run are neither reused nor deleted."""
    whole, _ = whole_run
    out = tmp_path / "killed"
    (out / "rounds" / "round_1.stages").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="--overwrite"):
        distill(dataclasses.replace(whole, out=out), starts())
    assert (out / "rounds" / "round_1.stages").is_dir()


def test_every_start_is_explored_at_every_temperature(tmp_path: Path) -> None:
    from lam.calculator import LAMCalculator
    from lam.model.lam import LAM
    from lam.train.distill.parallel import explore

    teacher = LAM.from_pretrained(teacher_folder(tmp_path)).for_inference()
    options = dataclasses.replace(FAST, temperatures=[300.0, 1200.0], md_steps=8, sample_every=2)
    calc = LAMCalculator(teacher, head="pbe", dtype="float64")
    by_teacher, by_student = explore(1, starts(), calc, teacher, "pbe", options)
    names = [frame.info["frame_id"] for frame in by_teacher]
    assert by_student == [] and len(names) == 2 * (5 + 4)  # the start frame only once per start
    assert sum("-300K-" in n for n in names) == 10 and sum("-1200K-" in n for n in names) == 8
    with pytest.raises(ValueError, match="temperatures must be positive"):
        DistillOptions(temperatures=[])


def test_the_command_takes_repeated_temperatures() -> None:
    from lam.cli import components, normalize_argv

    argv = normalize_argv(["distill", "--temperatures", "300", "--temperatures", "600"], components())
    assert argv[-2:] == ["--temperatures", '["300", "600"]']
    argv = normalize_argv(["distill", "--temperatures", "300,600", "--pressures=0,1.5"], components())
    assert argv[-4:] == ["--temperatures", '["300", "600"]', "--pressures", '["0", "1.5"]']


def test_pressures_in_bar_are_refused() -> None:
    with pytest.raises(ValueError, match="pressures are in GPa"):
        DistillOptions(pressures=[0.0, 1e4])


def test_quick_caps_the_budget_and_keeps_smaller_settings() -> None:
    quick = quick_budget(DistillOptions(quick=True, md_steps=10_000, steps_per_iteration=10))
    assert quick.md_steps < 10_000 and quick.steps_per_iteration == 10
    assert quick_budget(DistillOptions(md_steps=10_000)).md_steps == 10_000


def test_periodic_starts_are_also_explored_at_pressure(tmp_path: Path) -> None:
    """NPT at 50 GPa compresses a cell; the non-periodic start gets no NPT trajectory."""
    import numpy as np

    from lam.calculator import LAMCalculator
    from lam.model.lam import LAM
    from lam.testing import organic_molecule
    from lam.train.distill.explore import run_md
    from lam.train.distill.parallel import explore

    teacher = LAM.from_pretrained(teacher_folder(tmp_path)).for_inference()
    calc = LAMCalculator(teacher, head="pbe", dtype="float64")
    options = dataclasses.replace(FAST, pressures=[50.0], md_steps=6, sample_every=2)
    by_teacher, _ = explore(1, starts(), calc, teacher, "pbe", options)
    assert sum("-50GPa-" in frame.info["frame_id"] for frame in by_teacher) == 2 * 3
    # from round 2 a student that learns stress drives NPT too (here the teacher's model stands in)
    learning = dataclasses.replace(options, stress_weight=1.0)
    _, by_student = explore(2, starts(), calc, teacher, "pbe", learning)
    assert sum("student-50GPa" in frame.info["frame_id"] for frame in by_student) == 2 * 3
    start = starts()[0]
    squeezed = run_md(
        start, calc, dataclasses.replace(options, md_steps=40), seed=0, name="p", pressure_GPa=50.0
    )
    assert squeezed[-1].get_volume() < 0.99 * start.get_volume()
    assert np.isclose(run_md(start, calc, options, seed=0, name="v")[-1].get_volume(), start.get_volume())
    with pytest.raises(ValueError, match="periodic"):
        run_md(organic_molecule(), calc, options, seed=0, name="m", pressure_GPa=1.0)


def test_trust_levels_default_to_the_teachers_error_on_the_users_data(tmp_path: Path) -> None:
    from lam.model.lam import LAM
    from lam.train.distill.run import DP_GEN_TRUST_LO, with_trust_levels
    from lam.train.evaluate import error_metrics, predict

    teacher_dir = teacher_folder(tmp_path)
    cu = emt_labelled_cells("Cu", 3, seed=3)
    ase.io.write(tmp_path / "dft.extxyz", cu)
    options = committee_run(teacher_dir, tmp_path / "student", iterations=1,
                            test_data=str(tmp_path / "dft.extxyz"))
    distill(options, starts())
    resolved = json.loads((tmp_path / "student" / "report.json").read_text())["options"]
    teacher = LAM.from_pretrained(teacher_dir).double()  # the run's teacher calculator works in float64
    error = error_metrics(predict(teacher, cu, "pbe"))["force_rmse"]
    assert resolved["trust_lo"] == pytest.approx(error) and resolved["trust_hi"] == pytest.approx(3 * error)
    plain = with_trust_levels(dataclasses.replace(FAST, committee=2), None)
    assert (plain.trust_lo, plain.trust_hi) == (DP_GEN_TRUST_LO, 3 * DP_GEN_TRUST_LO)
    assert with_trust_levels(
        dataclasses.replace(options, trust_lo=0.1), {"force_rmse": 0.5}
    ).trust_hi == pytest.approx(0.3)


def test_exploration_in_worker_processes_gives_the_same_frames(tmp_path: Path) -> None:
    """Trajectories are independent seeded jobs: two worker processes return what one process does."""
    import numpy as np

    from lam.calculator import LAMCalculator
    from lam.model.lam import LAM
    from lam.train.distill.parallel import explore

    teacher = LAM.from_pretrained(teacher_folder(tmp_path)).for_inference()
    calc = LAMCalculator(teacher, head="pbe", dtype="float64")
    student = LAM.from_pretrained(teacher_folder(tmp_path / "s"))  # any model can drive
    options = dataclasses.replace(FAST, md_steps=6, sample_every=2, progress=False)
    here = explore(2, starts(), calc, student, "pbe", options)
    there = explore(2, starts(), calc, student, "pbe", dataclasses.replace(options, workers=2))
    for ours, theirs in zip(here, there, strict=True):  # teacher-driven, then student-driven
        assert [f.info["frame_id"] for f in ours] == [f.info["frame_id"] for f in theirs] and ours
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(a.positions, b.positions, atol=1e-8)


def test_several_trajectories_per_condition_differ_in_seed_only() -> None:
    from lam.train.distill.parallel import trajectories

    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    options = DistillOptions(temperatures=[300.0, 600.0], pressures=[1.0], trajectories_per_condition=3)
    jobs = trajectories(1, [cell], options, with_student=True)
    assert len(jobs) == 2 * 3 * 3  # temperatures x copies x (teacher NVT, student NVT, teacher NPT)
    assert len({job.seed for job in jobs}) == len(jobs) and len({job.name for job in jobs}) == len(jobs)
    assert sum(job.include_start for job in jobs) == 1  # the start is labelled once
    with pytest.raises(ValueError, match="trajectories_per_condition"):
        DistillOptions(trajectories_per_condition=0)


def test_students_drive_npt_once_they_learn_stress() -> None:
    from lam.train.distill.parallel import trajectories

    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    without = DistillOptions(pressures=[1.0])
    learning = DistillOptions(pressures=[1.0], stress_weight=1.0)
    npt = lambda jobs: sorted(j.driver for j in jobs if j.pressure_GPa is not None)  # noqa: E731
    assert npt(trajectories(2, [cell], without, with_student=True)) == ["teacher"]
    assert npt(trajectories(2, [cell], learning, with_student=True)) == ["student", "teacher"]
    assert npt(trajectories(1, [cell], learning, with_student=False)) == ["teacher"]  # no student yet
