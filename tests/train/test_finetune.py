"""``lam.train.finetune``: head choice, element checks, frozen mode, refusal, lineage in the saved card."""

from __future__ import annotations

import csv
import dataclasses
import json
import warnings
from pathlib import Path

import ase
import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from lam._version import __version__
from lam.data.splits import split_frames
from lam.data.statistics import fit_energy_references, force_rms
from lam.hub.card import read_lineage
from lam.hub.models import load_model
from lam.model.config import HeadSpec, preset
from lam.model.lam import LAM
from lam.train.finetune import FinetuneOptions, finetune
from lam.train.finetune.fit import build_task
from lam.train.finetune.prepare import prepare
from lam.train.refit import MIN_FORCE_SCALE, add_head_from_statistics

torch.set_num_threads(1)
FAST = FinetuneOptions(head="a", max_steps=3, val_every=3, batch_size=2, patience=2)


def run_finetune(parent, frames, out, options, data, test_frames=None, overwrite=False):  # noqa: ANN001, ANN201
    """``finetune`` of ``frames`` from Python, the run's place and names set on the options."""
    where = dict(model=str(parent), out=Path(out), data=data, overwrite=overwrite)
    return finetune(dataclasses.replace(options, **where), frames, test_frames)


def parent_folder(tmp_path: Path, heads: tuple[str, ...] = ("a", "b")) -> Path:
    """A saved float64 student model whose heads were 'pretrained' on Al and Cu (references set)."""
    torch.manual_seed(0)
    model = LAM(dataclasses.replace(preset("student"), heads=tuple(HeadSpec(h) for h in heads))).double()
    for head in model.heads.values():
        head.set_energy_references({13: -3.0, 29: -4.0})
    model.save_pretrained(tmp_path / "parent")
    return tmp_path / "parent"


