"""ASE calculator for lam models (teacher or student), from a notebook or a script."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import ase
import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from lam.data.graph import AtomicGraph
from lam.data.labels import stress_voigt
from lam.data.neighbors import SkinNeighborList
from lam.hub.coverage import check_elements
from lam.model.lam import LAM


class LAMCalculator(Calculator):
    """Energy (eV), forces (eV/Å) and stress (eV/Å^3, ASE sign) from a :class:`~lam.model.lam.LAM`.

    Args:
        model: a ``LAM`` instance, or anything :func:`lam.hub.load_model` accepts (Hub id with optional
            ``@revision``, local folder, or built-in model name); or a list of them, a committee:
            results are the members' mean, plus ``energy_std``, ``forces_deviation`` and
            ``forces_deviation_max`` (DP-GEN's maximum force deviation, eV/Å) in ``calc.results``.
        head: fitting head to use (required for multi-head models: each head is a level of theory).
        device: torch device, e.g. "cpu" or "cuda".
        dtype: "float64" or "float32".
        skin: Å, neighbour-list skin: pairs are searched within cutoff + skin and reused until an
            atom has moved more than skin / 2 (a Verlet list; see
            :class:`~lam.data.neighbors.SkinNeighborList`). Results are exactly those of a fresh
            search; 0 searches at every call.
        allow_unseen_elements: predict for elements the head was not trained on (otherwise an
            :class:`~lam.hub.coverage.UnseenElementError` names the heads that cover them).

    The model is put in inference mode (:meth:`~lam.model.lam.LAM.for_inference`: eval, weights frozen,
    hand-written derivatives), in place. For MD of large cells on Linux, call
    :func:`lam.cpu_memory.reuse_freed_memory` once first (the ``lam`` command does): it changes the
    whole process's allocator, so lam never does it behind a Python user's back.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(
        self,
        model: LAM | str | Path | Sequence[LAM | str | Path],
        head: str | None = None,
        device: str = "cpu",
        dtype: str = "float64",
        skin: float = 0.5,
        allow_unseen_elements: bool = False,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        members = list(model) if isinstance(model, list | tuple) else [model]
        self.torch_dtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
        # frozen like MACE's calculator does: no weight gradients to track, and the inference mode
        # takes the hand-written derivatives (lam.model.two_body_inference)
        self.models = [_as_model(m).to(device=device, dtype=self.torch_dtype) for m in members]
        for member in self.models:
            member.for_inference()
        if len({m.cutoff for m in self.models}) != 1:
            raise ValueError(f"committee members need one cutoff; got {[m.cutoff for m in self.models]} Å")
        self.model = self.models[0]
        self.head = self.model.resolve_head(head)
        for member in self.models[1:]:
            member.resolve_head(self.head)  # KeyError naming the heads when a member lacks it
        self.device = device
        self.neighbors = SkinNeighborList(self.model.cutoff, skin)
        self.allow_unseen_elements = allow_unseen_elements

    def calculate(
        self,
        atoms: ase.Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Evaluate the model(s) on ``atoms`` (ASE calls this through get_potential_energy etc.)."""
        super().calculate(atoms, properties, system_changes)
        properties = properties or ["energy"]
        atoms = self.atoms
        if "numbers" in system_changes:
            for member in self.models:
                check_elements(member, self.head, atoms.numbers, self.allow_unseen_elements)
        pairs = self.neighbors(atoms.positions, atoms.cell.array, atoms.pbc, atoms.numbers)
        graph = AtomicGraph.from_arrays(
            atoms.numbers,
            atoms.positions,
            atoms.cell.array,
            atoms.pbc,
            self.model.cutoff,
            dtype=self.torch_dtype,
            neighbors=pairs,
        )
        # one graph is a batch of one (the model reads no batch vector then): collating costs ~1 ms
        batch = graph.to(self.device)
        want_stress = "stress" in properties and bool(self.atoms.pbc.any())
        outputs = [_results(m(batch, head=self.head, compute_forces=True, compute_stress=want_stress))
                   for m in self.models]
        self.results = committee_results(outputs)


def _as_model(model: LAM | str | Path) -> LAM:
    if isinstance(model, LAM):
        return model
    from lam.hub import load_model

    return load_model(str(model))


def _results(out: object) -> dict[str, np.ndarray | float]:
    """One model's predictions as ASE results (eV, eV/Å, stress in ASE's Voigt order)."""
    energy = float(out.energy.detach().cpu()[0])
    results = {
        "energy": energy,
        "free_energy": energy,
        "energies": out.node_energy.detach().cpu().double().numpy(),
        "forces": out.forces.detach().cpu().double().numpy(),
    }
    if out.stress is not None:
        results["stress"] = stress_voigt(out.stress.detach().cpu().double().numpy()[0])
    return results


def committee_results(outputs: list[dict]) -> dict[str, np.ndarray | float]:
    """The mean of the members' results, and for several members their disagreement.

    ``energy_std`` (eV) is the standard deviation of the total energies; ``forces_deviation`` [N]
    (eV/Å) is each atom's RMS deviation of the force vectors from their mean, and
    ``forces_deviation_max`` its maximum: DP-GEN's ``max_devi_f``, the usual trust criterion.
    """
    if len(outputs) == 1:
        return outputs[0]
    mean = {key: np.mean([o[key] for o in outputs], axis=0) for key in outputs[0]}
    results = {key: float(value) if np.ndim(value) == 0 else value for key, value in mean.items()}
    forces = np.stack([o["forces"] for o in outputs])  # [members, N, 3]
    deviation = np.sqrt(np.mean(np.sum((forces - forces.mean(axis=0)) ** 2, axis=-1), axis=0))  # [N]
    results["energy_std"] = float(np.std([o["energy"] for o in outputs]))
    results["forces_deviation"] = deviation
    results["forces_deviation_max"] = float(deviation.max()) if deviation.size else 0.0
    return results
