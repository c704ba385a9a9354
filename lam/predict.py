"""Batched prediction over many structures: frames of any size packed into graphs up to an atom budget.

This is the package's one predict loop: ``lam predict`` (:mod:`lam.hub.serving`), ``lam eval`` and the
fine-tuning and distillation reports (:mod:`lam.train.evaluate`) and notebooks all go through
:func:`iter_results`.

:func:`iter_predict` streams: it reads frames from any iterable (a generator over a file larger than
memory works), packs up to ``batch_atoms`` atoms into one batch, and yields each frame back as an
``ase.Atoms`` with a ``SinglePointCalculator`` holding energy (eV), forces (eV/Å), per-atom energies
(eV) and, for periodic frames, stress (eV/Å^3, ASE's Voigt order and sign).

``lam.predict(...)`` is :func:`predict` (the package re-exports it under the module's name).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import ase
import numpy as np
import torch
from ase.calculators.singlepoint import SinglePointCalculator
from torch_geometric.data import Batch

from lam.data.graph import AtomicGraph
from lam.data.labels import stress_voigt
from lam.hub.coverage import check_elements
from lam.model.lam import LAM

ModelLike = LAM | str | Path


def frame_groups(frames: Iterable[ase.Atoms], batch_atoms: int) -> Iterator[tuple[int, list[ase.Atoms]]]:
    """Consecutive groups of frames with at most ``batch_atoms`` atoms, with their first frame's index.

    A frame larger than ``batch_atoms`` goes alone.
    """
    group: list[ase.Atoms] = []
    size = first = 0
    for index, atoms in enumerate(frames):
        if group and size + len(atoms) > batch_atoms:
            yield first, group
            group, size, first = [], 0, index
        group.append(atoms)
        size += len(atoms)
    if group:
        yield first, group


def batch_results(
    frames: list[ase.Atoms], first: int, model: LAM, head: str, device: torch.device, stress: bool | None
) -> list[dict[str, float | np.ndarray]]:
    """One batch through the model: one ASE-style results dict per frame (eV, eV/Å, Voigt eV/Å^3)."""
    dtype = next(model.parameters()).dtype
    # a frame's own id ("file#index", from the readers) names it in memory and density errors
    graphs = [
        AtomicGraph.from_atoms(
            atoms, model.cutoff, dtype=dtype, frame_id=atoms.info.get("frame_id", f"frame {first + offset}")
        )
        for offset, atoms in enumerate(frames)
    ]
    batch = Batch.from_data_list(graphs).to(device)
    with_stress = [bool(atoms.pbc.all()) if stress is None else stress for atoms in frames]
    out = model(batch, head=head, compute_forces=True, compute_stress=any(with_stress))
    energy = out.energy.detach().double().cpu().numpy()
    forces = out.forces.detach().double().cpu().numpy()
    node_energy = out.node_energy.detach().double().cpu().numpy()
    stresses = out.stress.detach().double().cpu().numpy() if any(with_stress) else None
    bounds = np.cumsum([0] + [len(atoms) for atoms in frames])
    per_frame = []
    for index in range(len(frames)):
        start, end = bounds[index], bounds[index + 1]
        results = {"energy": float(energy[index]), "forces": forces[start:end]}
        results["energies"] = node_energy[start:end]
        if with_stress[index]:
            results["stress"] = stress_voigt(stresses[index])
        per_frame.append(results)
    return per_frame


def as_model(model: ModelLike) -> LAM:
    """``model`` itself, or the model a reference names (put in inference mode: it is ours alone).

    Args:
        model: a ``LAM``, or anything :func:`lam.hub.load_model` accepts (built-in name such as
            ``"lam-mini"``, local folder, Hub id with optional ``@revision``).
    """
    if isinstance(model, LAM):
        return model
    from lam.hub.models import load_model

    return load_model(str(model)).for_inference()


def iter_results(
    model: LAM,
    frames: Iterable[ase.Atoms],
    head: str | None = None,
    batch_atoms: int = 2000,
    device: str | torch.device | None = None,
    allow_unseen_elements: bool = False,
    stress: bool | None = None,
) -> Iterator[dict[str, float | np.ndarray]]:
    """The predictions of every frame, in order, as ASE-style results dicts; the package's predict loop.

    Each dict holds ``energy`` (eV), ``forces`` [N, 3] (eV/Å), ``energies`` [N] (per-atom, eV) and,
    where asked, ``stress`` [6] (eV/Å^3, ASE's Voigt order and sign; zeros for a non-periodic frame).

    Args:
        model: the model; left in eval mode (and on ``device`` when one is given).
        frames: structures (their labels, if any, are not read).
        head: fitting head (None: the only head of a single-head model).
        batch_atoms: atoms per batch at most; larger batches are faster and take more memory.
        device: torch device; None runs where the model's weights are.
        allow_unseen_elements: predict elements the head was not trained on.
        stress: True for every frame, False for none; None for the frames periodic along all axes.

    Raises:
        UnseenElementError: a frame holds an element ``head`` was not trained on.
    """
    head = model.resolve_head(head)
    if device is not None:
        model.to(device)
    device = next(model.parameters()).device
    model.eval()
    for first, group in frame_groups(frames, batch_atoms):
        for atoms in group:
            check_elements(model, head, atoms.numbers, allow_unseen_elements)
        yield from batch_results(group, first, model, head, device, stress)


def iter_predict(
    model: ModelLike,
    frames: Iterable[ase.Atoms],
    head: str | None = None,
    batch_atoms: int = 2000,
    device: str | torch.device | None = None,
    allow_unseen_elements: bool = False,
) -> Iterator[ase.Atoms]:
    """Predict every frame of ``frames``, batch by batch, in order (see the module docstring).

    Args:
        model: a ``LAM`` or a reference to one (see :func:`as_model`).
        frames: structures (their labels, if any, are not used and not kept).
        head: fitting head (None: the only head of a single-head model).
        batch_atoms: atoms per batch at most; larger batches are faster and take more memory.
        device: torch device; None runs where the model's weights are (CPU for a loaded model).
        allow_unseen_elements: predict elements the head was not trained on.

    Yields:
        Copies of the frames, each with a ``SinglePointCalculator`` holding its predictions.

    Raises:
        UnseenElementError: a frame holds an element ``head`` was not trained on.
    """
    # tee the frames: a generator is read once, by the model and for the copies alike
    kept: deque[ase.Atoms] = deque()

    def remember(source: Iterable[ase.Atoms]) -> Iterator[ase.Atoms]:
        for atoms in source:
            kept.append(atoms)
            yield atoms

    unseen = allow_unseen_elements
    for results in iter_results(as_model(model), remember(frames), head, batch_atoms, device, unseen):
        copy = kept.popleft().copy()
        copy.calc = SinglePointCalculator(copy, **results)
        yield copy


def predict(
    model: ModelLike,
    frames: Iterable[ase.Atoms],
    head: str | None = None,
    batch_atoms: int = 2000,
    device: str | torch.device | None = None,
    allow_unseen_elements: bool = False,
) -> list[ase.Atoms]:
    """:func:`iter_predict` as a list (forces work under ``torch.no_grad`` too: the model enables grad).

    Example:
        >>> import ase.build, lam
        >>> [water] = lam.predict("lam-mini", [ase.build.molecule("H2O")], head="s66x8_wb97x")
        >>> water.get_potential_energy(), water.get_forces()  # eV, eV/Å
    """
    return list(iter_predict(model, frames, head, batch_atoms, device, allow_unseen_elements))
