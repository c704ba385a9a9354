"""A fine-tuning run from start to saved folder: load, split, prepare, train, test, save.

The flow of :func:`finetune`: load the parent model (built-in name, folder or Hub id@revision) →
split the data (seeded) → check elements → pick the starting head (a named one, ``auto`` = best
zero-shot after refit, or ``new``) and copy it under the fine-tuned head's name → refit its energy
references on the training frames → train (``full``, ``frozen`` descriptor or ``replay``) with early
stopping → test report and parity plot → save a model folder with a card naming the lineage.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import ase
from ase.data import chemical_symbols

from lam.data.labels import missing_label_message
from lam.data.sources import load_frames
from lam.data.splits import split_frames
from lam.hub.card import CARD_FILE, Lineage, finetuned_card
from lam.hub.models import load_model_and_ref
from lam.hub.outputs import refuse_existing_model, write_json
from lam.model.lam import LAM
from lam.train.evaluate import error_metrics, evaluate, format_table, predict
from lam.train.finetune.checks import unit_warnings
from lam.train.finetune.fit import last_checkpoint, train
from lam.train.finetune.options import FinetuneOptions
from lam.train.finetune.prepare import (
    Prepared,
    force_information_warning,
    head_name_for,
    prepare,
    refit_note,
    replay_sources,
)

REPORT_FILE = "finetune.json"


@dataclass
class FinetuneResult:
    """What :func:`finetune` did: the model folder, decisions, and errors before and after.

    Attributes:
        out: the saved model folder.
        prepared: head choice, refit shifts and ranking.
        split_sizes: (train, validation, test) frame counts.
        steps: optimiser steps taken.
        step0: zero-shot errors after the refit (on the test frames, else the validation frames).
        test: errors of the fine-tuned head on the test frames (empty without test frames).
    """

    out: Path
    prepared: Prepared
    split_sizes: tuple[int, int, int]
    steps: int
    step0: dict[str, dict]
    test: dict[str, dict]


def output_folder(options: FinetuneOptions) -> Path:
    """``options.out``, or ``finetuned_<head name>`` from the head name or the data's name."""
    if options.out is not None:
        return Path(options.out)
    return Path(f"finetuned_{options.name or head_name_for(str(options.data), [])}")


def finetune(
    options: FinetuneOptions,
    frames: Sequence[ase.Atoms] | None = None,
    test_frames: Sequence[ase.Atoms] | None = None,
) -> FinetuneResult:
    """Fine-tune ``options.model`` and save the result as a model folder (see the module docstring).

    Args:
        options: the whole run (see :class:`FinetuneOptions`).
        frames: labelled frames from Python; None reads ``options.data``.
        test_frames: a separate test set from Python; None reads ``options.test_data`` when given.
            With a test set, the frames are split into train and validation only.
    """
    if options.data is None:
        raise ValueError("lam finetune needs --data DATA (a labelled file or a registered dataset name)")
    out = output_folder(options)
    resuming = options.resume and last_checkpoint(out / "logs").is_file()
    if not resuming:  # a resumed run writes into the folder its first part made
        refuse_existing_model(out, options.overwrite)
    frames = list(frames) if frames is not None else load_frames(options.data)
    missing = missing_label_message(frames, ("energy", "forces"), str(options.data))
    if missing and options.require_labels:
        raise ValueError(missing)
    if missing:
        warnings.warn(missing + " (--require-labels refuses such data)", stacklevel=2)
    if test_frames is None and options.test_data is not None:
        test_frames = load_frames(options.test_data)
    model, parent = load_model_and_ref(options.model)
    test_fraction = 0.0 if test_frames else options.test_fraction
    split = split_frames(frames, options.val_fraction, test_fraction, options.seed)
    if test_frames:
        split.test = list(test_frames)
    replay = replay_sources(model, options.replay_frames, options.seed) if options.mode == "replay" else None
    prepared = prepare(model, split.train, options, options.data)
    warning = force_information_warning(prepared.force_frames, len(split.train))
    if warning:  # before training, so the user can stop and add frames
        warnings.warn(warning, stacklevel=2)
    # zero-shot error after the refit, on the same frames as the final test report when there are any
    before = split.test or split.val
    step0 = {}
    if before:
        parity = predict(model, before, prepared.head)
        step0 = {prepared.head: error_metrics(parity)}
        for message in unit_warnings(parity, before, str(options.data)):
            warnings.warn(message, stacklevel=2)
    if options.progress:  # what was decided, before minutes of training
        print(describe_start(prepared, split.sizes, step0, options.max_steps), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    steps = train(model, prepared.head, split, options, out / "logs", replay) if options.max_steps > 0 else 0
    model.keep_heads([prepared.head, *(replay or {})])
    test = evaluate(model, split.test, [prepared.head], plot_dir=out) if split.test else {}
    result = FinetuneResult(out, prepared, split.sizes, steps, step0, test)
    lineage = Lineage(parent, prepared.parent_head, prepared.head, options.mode)
    save_finetuned(model, result, lineage, options.data)
    return result


def save_finetuned(model: LAM, result: FinetuneResult, lineage: Lineage, data_name: str) -> None:
    """Write the card and ``finetune.json``, then config and weights (a model only once complete)."""
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
    report = {
        "lineage": lineage.to_dict(),
        "split_sizes": result.split_sizes,
        "steps": result.steps,
        "step0": result.step0,
        "test": result.test,
        "new_elements": [chemical_symbols[z] for z in result.prepared.new_elements],
        "train_frames_with_forces": result.prepared.force_frames,
        "auto_ranking": [[h, m] for h, m in result.prepared.ranking],
    }
    write_json(result.out / REPORT_FILE, report)
    model.save_pretrained(result.out)


def describe_start(prepared: Prepared, sizes: tuple[int, int, int], step0: dict, max_steps: int) -> str:
    """What a run decided before training: head ranking, new elements, split, zero-shot errors."""
    lines = [format_ranking(prepared.ranking)] if prepared.ranking else []
    if prepared.new_elements:
        symbols = [chemical_symbols[z] for z in prepared.new_elements]
        lines.append(f"elements new to the model (embeddings trained from scratch): {symbols}")
    lines.append(f"head {prepared.head!r} from {prepared.parent_head!r}; split (train, val, test) {sizes}; "
                 f"training up to {max_steps} steps")
    if step0:
        lines.append("zero-shot (after the energy refit), held-out frames:\n" + format_table(step0))
    return "\n".join(lines)


def format_ranking(ranking: list[tuple[str, dict]]) -> str:
    """The ``head=auto`` table (meV/atom, meV/Å)."""
    return "zero-shot errors after reference refit (best first):\n" + format_table(dict(ranking))
