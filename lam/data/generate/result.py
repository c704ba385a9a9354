"""What a generation recipe returns."""

from dataclasses import dataclass, field

import ase


@dataclass(frozen=True)
class GeneratedSet:
    """Labelled frames plus what a registry card needs to describe them.

    Attributes:
        name: default dataset / head name (e.g. ``emt_bulk_alloys``).
        recipe: the recipe that made it (e.g. ``emt-bulk``).
        frames: labelled frames (``SinglePointCalculator``: energy eV, forces eV/Å, stress eV/Å^3).
        calculator: the labeller spec (see :mod:`lam.data.labelers`).
        description: one paragraph for the card.
        periodic: ``True``, ``False`` or ``"slab"`` (registry card convention).
        parameters: the recipe arguments (n_frames, seed, size, ...), for provenance.
    """

    name: str
    recipe: str
    frames: list[ase.Atoms]
    calculator: str
    description: str
    periodic: bool | str
    parameters: dict = field(default_factory=dict)
