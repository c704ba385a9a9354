"""ASE calculator for lam models (teacher or student), from a notebook or a script."""

from __future__ import annotations

from pathlib import Path

import ase
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
            ``@revision``, local folder, or built-in model name).
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
        model: LAM | str | Path,
        head: str | None = None,
        device: str = "cpu",
        dtype: str = "float64",
        skin: float = 0.5,
        allow_unseen_elements: bool = False,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(model, LAM):
            from lam.hub import load_model

            model = load_model(str(model))
        self.torch_dtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
        # frozen like MACE's calculator does: no weight gradients to track, and the inference mode
        # takes the hand-written derivatives (lam.model.two_body_inference)
        self.model = model.to(device=device, dtype=self.torch_dtype).for_inference()
        self.head = self.model.resolve_head(head)
        self.device = device
        self.neighbors = SkinNeighborList(self.model.cutoff, skin)
        self.allow_unseen_elements = allow_unseen_elements

    def calculate(
        self,
        atoms: ase.Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Evaluate the model on ``atoms`` (ASE calls this through get_potential_energy etc.)."""
        super().calculate(atoms, properties, system_changes)
        properties = properties or ["energy"]
        atoms = self.atoms
        if "numbers" in system_changes:
            check_elements(self.model, self.head, atoms.numbers, self.allow_unseen_elements)
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
        out = self.model(batch, head=self.head, compute_forces=True, compute_stress=want_stress)
        energy = float(out.energy.detach().cpu()[0])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": out.node_energy.detach().cpu().double().numpy(),
            "forces": out.forces.detach().cpu().double().numpy(),
        }
        if want_stress:
            s = out.stress.detach().cpu().double().numpy()[0]
            self.results["stress"] = stress_voigt(s)
