"""Before training: check the elements, choose the starting head, add the fine-tuned head, refit it.

A fine-tuned head starts as a copy of a pretrained head (a named one, or under ``auto`` the one with
the lowest zero-shot error after its energy references are refitted on the user's frames) or, under
``new``, from the data's statistics. ``replay`` also needs samples of the pretraining data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ase
from ase.data import chemical_symbols

from lam.data.statistics import count_frames_with_forces
from lam.model.config import HeadSpec
from lam.model.lam import LAM
from lam.train.finetune.options import FinetuneOptions, Mode
from lam.train.refit import (
    MIN_FORCE_SCALE,
    add_head_from_statistics,
    fit_environment,
    pretrained_elements,
    rank_heads,
    refit_energy_references,
)


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


def replay_sources(model: LAM, n_frames: int, seed: int) -> dict[str, list[ase.Atoms]]:
    """Per pretraining head, a seeded sample of ``n_frames`` of its registered dataset(s).

    A head's datasets come from its :class:`HeadSpec` (``datasets``, else the head name).

    Raises:
        ValueError: a head whose dataset is not shipped in the registry (naming the head).
    """
    from lam.data.registry import load_registered
    from lam.data.sources import sample_frames

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
            frames += sample_frames(dataset, n_frames, seed)
        sources[spec.name] = frames
    return sources


def refit_note(prepared: Prepared) -> str:
    """One paragraph for the card: how the head's energy references were set."""
    shifts = ", ".join(f"{chemical_symbols[z]} {v:+.4f}" for z, v in sorted(prepared.shifts.items()))
    if prepared.parent_head == "new":
        return f"New head: per-element energy references fitted on the training frames (eV): {shifts}."
    note = f"Energy references re-fitted on the training frames before step 0 (shifts, eV): {shifts}."
    if prepared.new_elements:
        note += f" Elements new to the model: {[chemical_symbols[z] for z in prepared.new_elements]}."
    return note


def scratch_model(parent: LAM, frames: Sequence[ase.Atoms], seed: int) -> LAM:
    """A randomly initialised model of ``parent``'s architecture: the from-scratch baseline.

    Like a fresh pretraining run, its environment-matrix normalisation is fitted on the frames first
    (:func:`~lam.train.refit.fit_environment`), so the baseline is not unfairly weak.
    """
    import torch

    torch.manual_seed(seed)
    fresh = LAM(parent.config).to(next(parent.parameters()).dtype)
    fit_environment(fresh, frames)
    return fresh
