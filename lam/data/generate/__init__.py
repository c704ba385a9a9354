"""Seeded recipes that generate small labelled datasets with cheap reference methods.

Each recipe is a function ``(n_frames, seed, size, calculator, progress) -> GeneratedSet`` in its own
module; :data:`RECIPES` maps the command-line name to it. The same seed gives identical frames.

| recipe | style | sampling | default labeller |
|---|---|---|---|
| ``emt-bulk`` | MP-style fcc/bcc/hcp metals and binary fcc alloys | rattle, strain, short MD | ``emt`` |
| ``xtb-molecules`` | ANI-style small C/H/N/O organics (g2 set) | short MD or normal modes | ``gfn2-xtb`` |
| ``emt-slabs`` | OC20-style adsorbates on fcc(111)/(100) slabs | rattle, short MD | ``emt`` |
| ``pyscf-small`` | a few water / methane frames | rattle | ``pyscf:pbe/sto-3g`` |
| ``xtb-refractory`` | elemental V Nb Ta Mo W (bcc scan, strain, vacancy; fcc, A15) | rattle | ``gfn1-xtb`` |
"""

from collections.abc import Callable

from lam.data.generate import emt_bulk, emt_slabs, pyscf_small, xtb_molecules, xtb_refractory
from lam.data.generate.result import GeneratedSet

RECIPES: dict[str, Callable[..., GeneratedSet]] = {
    "emt-bulk": emt_bulk.generate,
    "xtb-molecules": xtb_molecules.generate,
    "emt-slabs": emt_slabs.generate,
    "pyscf-small": pyscf_small.generate,
    "xtb-refractory": xtb_refractory.generate,
}


def get_recipe(name: str) -> Callable[..., GeneratedSet]:
    """The recipe function called ``name``; an unknown name lists the known ones."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe '{name}'; known recipes: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


__all__ = ["RECIPES", "GeneratedSet", "get_recipe"]