def emt_frames(n: int, third: str = "Al", seed: int = 0) -> list[ase.Atoms]:
    """Rattled 4-atom fcc cells of Cu with 0..3 atoms of ``third``, labelled by EMT."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
        atoms.symbols[: i % 4] = third
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        atoms.calc = SinglePointCalculator(
            atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces()
        )
        frames.append(atoms)
    return frames


def eos_frames() -> list[ase.Atoms]:
    """An equation of state of perfect fcc Cu cells, labelled by EMT: every force is zero by symmetry."""
    frames = []
    for a in (3.5, 3.6, 3.7, 3.8):
        atoms = bulk("Cu", "fcc", a=a, cubic=True)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        frames.append(atoms)
    return frames


def test_split_is_seeded_and_disjoint() -> None:
    frames = emt_frames(10)
    a, b = split_frames(frames, 0.2, 0.1, seed=3), split_frames(frames, 0.2, 0.1, seed=3)
    assert a.sizes == (7, 2, 1)
    assert [id(f) for f in a.train] == [id(f) for f in b.train]
    assert len({id(f) for f in a.train + a.val + a.test}) == 10
    with pytest.raises(ValueError, match="cannot be split"):
        split_frames(frames[:2], 0.5, 0.5, seed=0)


def test_output_folder_holding_a_model_is_refused(tmp_path: Path) -> None:
    parent = parent_folder(tmp_path)
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_finetune(str(parent), emt_frames(6), parent, FAST, "cu.extxyz")


def test_unknown_head_error_lists_the_heads(tmp_path: Path) -> None:
    model = load_model(str(parent_folder(tmp_path)))
    with pytest.raises(KeyError, match=r"\['a', 'b'\]"):
        prepare(model, emt_frames(4), dataclasses.replace(FAST, head="pbe"), "cu.extxyz")


def test_auto_picks_the_head_that_fits_and_new_head_uses_data_statistics(tmp_path: Path) -> None:
    model = load_model(str(parent_folder(tmp_path, ("a", "b", "c"))))
    frames = emt_frames(6)
    for atoms in frames:  # relabel with head "c" (+ a per-element offset the refit must absorb)
        atoms.calc = None
        from lam.calculator import LAMCalculator

        atoms.calc = LAMCalculator(model, head="c")
        atoms.calc = SinglePointCalculator(
            atoms, energy=atoms.get_potential_energy() + 0.5 * len(atoms), forces=atoms.get_forces()
        )
    auto = prepare(model, frames, dataclasses.replace(FAST, head="auto"), "cu.extxyz")
    assert auto.parent_head == "c" and [h for h, _ in auto.ranking][0] == "c"
    assert auto.head == "cu" and auto.shifts[29] == pytest.approx(0.5, abs=1e-6)
    fresh = prepare(model, frames, dataclasses.replace(FAST, head="new", name="fresh"), "cu.extxyz")
    assert fresh.parent_head == "new"
    assert model.heads["fresh"].energy_references() == pytest.approx(fit_energy_references(frames))


def test_new_element_is_reported_in_full_mode_and_refused_in_frozen_mode(tmp_path: Path) -> None:
    parent = parent_folder(tmp_path)
    frames = emt_frames(8, third="Ni")
    with pytest.raises(ValueError, match=r"frozen.*\['Ni'\]"):
        run_finetune(
            str(parent), frames, tmp_path / "frozen", dataclasses.replace(FAST, mode="frozen"), "cuni.xyz"
        )
    result = run_finetune(str(parent), frames, tmp_path / "full", FAST, "cuni.xyz")
    assert result.prepared.new_elements == [28]
    assert json.loads((tmp_path / "full" / "finetune.json").read_text())["new_elements"] == ["Ni"]


def test_frozen_mode_trains_the_head_only_and_saves_lineage(tmp_path: Path) -> None:
    parent = parent_folder(tmp_path)
    frames = emt_frames(10)
    options = dataclasses.replace(FAST, mode="frozen", lr=1e-2)
    result = run_finetune(str(parent), frames, tmp_path / "out", options, "cual.extxyz")
    before, after = load_model(str(parent)), load_model(str(tmp_path / "out"))
    assert result.steps == 3
    for key, value in before.descriptor.state_dict().items():
        assert torch.equal(value, after.descriptor.state_dict()[key]), key
    moved = [
        k
        for k, v in before.heads["a"].mlp.state_dict().items()
        if not torch.equal(v, after.heads["cual"].mlp.state_dict()[k])
    ]
    assert moved, "the head did not train"
    assert list(after.heads) == ["cual"]  # only the fine-tuned head is kept
    lineage = read_lineage(tmp_path / "out")
    assert lineage == {
        "parent": str(parent.resolve()),
        "parent_kind": "local",
        "parent_revision": None,
        "parent_commit": None,
        "parent_head": "a",
        "head": "cual",
        "mode": "frozen",
        "lam_version": __version__,
    }
    card = (tmp_path / "out" / "README.md").read_text()
    assert f"base_model: {parent.resolve()}" in card
    assert (tmp_path / "out" / "parity_cual.png").stat().st_size > 1000
    with pytest.raises(FileExistsError):
        run_finetune(str(parent), frames, tmp_path / "out", options, "cual.extxyz")
    run_finetune(
        str(parent),
        frames,
        tmp_path / "out",
        dataclasses.replace(options, max_steps=0),
        "cual.extxyz",
        overwrite=True,
    )


def test_replay_keeps_training_the_pretraining_head_on_its_own_data(tmp_path: Path) -> None:
    torch.manual_seed(0)
    spec = HeadSpec("s66x8_wb97x", datasets=("s66x8_wb97x",))  # a small registered dataset
    parent = LAM(dataclasses.replace(preset("student"), heads=(spec,))).double()
    parent.heads["s66x8_wb97x"].set_energy_references({1: -13.6, 6: -1030.0, 7: -1480.0, 8: -2040.0})
    parent.save_pretrained(tmp_path / "parent")
    options = dataclasses.replace(
        FAST, head="s66x8_wb97x", mode="replay", replay_frames=4, max_steps=6, lr=1e-2
    )
    result = run_finetune(str(tmp_path / "parent"), emt_frames(8), tmp_path / "out", options, "cual.xyz")
    assert result.prepared.new_elements == [13, 29]  # allowed outside frozen mode, and reported
    saved = load_model(str(tmp_path / "out"))
    assert list(saved.heads) == ["s66x8_wb97x", "cual"]
    replayed = saved.heads["s66x8_wb97x"].mlp.state_dict()
    assert any(
        not torch.equal(v, parent.heads["s66x8_wb97x"].mlp.state_dict()[k]) for k, v in replayed.items()
    )
    assert read_lineage(tmp_path / "out")["mode"] == "replay"


def test_loss_prefactors_and_lr_schedule_reach_the_trainer(tmp_path: Path) -> None:
    options = dataclasses.replace(
        FAST,
        head="a",
        max_steps=4,
        val_every=2,
        start_pref_e=5.0,
        limit_pref_e=50.0,
        start_pref_f=7.0,
        limit_pref_f=3.0,
        final_lr_ratio=0.1,
        lr=2e-3,
    )
    task = build_task(load_model(str(parent_folder(tmp_path))), options)
    assert task.loss_fn.prefactors(1.0) == (5.0, 7.0, 0.0)
    assert task.lr * task.lr_schedule(options.max_steps) == pytest.approx(2e-4)
    result = run_finetune(str(tmp_path / "parent"), emt_frames(10), tmp_path / "out", options, "cu.extxyz")
    logs = [p for p in (tmp_path / "out" / "logs").rglob("metrics.csv")]
    rows = [r for r in csv.DictReader(logs[0].open()) if r.get("train/pref_energy")]
    assert result.steps == 4 and rows, "the fine-tuning run logged no training step"
    for row in rows:  # DeePMD: p(t) = limit + (start - limit) * lr(t) / lr0, lr0 -> 0.1 lr0 over 4 steps
        decay = 0.1 ** (int(row["step"]) / options.max_steps)
        assert float(row["train/pref_energy"]) == pytest.approx(50.0 - 45.0 * decay, rel=1e-5)
        assert float(row["train/pref_forces"]) == pytest.approx(3.0 + 4.0 * decay, rel=1e-5)


def test_new_head_scale_ignores_force_free_frames(tmp_path: Path) -> None:
    model = load_model(str(parent_folder(tmp_path)))
    rattled = emt_frames(4)
    add_head_from_statistics(model, HeadSpec("rattled"), rattled)
    assert float(model.heads["rattled"].energy_scale) == pytest.approx(force_rms(rattled))
    symmetric = eos_frames()
    assert force_rms(symmetric) < MIN_FORCE_SCALE
    add_head_from_statistics(model, HeadSpec("eos"), symmetric)
    assert float(model.heads["eos"].energy_scale) == 1.0  # not ~1e-16, which would freeze the head


def test_early_stopping_watches_energies_when_validation_forces_are_zero_by_symmetry() -> None:
    """A symmetric cell's force RMSE is rounding noise for every model: it cannot rank checkpoints."""
    from lam.train.finetune.fit import early_stopping_metric

    assert early_stopping_metric("h", eos_frames()) == "val/h/energy_mae_per_atom"
    assert early_stopping_metric("h", [*eos_frames(), *emt_frames(1)]) == "val/h/force_rmse"


