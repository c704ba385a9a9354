"""``lam distill``: teacher-driven and student-driven MD, teacher labels, iterations, the saved student."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lam.calculator import LAMCalculator
from lam.cli import run as run_cli
from lam.hub.card import read_lineage
from lam.model.config import HeadSpec, preset
from lam.model.lam import LAM
from lam.testing import periodic_alloy
from lam.train.distill import DistillOptions, distill, format_round, label_frames, run_md

torch.set_num_threads(1)
RECIPE = Path(__file__).parents[2] / "recipes" / "distill.yaml"
REFERENCES = {29: -3.5, 79: -4.2}  # eV, the teacher head's isolated-atom energies
FAST = DistillOptions(iterations=2, md_steps=12, sample_every=2, steps_per_iteration=40, lr=3e-3,
                      batch_size=2, target_force_rmse=1e-5)  # unreachable: both iterations run


def teacher_folder(root: Path) -> Path:
    """A seeded tiny DPA-2 teacher with one head ``pbe`` and Cu/Au references.

    An untrained head's MLP outputs almost nothing; a large energy scale gives its PES forces of
    tens of meV/Å, enough for the student to have something to learn.
    """
    torch.manual_seed(0)
    model = LAM(dataclasses.replace(preset("tiny"), heads=(HeadSpec("pbe", "PBE (VASP)"),))).double()
    model.heads["pbe"].set_energy_references(REFERENCES)
    model.heads["pbe"].energy_scale.fill_(300.0)
    model.save_pretrained(root / "teacher")
    return root / "teacher"


def starts() -> list:
    """Two small periodic Cu/Au cells (4 atoms each)."""
    return [periodic_alloy(seed=0, repeat=1), periodic_alloy(seed=1, repeat=1)]


@pytest.fixture(scope="module")
def distilled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """Teacher folder, student folder and the JSON report of one two-round distillation."""
    root = tmp_path_factory.mktemp("distill")
    teacher = teacher_folder(root)
    out = root / "student"
    lines: list[str] = []
    options = dataclasses.replace(FAST, teacher=str(teacher), out=out, structures="alloy.extxyz")
    distill(options, starts(), progress=lambda record: lines.append(format_round(record)))
    assert [line.split(":")[0] for line in lines] == ["iteration 1", "iteration 2"]
    assert "new frames before training" in lines[1] and "F RMSE" in lines[0]
    return teacher, out, json.loads((out / "report.json").read_text())


def test_student_folder_loads_without_the_teacher(distilled: tuple[Path, Path, dict]) -> None:
    teacher_dir, out, _ = distilled
    student = LAM.from_pretrained(out)
    assert student.config.descriptor.kind == "two_body"
    assert list(student.heads) == ["pbe"]
    # exactly a student's weights: nothing of the frozen teacher was saved with it
    fresh = LAM(dataclasses.replace(preset("student"), heads=(HeadSpec("pbe"),)))
    assert set(student.state_dict()) == set(fresh.state_dict())
    teacher_only = set(LAM.from_pretrained(teacher_dir).state_dict()) - set(fresh.state_dict())
    assert teacher_only and not set(student.state_dict()) & teacher_only
    for name in ("config.json", "model.safetensors", "README.md", "report.json", "agreement.png"):
        assert (out / name).is_file(), name


def test_report_and_card_count_the_teacher_labels(distilled: tuple) -> None:
    _, out, report = distilled
    iterations, summary = report["iterations"], report["summary"]
    assert summary["teacher_labels"] == sum(r["labelled"] for r in iterations) > 0
    assert [s["by"] for s in summary["selection"]] == ["all", "all"]  # no committee: every frame labelled
    assert summary["md_speed_ratio"] == report["speed"]["md_speedup"] > 0
    card = (out / "README.md").read_text()
    for r in iterations:
        assert f"| {r['iteration']} | {r['selection']['candidates']} / {r['labelled']} |" in card


def test_student_references_are_the_teachers_shifted_to_the_labels(distilled: tuple) -> None:
    """The teacher's isolated-atom references, shifted by least squares on round 1's labels.

    Without the shift the fresh MLP must learn the whole binding energy (eV/atom) by gradient steps:
    a 32-atom Cu student of lam-mini ended round 1 0.47 eV/atom off, with it 0.02 eV/atom
    (scripts/results/distill_student_learning.json).
    """
    _, out, report = distilled
    student = LAM.from_pretrained(out)
    assert set(student.heads["pbe"].energy_references()) == set(REFERENCES)
    assert student.heads["pbe"].energy_references() != pytest.approx(REFERENCES)
    first = report["iterations"][0]["holdout"]
    assert first["energy_mae_per_atom"] < 0.02, first  # eV/atom


def test_report_shows_iterations_agreement_improving_and_speed(distilled: tuple[Path, Path, dict]) -> None:
    _, _, report = distilled
    first, last = report["iterations"][0], report["iterations"][-1]
    assert [r["iteration"] for r in report["iterations"]] == [1, 2]
    assert first["frames_student_md"] == 0 and last["frames_student_md"] > 0  # the student drove MD
    # 2 starts x (12 / 2 + 1) frames; later iterations do not sample the starts again (no duplicates)
    assert (first["frames_teacher_md"], last["frames_teacher_md"]) == (14, 12)
    assert last["new_frames_before_training"]["force_rmse"] > 0
    assert last["train_frames"] > first["train_frames"] and last["holdout_frames"] > first["holdout_frames"]
    assert last["holdout"]["force_rmse"] < first["holdout"]["force_rmse"]
    assert last["holdout"]["stress_rmse"] is not None  # bulk cells carry teacher stress
    assert not report["converged"]
    speed = report["speed"]
    assert speed["teacher_us_per_atom"] > 0 and speed["student_us_per_atom"] > 0
    assert speed["md_speedup"] == pytest.approx(
        speed["student_md_atom_steps_per_s"] / speed["teacher_md_atom_steps_per_s"])
    assert speed["n_atoms"] >= 64


def test_lineage_names_the_teacher(distilled: tuple[Path, Path, dict]) -> None:
    teacher_dir, out, report = distilled
    lineage = read_lineage(out)
    assert lineage["parent"] == str(teacher_dir.resolve()) == report["lineage"]["parent"]
    assert lineage["parent_head"] == "pbe" and lineage["mode"] == "distill"
    assert lineage["distillation"]["temperatures"] == [300.0]
    assert "distilled from" in LAM.from_pretrained(out).config.heads[0].level_of_theory


def test_existing_model_refused_without_overwrite(distilled: tuple[Path, Path, dict], tmp_path: Path) -> None:
    teacher_dir, out, _ = distilled
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        options = dataclasses.replace(FAST, teacher=str(teacher_dir), out=out, structures="alloy.extxyz")
        distill(options, starts())
    structures = tmp_path / "alloy.extxyz"
    import ase.io

    ase.io.write(structures, starts())
    with pytest.raises(FileExistsError, match="overwrite"):
        run_cli(["distill", "--config", str(RECIPE), "--teacher", str(teacher_dir),
                 "--structures", str(structures), "--out", str(out)])
    assert (out / "model.safetensors").read_bytes() == before


def test_student_md_stops_where_forces_run_away() -> None:
    torch.manual_seed(0)
    model = LAM(preset("student")).double()
    model.heads["default"].energy_scale.fill_(1e4)  # a wild PES
    calc = LAMCalculator(model)
    frames = run_md(periodic_alloy(repeat=1), calc, FAST, seed=0, name="s", max_force=1e-3,
                    include_start=False)
    assert len(frames) == 1 and frames[0].info["frame_id"] == "s-step0"  # the runaway frame is kept
    assert frames[0].calc is None  # geometry only, for the teacher to label
    calm = run_md(periodic_alloy(repeat=1), calc, FAST, seed=0, name="s", include_start=False)
    assert [f.info["frame_id"] for f in calm] == [f"s-step{n}" for n in range(2, 13, 2)]


def test_labels_stress_only_for_bulk_cells() -> None:
    torch.manual_seed(0)
    calc = LAMCalculator(LAM(preset("student")).double())
    bulk, cluster = periodic_alloy(repeat=1), periodic_alloy(repeat=1)
    cluster.pbc = False
    labelled = label_frames([bulk, cluster], calc)
    assert labelled[0].calc.results["stress"].shape == (6,)
    assert "stress" not in labelled[1].calc.results
    assert np.isfinite(labelled[1].calc.results["forces"]).all()
    for frame in labelled:  # batched labels are the calculator's own, frame by frame
        single = frame.copy()
        single.calc = calc
        assert single.get_potential_energy() == pytest.approx(frame.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(single.get_forces(), frame.get_forces(), atol=1e-10)
        if frame.pbc.all():
            np.testing.assert_allclose(single.get_stress(), frame.get_stress(), atol=1e-10)


def test_strain_deforms_only_periodic_cells() -> None:
    torch.manual_seed(0)
    calc = LAMCalculator(LAM(preset("student")).double())
    options = dataclasses.replace(FAST, md_steps=1, strain=0.05)
    bulk, cluster = periodic_alloy(repeat=1), periodic_alloy(repeat=1)
    cluster.pbc = False
    strained = run_md(bulk, calc, options, seed=0, name="b")[0]
    assert not np.allclose(strained.cell.array, bulk.cell.array)
    assert np.abs(np.linalg.solve(bulk.cell.array, strained.cell.array) - np.eye(3)).max() <= 0.05
    assert np.allclose(run_md(cluster, calc, options, seed=0, name="c")[0].cell.array, cluster.cell.array)


def test_a_collapsed_frame_is_rejected_not_labelled() -> None:
    """A 0.55 Å dimer that the MD drives to 0.30 Å was once labelled and trained on."""
    torch.manual_seed(0)
    calc = LAMCalculator(LAM(preset("student")).double())
    squeezed = periodic_alloy(repeat=1)
    squeezed.positions[1] = squeezed.positions[0] + [0.3, 0.0, 0.0]
    rejected: list = []
    frames = run_md(squeezed, calc, FAST, seed=0, name="s", rejected=rejected)
    assert frames == [] and len(rejected) == 1
    assert rejected[0]["frame_id"].startswith("s#0")
    assert "distance" in rejected[0]["field"] + rejected[0]["reason"]


def test_an_exploding_start_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    """Two atoms 0.3 Å apart in one start: its trajectories stop at once, the other start is distilled."""
    teacher = teacher_folder(tmp_path)
    exploding = periodic_alloy(seed=2, repeat=1)
    exploding.positions[1] = exploding.positions[0] + [0.3, 0.0, 0.0]
    options = dataclasses.replace(FAST, teacher=str(teacher), out=tmp_path / "student", structures="mixed",
                                  iterations=1)
    result = distill(options, [starts()[0], exploding])
    record = result.iterations[0]
    assert record["rejected_frames"] and all("-s1" in r["frame_id"] for r in record["rejected_frames"])
    assert record["labelled"] == record["frames_teacher_md"] == 12 // 2 + 1  # the good start's frames only
    assert (tmp_path / "student" / "model.safetensors").is_file()
