"""``emt-bulk``: Materials-Project-style bulk metals and binary alloys, labelled with EMT.

Crystals: fcc, bcc and hcp cells of the EMT metals (Al Cu Ag Au Ni Pd Pt) at their fcc
nearest-neighbour distance, and random binary fcc alloys with a Vegard-law lattice constant. Each
frame is then perturbed by one of: a rattle (0.02-0.10 Å), a random strain (≤ 4 %) plus rattle, or
a short Langevin MD run (300-1500 K, 10-40 steps of 2 fs) driven by EMT.
"""

import ase
import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.data import atomic_numbers, reference_states

from lam.data.generate.result import GeneratedSet
from lam.data.generate.sampling import langevin_snapshot, random_strain
from lam.data.labelers import label_frames

METALS = ("Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt")
STRUCTURES = ("fcc", "bcc", "hcp", "alloy")


def _fcc_a(symbol: str) -> float:
    """Experimental fcc lattice constant (Å) from ``ase.data.reference_states``."""
    return float(reference_states[atomic_numbers[symbol]]["a"])


def crystal(
    structure: str, metals: tuple[str, str], fraction: float, size: int, rng: np.random.Generator
) -> ase.Atoms:
    """An ideal crystal, ``size`` repetitions of the conventional/orthorhombic cell per axis.

    Args:
        structure: ``fcc``, ``bcc``, ``hcp`` or ``alloy`` (random fcc A(1-x)B(x)).
        metals: (host, solute); the solute is used for ``alloy`` only.
        fraction: solute fraction x for ``alloy`` (rounded to whole atoms); other structures ignore it.
        size: repetitions per axis (fcc/alloy: 4 size^3 atoms, bcc: 2 size^3, hcp: 4 size^3).
        rng: picks the solute sites of an alloy.
    """
    host, solute = metals
    a_fcc = _fcc_a(host)
    if structure == "bcc":  # same volume per atom as fcc
        atoms = bulk(host, "bcc", a=(a_fcc**3 / 2) ** (1 / 3), cubic=True)
    elif structure == "hcp":  # same nearest-neighbour distance as fcc, ideal c/a
        atoms = bulk(host, "hcp", a=a_fcc / np.sqrt(2), covera=np.sqrt(8 / 3), orthorhombic=True)
    else:
        a = a_fcc if structure == "fcc" else (1 - fraction) * a_fcc + fraction * _fcc_a(solute)
        atoms = bulk(host, "fcc", a=a, cubic=True)
    atoms = atoms.repeat((size, size, size))
    if structure == "alloy":
        n_solute = max(1, round(fraction * len(atoms)))
        symbols = np.array(atoms.get_chemical_symbols())
        symbols[rng.permutation(len(atoms))[:n_solute]] = solute
        atoms.set_chemical_symbols(symbols.tolist())
    return atoms


def _perturb(atoms: ase.Atoms, rng: np.random.Generator) -> tuple[ase.Atoms, str]:
    """One random perturbation of an ideal crystal; returns it and its name (``config_type``)."""
    kind = rng.choice(["rattle", "strain", "md"], p=[0.3, 0.3, 0.4])
    if kind == "strain":
        atoms = random_strain(atoms, rng, max_strain=0.04)
    if kind in ("rattle", "strain"):
        atoms = atoms.copy()
        atoms.rattle(stdev=rng.uniform(0.02, 0.10), rng=rng)
        return atoms, str(kind)
    temperature = rng.uniform(300.0, 1500.0)
    return langevin_snapshot(atoms, EMT(), rng, temperature, int(rng.integers(10, 41)), 2.0), "md"


def generate(
    n_frames: int = 100, seed: int = 0, size: int = 2, calculator: str = "emt", progress: bool = False
) -> GeneratedSet:
    """Generate and label ``n_frames`` perturbed bulk metal / alloy frames.

    Args:
        n_frames: number of frames.
        seed: random seed; the same seed gives identical frames.
        size: cell repetitions per axis (2 gives 16-32 atoms per frame).
        calculator: labeller spec (``emt``; ``gfn1-xtb`` works too but is slow for metals).
        progress: show a progress bar while labelling.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(n_frames):
        structure = str(rng.choice(STRUCTURES))
        metals = tuple(str(m) for m in rng.choice(METALS, size=2, replace=False))
        atoms, kind = _perturb(crystal(structure, metals, rng.uniform(0.1, 0.5), size, rng), rng)
        atoms.info.update(config_type=f"{structure}-{kind}", frame_id=f"emt-bulk:seed{seed}#{index}")
        frames.append(atoms)
    return GeneratedSet(
        name="emt_bulk_alloys",
        recipe="emt-bulk",
        frames=label_frames(frames, calculator, progress=progress),
        calculator=calculator,
        description=(
            "Bulk fcc/bcc/hcp crystals of Al Cu Ag Au Ni Pd Pt and random binary fcc alloys, rattled, "
            "strained (<= 4 %) or heated by short Langevin MD (300-1500 K); MP-style bulk data for tests "
            "and tutorials, not for production physics."
        ),
        periodic=True,
        parameters={"n_frames": n_frames, "seed": seed, "size": size, "calculator": calculator},
    )