def test_cli_flags_reach_finetune_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from lam.cli import run

    seen = {}

    def capture(options, frames=None, test_frames=None):  # noqa: ANN001, ANN202
        seen["options"] = options
        raise RuntimeError("captured")

    monkeypatch.setattr("lam.train.finetune.run.finetune", capture)
    argv = ["finetune", "--from", "m", "--data", "d.xyz", "--start-pref-e", "3", "--limit-pref-e", "30",
            "--start-pref-f", "40", "--limit-pref-f", "4", "--limit-pref-s", "0.5", "--final-lr-ratio", "0.2",
            "--warmup-steps", "7", "--lr", "0.0004", "--auto-frames", "5", "--devices", "2"]
    with pytest.raises(RuntimeError, match="captured"):
        run(argv)
    options = seen["options"]
    assert (options.start_pref_e, options.limit_pref_e, options.start_pref_f, options.limit_pref_f) == (
        3.0, 30.0, 40.0, 4.0)
    assert (options.start_pref_s, options.limit_pref_s, options.final_lr_ratio) == (0.0, 0.5, 0.2)
    assert (options.warmup_steps, options.lr, options.auto_frames, options.devices) == (7, 4e-4, 5, 2)
    assert (options.model, options.data) == ("m", "d.xyz")


def test_auto_ranks_force_free_frames_by_energy(tmp_path: Path) -> None:
    from lam.calculator import LAMCalculator
    from lam.train.refit import rank_heads

    model = load_model(str(parent_folder(tmp_path, ("a", "b", "c"))))
    frames = []
    for i, a in enumerate((3.5, 3.6, 3.7, 3.8, 3.9, 3.65)):  # unrattled cells: every force is zero
        atoms = bulk("Cu", "fcc", a=a, cubic=True)
        atoms.symbols[: i % 3] = "Al"
        atoms.calc = LAMCalculator(model, head="c")
        energy = atoms.get_potential_energy() + 0.3 * len(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.zeros((len(atoms), 3)))
        frames.append(atoms)
    ranking = rank_heads(model, frames)
    assert ranking[0][0] == "c"  # the head that made the energies, not the one with the weakest forces
    assert ranking[0][1]["energy_mae_per_atom"] < 1e-6 < ranking[1][1]["energy_mae_per_atom"]


