"""A TorchSim ``ModelInterface`` for lam models: TorchSim's batched MD and relaxations with a lam model.

TorchSim (``pip install "lam[torchsim]"``, package ``torch-sim-atomistic``, import name ``torch_sim``)
evolves many systems at once as one ``SimState``; :class:`LAMModel` evaluates such a state with a
:class:`~lam.model.lam.LAM` head, so ``torch_sim.integrate`` and ``torch_sim.optimize`` take it like
their built-in MACE or Lennard-Jones models.

Conventions. TorchSim works in metal units (Å, eV, eV/Å, eV/Å^3) and its stress carries ASE's sign
(positive = tensile: its cell optimisers form the virial as ``-V (stress + P)``, and its metatomic
wrapper returns ``(1/V) dE/dε``); that is :class:`~lam.model.outputs.Predictions`' own convention, so
the values pass through unchanged. TorchSim stores cells as column vectors, lam (like ASE) as rows:
lam reads ``state.row_vector_cell``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Batch

try:
    from torch_sim.models.interface import ModelInterface
    from torch_sim.state import SimState
except ImportError as error:  # an optional dependency: say how to get it
    hint = 'lam.integrations.torchsim needs TorchSim: pip install "lam[torchsim]"'
    raise ImportError(f"{error}; {hint}") from error

from lam.data.graph import AtomicGraph
from lam.hub.coverage import check_elements
from lam.model.lam import LAM
from lam.predict import as_model


class LAMModel(ModelInterface):
    """A lam model as a TorchSim model: energy [n_systems], forces [n_atoms, 3], stress [n_systems, 3, 3].

    Each call searches the neighbours of every system on the CPU with lam's own neighbour list
    (:func:`lam.data.neighbors.neighbor_list`, periodic images included), packs the systems into one
    ``torch_geometric`` batch of :class:`~lam.data.graph.AtomicGraph` as :func:`lam.predict` does,
    and runs the model once on ``device``. Results are those of :class:`~lam.calculator.LAMCalculator`
    system by system.

    Args:
        model: a ``LAM``, or anything :func:`lam.hub.load_model` accepts (built-in name such as
            ``"lam-mini"``, local folder, Hub id with optional ``@revision``). A ``LAM`` given here is
            put in inference mode (:meth:`~lam.model.lam.LAM.for_inference`) and moved to ``device``
            and ``dtype``, in place, as the calculator does.
        head: fitting head (a level of theory); None means the only head of a single-head model.
        device: torch device; None takes CUDA when available, else the CPU (TorchSim's default).
        dtype: floating dtype of the model and of the results (TorchSim's default is float64).
        compute_forces: return ``forces`` (eV/Å).
        compute_stress: return ``stress`` (eV/Å^3, ASE sign; zeros for a non-periodic state), which
            TorchSim's cell relaxations and NPT integrators need.
        allow_unseen_elements: predict elements ``head`` was not trained on (otherwise an
            :class:`~lam.hub.coverage.UnseenElementError` names the heads that cover them).

    Example:
        >>> import torch_sim as ts
        >>> from lam.integrations.torchsim import LAMModel
        >>> model = LAMModel("lam-mini", head="mptrj_random1k_pbe", device="cpu")
        >>> relaxed = ts.optimize(list_of_atoms, model, optimizer=ts.frechet_cell_fire)
    """

    def __init__(
        self,
        model: LAM | str | Path,
        head: str | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float64,
        compute_forces: bool = True,
        compute_stress: bool = True,
        allow_unseen_elements: bool = False,
    ) -> None:
        super().__init__()
        self._device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._dtype = dtype
        self._compute_forces = compute_forces
        self._compute_stress = compute_stress
        # a radial cutoff: memory grows with atoms x neighbours (TorchSim's autobatcher reads this)
        self._memory_scales_with = "n_atoms_x_density"
        self.model = as_model(model).for_inference().to(device=self._device, dtype=dtype)
        self.head = self.model.resolve_head(head)
        self.allow_unseen_elements = allow_unseen_elements
        self._checked_elements: frozenset[int] = frozenset()

    def forward(self, state: SimState | dict[str, torch.Tensor], **kwargs: object) -> dict[str, torch.Tensor]:
        """Energies, forces and stresses of every system of ``state``.

        Args:
            state: a ``SimState`` (or a subclass: TorchSim's MD and optimiser states), or a dict with
                ``positions`` [n_atoms, 3] (Å), ``cell`` [n_systems, 3, 3] (Å, column vectors),
                ``pbc``, ``atomic_numbers`` [n_atoms] and optionally ``system_idx`` [n_atoms].
            **kwargs: accepted for the interface's signature; none is used.

        Returns:
            ``energy`` [n_systems] (eV), ``forces`` [n_atoms, 3] (eV/Å) when ``compute_forces``,
            ``stress`` [n_systems, 3, 3] (eV/Å^3, ASE sign) when ``compute_stress``; detached.

        Raises:
            UnseenElementError: the state holds an element ``head`` was not trained on.
        """
        if isinstance(state, dict):  # masses do not enter the energy; SimState only wants their shape
            state = SimState(**state, masses=torch.ones_like(state["positions"][:, 0]))
        self._check_elements(state.atomic_numbers)
        out = self.model(
            self._batch(state),
            head=self.head,
            compute_forces=self._compute_forces,
            compute_stress=self._compute_stress,
        )
        results = {"energy": out.energy.detach()}
        if self._compute_forces:
            results["forces"] = out.forces.detach()
        if self._compute_stress:
            results["stress"] = out.stress.detach()
        return results

    def _batch(self, state: SimState) -> Batch:
        """The systems of ``state`` as one batch of graphs on the model's device, in state order."""
        # the neighbour search is vesin on numpy (as the calculator's); float64 keeps the search exact
        positions = state.positions.detach().to("cpu", torch.float64).numpy()  # [n_atoms, 3]
        cells = state.row_vector_cell.detach().to("cpu", torch.float64).numpy()  # [n_systems, 3, 3]
        numbers = state.atomic_numbers.detach().cpu().numpy()  # [n_atoms]
        # TorchSim 0.3 has one bool for all axes; later versions a per-axis tensor [3]
        pbc = np.broadcast_to(np.asarray(torch.as_tensor(state.pbc).cpu(), dtype=bool), (3,)).copy()
        # system_idx is sorted (SimState checks it), so each system is a contiguous slice
        bounds = np.cumsum([0, *state.n_atoms_per_system.tolist()])
        graphs = [
            AtomicGraph.from_arrays(
                numbers[start:end],
                positions[start:end],
                cells[index],
                pbc,
                self.model.cutoff,
                dtype=self._dtype,
                frame_id=f"TorchSim system {index}",
            )
            for index, (start, end) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
        ]
        return Batch.from_data_list(graphs).to(self._device)

    def _check_elements(self, atomic_numbers: torch.Tensor) -> None:
        """Refuse elements the head was not trained on, once per new set of elements (MD repeats it)."""
        present = frozenset(atomic_numbers.unique().tolist())
        if present <= self._checked_elements:
            return
        check_elements(self.model, self.head, present, self.allow_unseen_elements)
        self._checked_elements = self._checked_elements | present
