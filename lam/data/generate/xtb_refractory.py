"""``xtb-refractory``: elemental bcc refractory metals (V Nb Ta Mo W), labelled with GFN1-xTB.

The random Materials-Project samples the built-in model is pretrained on hold these elements almost
only in compounds (oxides, chalcogenides, intermetallics): no elemental metal. This recipe gives the
pretraining metallic bonding of group 5 and 6: bcc cells over a volume scan (lattice constant ±8 %
around experiment), random strains (≤ 4 %), rattles (0.02-0.14 Å, the largest like a hot solid), a
vacancy, and fcc / A15 polymorphs. GFN1-xTB because GFN2-xTB's SCF does not converge for these
metals; it is a rough surface (Ta's GFN1 equilibrium lattice is > 6 % too large), which its own
head absorbs. Its repulsion is very stiff (50 eV/Å on a Ta pair pushed to 2.1 Å), so the rattles stay
thermal: liquid-like 0.25 Å ones gave forces of hundreds of eV/Å. tblite samples the Brillouin zone
at Γ only, so cells hold at least 15 atoms.
"""

import ase
import numpy as np
from ase.build import bulk
from ase.data import atomic_numbers, reference_states

from lam.data.generate.result import GeneratedSet
from lam.data.generate.sampling import random_strain
from lam.data.labelers import label_frames

METALS = ("V", "Nb", "Ta", "Mo", "W")
# kind of frame and its probability: most frames are small bcc cells (cheap); a few larger or other
KINDS = {"bcc-volume": 0.3, "bcc-strain": 0.25, "bcc-hot": 0.2, "bcc-vacancy": 0.1, "fcc": 0.1, "a15": 0.05}


# A15 (Cr3Si / beta-W) of one element: 8 sites of the cubic cell, fractional coordinates
A15_SITES = (
    (0, 0, 0), (0.5, 0.5, 0.5),
    (0.25, 0.5, 0), (0.75, 0.5, 0), (0, 0.25, 0.5), (0, 0.75, 0.5), (0.5, 0, 0.25), (0.5, 0, 0.75),
)


def _bcc_a(symbol: str) -> float:
    """Experimental bcc lattice constant (Å) from ``ase.data.reference_states``."""
    return float(reference_states[atomic_numbers[symbol]]["a"])


def frame(kind: str, metal: str, rng: np.random.Generator) -> ase.Atoms:
    """One unlabelled frame of ``kind`` (a key of :data:`KINDS`) for ``metal``: 15-32 atoms."""
    a = _bcc_a(metal)
    if kind == "fcc":  # same volume per atom as bcc: 32 atoms
        atoms = bulk(metal, "fcc", a=a * 2 ** (1 / 3), cubic=True).repeat(2)
    elif kind == "a15":  # same volume per atom as bcc: 16 atoms
        cell = a * 4 ** (1 / 3) * np.eye(3)
        atoms = ase.Atoms(metal * 8, scaled_positions=A15_SITES, cell=cell, pbc=True).repeat((2, 1, 1))
    else:
        atoms = bulk(metal, "bcc", a=a, cubic=True).repeat(2)  # 16 atoms
        if kind == "bcc-vacancy":
            del atoms[int(rng.integers(len(atoms)))]
    if kind == "bcc-volume":
        atoms.set_cell(atoms.cell * rng.uniform(0.92, 1.08), scale_atoms=True)
    elif kind != "bcc-hot":
        atoms = random_strain(atoms, rng, max_strain=0.04)
    atoms = atoms.copy()
    atoms.rattle(stdev=rng.uniform(0.08, 0.14) if kind == "bcc-hot" else rng.uniform(0.02, 0.10), rng=rng)
    return atoms


def generate(
    n_frames: int = 250, seed: int = 0, calculator: str = "gfn1-xtb", progress: bool = False
) -> GeneratedSet:
    """Generate and label ``n_frames`` elemental refractory-metal frames (15-32 atoms each).

    Args:
        n_frames: number of frames (1.5-4 s each with GFN1-xTB on one core, fcc ones longer).
        seed: random seed; the same seed gives identical frames.
        calculator: labeller spec (``gfn1-xtb``; ``gfn2-xtb`` does not converge for these metals).
        progress: show a progress bar while labelling.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(n_frames):
        kind = str(rng.choice(list(KINDS), p=list(KINDS.values())))
        metal = str(rng.choice(METALS))
        atoms = frame(kind, metal, rng)
        atoms.info.update(config_type=kind, frame_id=f"xtb-refractory:seed{seed}#{index}")
        frames.append(atoms)
    return GeneratedSet(
        name="xtb_refractory_gfn1",
        recipe="xtb-refractory",
        frames=label_frames(frames, calculator, progress=progress),
        calculator=calculator,
        description=(
            "Elemental V Nb Ta Mo W: bcc cells over a ±8 % lattice scan, strained (<= 4 %), rattled "
            "(0.02-0.14 Å) or with a vacancy, plus fcc and A15 polymorphs; metallic bonding of group 5-6 "
            "metals for pretraining, at a rough semi-empirical level."
        ),
        periodic=True,
        parameters={"n_frames": n_frames, "seed": seed, "calculator": calculator},
    )