def test_level_of_theory_restricts_auto_to_that_functional(tmp_path: Path) -> None:
    """--level-of-theory ranks only heads of that functional; an unknown one ranks them all."""
    from lam.train.finetune.prepare import heads_of_level

    specs = (HeadSpec("a", "PBE / PBE+U (VASP)"), HeadSpec("b", "RPBE (VASP)"), HeadSpec("c", "pbe (VASP)"))
    model = LAM(dataclasses.replace(preset("student"), heads=specs)).double()
    assert heads_of_level(model, "PBE") == ["a", "c"]
    assert heads_of_level(model, "rpbe") == ["b"]
    assert heads_of_level(model, "SCAN") is None and heads_of_level(model, None) is None
    frames = emt_frames(4)
    auto = prepare(model, frames, dataclasses.replace(FAST, head="auto", level_of_theory="RPBE"), "x.extxyz")
    assert auto.parent_head == "b" and [h for h, _ in auto.ranking] == ["b"]


def test_training_task_unfreezes_a_model_frozen_by_the_calculator() -> None:
    from lam.calculator import LAMCalculator
    from lam.train.module import LAMTask

    model = LAM(preset("student")).double()
    LAMCalculator(model)
    assert not any(p.requires_grad for p in model.parameters())
    task = LAMTask(model)
    assert all(p.requires_grad for p in task.model.parameters())


def test_training_frames_without_forces_are_warned_about_and_recorded(tmp_path: Path) -> None:
    parent = parent_folder(tmp_path)
    options = dataclasses.replace(FAST, max_steps=0, val_fraction=0.0, test_fraction=0.0)
    with pytest.warns(UserWarning, match="none of the 4 training frames has a force above"):
        run_finetune(str(parent), eos_frames(), tmp_path / "eos", options, "eos.extxyz")
    assert json.loads((tmp_path / "eos" / "finetune.json").read_text())["train_frames_with_forces"] == 0
    card = (tmp_path / "eos" / "README.md").read_text()
    assert "| training frames with forces | 0 " in card and "**Warning:** none of the 4" in card

    rattled = emt_frames(3)  # one rattled frame is enough to silence the warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_finetune(str(parent), eos_frames() + rattled[:1], tmp_path / "mixed", options, "mixed.extxyz")
    assert json.loads((tmp_path / "mixed" / "finetune.json").read_text())["train_frames_with_forces"] == 1
    assert "Warning" not in (tmp_path / "mixed" / "README.md").read_text()


def test_frames_missing_a_label_are_counted_and_named(tmp_path: Path) -> None:
    parent = parent_folder(tmp_path)
    frames = emt_frames(8)
    for index in (2, 5):  # energies but no forces
        atoms = frames[index]
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy())
        atoms.info["frame_id"] = f"cu.extxyz#{index}"
    options = dataclasses.replace(FAST, max_steps=0, val_fraction=0.0, test_fraction=0.0)
    with pytest.warns(UserWarning, match=r"2 of 8 frames have no forces \(cu.extxyz#2, cu.extxyz#5\)"):
        run_finetune(str(parent), frames, tmp_path / "warned", options, "cu.extxyz")
    with pytest.raises(ValueError, match="2 of 8 frames have no forces"):
        strict = dataclasses.replace(options, require_labels=True)
        run_finetune(str(parent), frames, tmp_path / "refused", strict, "cu.extxyz")
    assert not (tmp_path / "refused").exists()


def test_labels_in_another_unit_are_warned_about(tmp_path: Path) -> None:
    """Forces in Hartree/Bohr (51 times too small as eV/Å) are named; the same frames in eV/Å are not.

    lam-mini's mlearn_elemental_pbe head predicts copper forces on the scale of EMT's (0.53 against
    0.44 eV/Å RMS on these frames).
    """
    from ase.units import Bohr, Hartree

    frames = emt_frames(10, third="Cu", seed=1)
    converted = []
    for atoms in emt_frames(10, third="Cu", seed=1):
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy() / Hartree,
                                           forces=atoms.get_forces() / (Hartree / Bohr))
        converted.append(atoms)
    options = dataclasses.replace(FAST, head="mlearn_elemental_pbe", max_steps=0)
    with pytest.warns(UserWarning, match=r"are the forces in eV/Å.*\(worst frames: checked frame 0\)"):
        run_finetune("lam-mini", converted, tmp_path / "hartree", options, "hartree.extxyz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_finetune("lam-mini", frames, tmp_path / "ev", options, "ev.extxyz")
    assert not [w for w in caught if "eV/Å?" in str(w.message) or "total energies" in str(w.message)]
