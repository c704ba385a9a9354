"""Fine-tune a pretrained LAM on a user's frames: head choice, reference refit, training, export.

The flow of :func:`finetune`: load the parent model (built-in name, folder or Hub id@revision) →
split the data (seeded) → check elements → pick the starting head (a named one, ``auto`` = best
zero-shot after refit, or ``new``) and copy it under the fine-tuned head's name → refit its energy
references on the training frames → train (``full``, ``frozen`` descriptor or ``replay``) with early
stopping → test report and parity plot → save a model folder with a card naming the lineage.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import ase
import numpy as np
from ase.data import chemical_symbols

from lam.data.splits import frame_groups, stratified_holdout
from lam.data.statistics import count_frames_with_forces
from lam.hub.card import Lineage
from lam.model.config import HeadSpec
from lam.model.lam import CONFIG_FILE, LAM, WEIGHTS_FILE
from lam.train.refit import (
    MIN_FORCE_SCALE,
    add_head_from_statistics,
    pretrained_elements,
    rank_heads,
    refit_energy_references,
)

Mode = Literal["full", "frozen", "replay"]


@dataclass(frozen=True)
class FinetuneOptions:
    """How to fine-tune (the CLI flags of ``lam finetune``).

    Attributes:
        head: pretrained head to start from, ``"auto"`` (best zero-shot after refit) or ``"new"``.
        name: name of the fine-tuned head (default: from the data's file or dataset name).
        mode: ``full`` (all weights), ``frozen`` (descriptor fixed, head only) or ``replay`` (also keep
            training a sample of the pretraining data on its own heads).
        max_steps: optimiser steps at most.
        lr: peak learning rate.
        batch_size: frames per batch.
        val_fraction: fraction of the frames held out for validation / early stopping.
        test_fraction: fraction held out for the final test report (0 when a test file is given).
        seed: seed of the split, the replay sample and the training.
        patience: validation checks without improvement before early stopping.
        val_every: optimiser steps between validation checks.
        replay_frames: frames sampled from each pretraining dataset under ``replay``.
        auto_frames: training frames used to rank heads under ``head="auto"``.
        level_of_theory: the functional of the user's data (e.g. ``PBE``). With ``head="auto"`` only
            pretrained heads of that functional are ranked, when the model has any: a few symmetric
            frames rank heads by noisy energies alone and can pick another functional's head.
        final_lr_ratio: learning rate at ``max_steps`` over ``lr`` (exponential decay, DeePMD's
            ``stop_lr / start_lr``).
        warmup_steps: linear learning-rate warmup at the start.
        start_pref_e, limit_pref_e: energy-per-atom loss prefactor at the start and at the end of the
            decay (DeePMD's names; (eV/atom)^-2). Fine-tuning default: constant 1 for energy and forces,
            DeePMD's *limit* values from step 0. Its from-scratch start (energy 0.02, forces 1000) learns
            the force field's shape first; a pretrained model has one already, and with a short budget
            the force-dominated phase never ends: the energies then drift by 0.1-0.3 eV/atom while
            only forces are fitted (water, MAPbI3, 30 frames, 300 steps).
        start_pref_f, limit_pref_f: force prefactor ((eV/Å)^-2).
        start_pref_s, limit_pref_s: stress prefactor ((eV/Å^3)^-2); 0 and 0 switch the term off.
    """

    head: str = "auto"
    name: str | None = None
    mode: Mode = "full"
    max_steps: int = 1000
    lr: float = 1e-3
    batch_size: int = 4
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0
    patience: int = 10
    val_every: int = 50
    replay_frames: int = 100
    auto_frames: int = 20
    level_of_theory: str | None = None
    final_lr_ratio: float = 0.05
    warmup_steps: int = 0
    start_pref_e: float = 1.0
    limit_pref_e: float = 1.0
    start_pref_f: float = 1.0
    limit_pref_f: float = 1.0
    start_pref_s: float = 0.0
    limit_pref_s: float = 0.0


@dataclass
class Split:
    """Train / validation / test frames."""

    train: list[ase.Atoms]
    val: list[ase.Atoms]
    test: list[ase.Atoms]

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(train, val, test) frame counts."""
        return len(self.train), len(self.val), len(self.test)


@dataclass
class Prepared:
    """The model ready for training and what was decided on the way.

    Attributes:
        model: the parent with the fine-tuned head added (references refitted).
        head: name of the fine-tuned head.
        parent_head: head it was copied from, or ``"new"``.
        new_elements: atomic numbers in the data that no pretraining head has a reference for.
        ranking: ``head="auto"`` table (head, zero-shot metrics), best first; empty otherwise.
        shifts: Z -> eV added to the references by the refit (or the fresh references of a new head).
        force_frames: training frames whose forces carry information (:func:`force_frames_of`).
    """

    model: LAM
    head: str
    parent_head: str
    new_elements: list[int]
    ranking: list[tuple[str, dict]] = field(default_factory=list)
    shifts: dict[int, float] = field(default_factory=dict)
    force_frames: int = 0


def split_frames(frames: Sequence[ase.Atoms], val_fraction: float, test_fraction: float, seed: int) -> Split:
    """Seeded random split; validation and test get at least one frame when their fraction is > 0.

    When every frame has an ``info["config_type"]``, validation and test together hold each type in
    proportion to its size (:func:`lam.data.splits.stratified_holdout`).
    """
    n = len(frames)
    n_val = max(1, round(val_fraction * n)) if val_fraction > 0 else 0
    n_test = max(1, round(test_fraction * n)) if test_fraction > 0 else 0
    if n - n_val - n_test < 1:
        raise ValueError(
            f"{n} frames cannot be split into train/val/test ({val_fraction=}, {test_fraction=}); "
            "give more frames or smaller fractions"
        )
    rng = np.random.default_rng(seed)
    groups = frame_groups(frames)
    if groups is None or n_val + n_test == 0:
        order = rng.permutation(n)
    else:  # validation and test together hold every config_type in proportion
        held = rng.permutation(stratified_holdout(groups, n_val + n_test, seed))
        order = np.concatenate([held, rng.permutation(np.setdiff1d(np.arange(n), held))])
    pick = lambda idx: [frames[i] for i in idx]  # noqa: E731
    return Split(pick(order[n_val + n_test :]), pick(order[:n_val]), pick(order[n_val : n_val + n_test]))


def head_name_for(data: str, existing: Sequence[str]) -> str:
    """A head name from the data source (``water.extxyz`` -> ``water``), distinct from ``existing``."""
    stem = (
        re.sub(r"[^A-Za-z0-9_]+", "_", Path(str(data).rstrip("/")).name.split(".")[0]).strip("_")
        or "finetuned"
    )
    return stem if stem not in existing else f"{stem}_finetuned"


def element_report(model: LAM, frames: Sequence[ase.Atoms], mode: Mode) -> list[int]:
    """Elements of ``frames`` never seen in pretraining; an error under ``frozen`` (cannot be learned).

    Under ``full``/``replay`` their embedding rows (still at initialisation) are trained from scratch.
    """
    seen = pretrained_elements(model)
    present = {int(z) for atoms in frames for z in atoms.numbers}
    new = sorted(present - seen)
    if new and mode == "frozen":
        raise ValueError(
            f"--mode frozen cannot represent elements never seen in pretraining: "
            f"{[chemical_symbols[z] for z in new]} (the frozen descriptor has untrained embeddings "
            "for them); use --mode full or replay"
        )
    return new


def heads_of_level(model: LAM, level_of_theory: str | None) -> list[str] | None:
    """Heads whose level of theory starts with the functional ``level_of_theory``; None for all.

    The functional is the first word of a head's ``level_of_theory`` ("PBE / PBE+U (VASP)" is PBE,
    "RPBE (VASP)" is RPBE), compared without case. None (rank every head) when no head matches.
    """

    def functional(level: str | None) -> str:
        words = (level or "").split()
        return words[0].casefold() if words else ""

    wanted = functional(level_of_theory)
    if not wanted:
        return None
    heads = [h.name for h in model.config.heads if functional(h.level_of_theory) == wanted]
    return heads or None


def force_frames_of(frames: Sequence[ase.Atoms]) -> int:
    """How many frames have a force component above :data:`~lam.train.refit.MIN_FORCE_SCALE`."""
    return count_frames_with_forces(frames, MIN_FORCE_SCALE)


def force_information_warning(force_frames: int, n_train: int) -> str | None:
    """A warning when none of the ``n_train`` training frames constrains the forces, else None.

    Measured on Ta (``lam-mini`` 0.2.0, N=10, bench_finetune seeds 1 and 2, whose training frames are
    all symmetric cells): the fine-tuned test force RMSE ranged from .28 to 2.3 eV/Å depending on the
    starting head, where predicting zero gives .58. Energies alone do not pin down a force field.
    """
    if force_frames > 0 or n_train == 0:
        return None
    return (
        f"none of the {n_train} training frames has a force above {MIN_FORCE_SCALE} eV/Å (symmetric "
        "cells, or no forces): the fine-tuned forces are not constrained by your data and can be far "
        "off; add displaced, strained-and-rattled or MD frames"
    )


def prepare(model: LAM, train: Sequence[ase.Atoms], options: FinetuneOptions, data: str) -> Prepared:
    """Choose the starting head, add the fine-tuned head and refit its references on ``train``."""
    new_elements = element_report(model, train, options.mode)
    force_frames = force_frames_of(train)
    name = options.name or head_name_for(data, list(model.heads))
    if name in model.heads:
        raise ValueError(
            f"fine-tuned head name {name!r} already exists in the model; heads: {list(model.heads)}"
        )
    spec = HeadSpec(name, datasets=(str(data),))
    if options.head == "new":
        shifts = add_head_from_statistics(model, spec, train)
        return Prepared(model, name, "new", new_elements, shifts=shifts, force_frames=force_frames)
    ranking: list[tuple[str, dict]] = []
    parent_head = options.head
    if parent_head == "auto":
        sample = list(train)[: options.auto_frames]
        ranking = rank_heads(model, sample, heads_of_level(model, options.level_of_theory))
        parent_head = ranking[0][0]
    model.resolve_head(parent_head)  # KeyError listing the heads
    model.add_head(spec, copy_from=parent_head)
    refit = refit_energy_references(model, train, name)
    return Prepared(model, name, parent_head, new_elements, ranking, refit.shifts, force_frames=force_frames)


def refuse_existing_model(out: Path, overwrite: bool) -> None:
    """Raise unless ``out`` holds no model or ``overwrite`` is set."""
    held = [f for f in (CONFIG_FILE, WEIGHTS_FILE) if (out / f).exists()]
    if held and not overwrite:
        raise FileExistsError(
            f"{out} already holds a model ({', '.join(held)}); pass --overwrite true to replace it"
        )


def format_ranking(ranking: list[tuple[str, dict]]) -> str:
    """The ``--head auto`` table (meV/atom, meV/Å)."""
    from lam.train.evaluate import format_table

    return "zero-shot errors after reference refit (best first):\n" + format_table(dict(ranking))


def save_lineage_json(out: Path, lineage: Lineage, extra: dict) -> None:
    """``finetune.json``: lineage + split sizes + metrics, for scripts (the card has the same)."""
    (out / "finetune.json").write_text(json.dumps({"lineage": lineage.to_dict(), **extra}, indent=2) + "\n")


def replay_sources(model: LAM, n_frames: int, seed: int) -> dict[str, list[ase.Atoms]]:
    """Per pretraining head, a seeded sample of ``n_frames`` of its registered dataset(s).

    A head's datasets come from its :class:`HeadSpec` (``datasets``, else the head name).

    Raises:
        ValueError: a head whose dataset is not shipped in the registry (naming the head).
    """
    from lam.data.registry import load_registered
    from lam.data.training_format import row_to_atoms

    sources = {}
    for spec in model.config.heads:
        frames = []
        for name in spec.datasets or (spec.name,):
            try:
                dataset = load_registered(name)
            except (LookupError, FileNotFoundError) as error:
                raise ValueError(
                    f"replay: head {spec.name!r} names dataset {name!r}, which cannot be loaded: {error}"
                ) from error
            rows = np.random.default_rng(seed).permutation(len(dataset))[:n_frames]
            frames += [row_to_atoms(dataset[int(i)]) for i in rows]
        sources[spec.name] = frames
    return sources


@dataclass
class FinetuneResult:
    """What :func:`finetune` did: the model folder, decisions, and errors before and after."""

    out: Path
    prepared: Prepared
    split_sizes: tuple[int, int, int]
    steps: int
    step0: dict[str, dict]
    test: dict[str, dict]


def finetune(
    model_ref: str,
    frames: Sequence[ase.Atoms],
    out: str | Path,
    options: FinetuneOptions,
    data_name: str,
    test_frames: Sequence[ase.Atoms] | None = None,
    overwrite: bool = False,
) -> FinetuneResult:
    """Fine-tune ``model_ref`` on ``frames`` and save the result as a model folder ``out``.

    Args:
        model_ref: built-in name, local folder or Hub id with optional ``@revision``.
        frames: labelled frames (split into train/val/test unless ``test_frames`` is given).
        out: output model folder (config.json, model.safetensors, README.md, parity PNG, metrics).
        options: see :class:`FinetuneOptions`.
        data_name: the data source as the user named it (card, default head name).
        test_frames: a separate test set; then ``frames`` is split into train/val only.
        overwrite: replace a model already in ``out``.
    """
    from lam.hub.models import load_model, parse_model_ref
    from lam.train.evaluate import evaluate
    from lam.train.finetune_fit import train

    out = Path(out)
    refuse_existing_model(out, overwrite)
    parent, model = parse_model_ref(model_ref), load_model(model_ref)
    split = split_frames(
        frames, options.val_fraction, 0.0 if test_frames else options.test_fraction, options.seed
    )
    if test_frames:
        split.test = list(test_frames)
    replay = replay_sources(model, options.replay_frames, options.seed) if options.mode == "replay" else None
    prepared = prepare(model, split.train, options, data_name)
    warning = force_information_warning(prepared.force_frames, len(split.train))
    if warning:  # before training, so the user can stop and add frames
        warnings.warn(warning, stacklevel=2)
    # zero-shot error after the refit, on the same frames as the final test report when there are any
    before = split.test or split.val
    step0 = evaluate(model, before, [prepared.head]) if before else {}
    out.mkdir(parents=True, exist_ok=True)
    steps = train(model, prepared.head, split, options, out / "logs", replay) if options.max_steps > 0 else 0
    model.keep_heads([prepared.head, *(replay or {})])
    test = evaluate(model, split.test, [prepared.head], plot_dir=out) if split.test else {}
    result = FinetuneResult(out, prepared, split.sizes, steps, step0, test)
    save_finetuned(
        model, result, Lineage(parent, prepared.parent_head, prepared.head, options.mode), data_name
    )
    return result


def refit_note(prepared: Prepared) -> str:
    """One paragraph for the card: how the head's energy references were set."""
    shifts = ", ".join(f"{chemical_symbols[z]} {v:+.4f}" for z, v in sorted(prepared.shifts.items()))
    if prepared.parent_head == "new":
        return f"New head: per-element energy references fitted on the training frames (eV): {shifts}."
    note = f"Energy references re-fitted on the training frames before step 0 (shifts, eV): {shifts}."
    if prepared.new_elements:
        note += f" Elements new to the model: {[chemical_symbols[z] for z in prepared.new_elements]}."
    return note


def save_finetuned(model: LAM, result: FinetuneResult, lineage: Lineage, data_name: str) -> None:
    """Write weights, config, card (lineage + test metrics) and ``finetune.json``."""
    from lam.hub.card import CARD_FILE, finetuned_card
    from lam.train.evaluate import format_table

    model.save_pretrained(result.out)
    table = format_table(result.test) if result.test else "(no test frames)"
    notes = [refit_note(result.prepared)]
    warning = force_information_warning(result.prepared.force_frames, result.split_sizes[0])
    if warning:
        notes.append(f"**Warning:** {warning}.")
    card = finetuned_card(
        lineage,
        data_name,
        result.split_sizes,
        result.steps,
        result.test,
        table,
        "\n\n".join(notes),
        result.prepared.force_frames,
    )
    card.save(result.out / CARD_FILE)
    save_lineage_json(
        result.out,
        lineage,
        {
            "split_sizes": result.split_sizes,
            "steps": result.steps,
            "step0": result.step0,
            "test": result.test,
            "new_elements": [chemical_symbols[z] for z in result.prepared.new_elements],
            "train_frames_with_forces": result.prepared.force_frames,
            "auto_ranking": [[h, m] for h, m in result.prepared.ranking],
        },
    )
