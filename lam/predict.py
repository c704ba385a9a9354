"""Batched prediction over many structures: frames of any size packed into graphs up to an atom budget.

:func:`iter_predict` streams: it reads frames from any iterable (a generator over a file larger than
memory works), packs up to ``batch_atoms`` atoms into one batch, and yields each frame back as an
``ase.Atoms`` with a ``SinglePointCalculator`` holding energy (eV), forces (eV/Å), per-atom energies
(eV) and, for periodic frames, stress (eV/Å^3, ASE's Voigt order and sign).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import ase
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from torch_geometric.data import Batch

from lam.data.graph import AtomicGraph
from lam.data.labels import stress_voigt
from lam.hub.coverage import check_elements
from lam.model.lam import LAM


def _batches(frames: Iterable[ase.Atoms], batch_atoms: int) -> Iterator[tuple[int, list[ase.Atoms]]]:
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


def _labelled(frames: list[ase.Atoms], first: int, model: LAM, head: str, device: str) -> list[ase.Atoms]:
    """One batch through the model; the frames back (copies) with the predictions attached."""
    dtype = next(model.parameters()).dtype
    graphs = [
        AtomicGraph.from_atoms(atoms, model.cutoff, dtype=dtype, frame_id=f"frame {first + offset}")
        for offset, atoms in enumerate(frames)
    ]
    batch = Batch.from_data_list(graphs).to(device)
    want_stress = any(atoms.pbc.all() for atoms in frames)
    out = model(batch, head=head, compute_forces=True, compute_stress=want_stress)
    energy = out.energy.detach().double().cpu().numpy()
    forces = out.forces.detach().double().cpu().numpy()
    node_energy = out.node_energy.detach().double().cpu().numpy()
    bounds = np.cumsum([0] + [len(atoms) for atoms in frames])
    labelled = []
    for index, atoms in enumerate(frames):
        start, end = bounds[index], bounds[index + 1]
        results = {"energy": float(energy[index]), "forces": forces[start:end]}
        results["energies"] = node_energy[start:end]
        if want_stress and atoms.pbc.all():
            results["stress"] = stress_voigt(out.stress[index].detach().double().cpu().numpy())
        copy = atoms.copy()
        copy.calc = SinglePointCalculator(copy, **results)
        labelled.append(copy)
    return labelled


def iter_predict(
    model: LAM,
    frames: Iterable[ase.Atoms],
    head: str | None = None,
    batch_atoms: int = 2000,
    device: str = "cpu",
    allow_unseen_elements: bool = False,
) -> Iterator[ase.Atoms]:
    """Predict every frame of ``frames``, batch by batch, in order (see the module docstring).

    Args:
        model: the model (left in eval mode on ``device``).
        frames: structures (their labels, if any, are not used and not kept).
        head: fitting head (None: the only head of a single-head model).
        batch_atoms: atoms per batch at most; larger batches are faster and take more memory.
        device: torch device.
        allow_unseen_elements: predict elements the head was not trained on.

    Raises:
        UnseenElementError: a frame holds an element ``head`` was not trained on.
    """
    head = model.resolve_head(head)
    model.to(device).eval()
    for first, group in _batches(frames, batch_atoms):
        for atoms in group:
            check_elements(model, head, atoms.numbers, allow_unseen_elements)
        yield from _labelled(group, first, model, head, device)


def predict(
    model: LAM,
    frames: Iterable[ase.Atoms],
    head: str | None = None,
    batch_atoms: int = 2000,
    device: str = "cpu",
) -> list[ase.Atoms]:
    """:func:`iter_predict` as a list (forces work under ``torch.no_grad`` too: the model enables grad)."""
    return list(iter_predict(model, frames, head, batch_atoms, device))
