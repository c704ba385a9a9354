"""``emt-slabs``: OC20-style adsorbates on fcc(111)/(100) metal slabs (pbc T T F), labelled with EMT.

Slabs of the EMT metals with ``size`` x ``size`` surface cells, 3 layers and 7 Å of vacuum on each
side carry one adsorbate (H, O, C, N, OH or CO, bound through its first atom) at a random
high-symmetry site, at a site-typical height (± 0.2 Å). Geometries are sampled by a rattle or a
short EMT-driven Langevin run (300-800 K, 5-20 steps of 0.5 fs), then labelled with ``calculator``
(``emt`` or ``gfn1-xtb``).
Energies are raw totals, not adsorption energies.
"""

import ase
import numpy as np
from ase.build import add_adsorbate, fcc100, fcc111
from ase.calculators.emt import EMT

from lam.data.generate.emt_bulk import METALS, _fcc_a
from lam.data.generate.result import GeneratedSet
from lam.data.generate.sampling import langevin_snapshot
from lam.data.labelers import label_frames

# Adsorbates: the binding atom first, the rest above it along +z (Å).
ADSORBATES = {
    "H": ase.Atoms("H"),
    "O": ase.Atoms("O"),
    "C": ase.Atoms("C"),
    "N": ase.Atoms("N"),
    "OH": ase.Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97]]),
    "CO": ase.Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.15]]),
}
SITES = {"111": ("ontop", "bridge", "fcc", "hcp"), "100": ("ontop", "bridge", "hollow")}
# Height (Å) of a C/N/O binding atom above the surface plane near EMT's minimum per site (scanned on
# Pt(111)); EMT's hydrogen sits about 0.2 Å higher.
HEIGHTS = {"ontop": 1.95, "bridge": 1.7, "fcc": 1.55, "hcp": 1.55, "hollow": 1.3}


def adsorbate_slab(
    metal: str, facet: str, adsorbate: str, site: str, height: float, size: int
) -> ase.Atoms:
    """An fcc(111) or fcc(100) slab (size x size x 3, 7 Å vacuum) with one adsorbate at ``site``."""
    build = fcc111 if facet == "111" else fcc100
    slab = build(metal, size=(size, size, 3), a=_fcc_a(metal), vacuum=7.0)
    add_adsorbate(slab, ADSORBATES[adsorbate].copy(), height, position=site, mol_index=0)
    slab.pbc = (True, True, False)
    del slab.info["adsorbate_info"]  # build bookkeeping, not a label
    return slab


def generate(
    n_frames: int = 50, seed: int = 0, size: int = 2, calculator: str = "emt", progress: bool = False
) -> GeneratedSet:
    """Generate and label ``n_frames`` adsorbate/slab frames.

    Args:
        n_frames: number of frames.
        seed: random seed; the same seed gives identical frames.
        size: surface cell repetitions (2 gives 12 metal atoms + adsorbate).
        calculator: labeller spec (``emt`` or ``gfn1-xtb``; geometries are always sampled with EMT).
        progress: show a progress bar while labelling.
    """
    rng, frames = np.random.default_rng(seed), []
    for index in range(n_frames):
        metal, facet = str(rng.choice(METALS)), str(rng.choice(list(SITES)))
        adsorbate, site = str(rng.choice(list(ADSORBATES))), str(rng.choice(SITES[facet]))
        height = HEIGHTS[site] + (0.2 if adsorbate == "H" else 0.0) + rng.uniform(-0.15, 0.25)
        atoms = adsorbate_slab(metal, facet, adsorbate, site, height, size)
        if rng.uniform() < 0.5:
            atoms.rattle(stdev=rng.uniform(0.02, 0.08), rng=rng)
        else:
            steps = int(rng.integers(5, 21))
            atoms = langevin_snapshot(atoms, EMT(), rng, rng.uniform(300.0, 800.0), steps, 0.5)
        atoms.info.update(config_type=f"{metal}({facet})-{adsorbate}@{site}",
                          frame_id=f"emt-slabs:seed{seed}#{index}")
        frames.append(atoms)
    return GeneratedSet(
        name="emt_adsorbates_slabs" if calculator == "emt" else "gfn1_adsorbates_slabs",
        recipe="emt-slabs",
        frames=label_frames(frames, calculator, progress=progress),
        calculator=calculator,
        description=(
            "OC20-style single adsorbates (H, O, C, N, OH, CO) on fcc(111)/(100) slabs of Al Cu Ag Au Ni "
            "Pd Pt (3 layers, pbc T T F), rattled or briefly heated; raw total energies, no stress."
        ),
        periodic="slab",
        parameters={"n_frames": n_frames, "seed": seed, "size": size, "calculator": calculator},
    )
