"""``pyscf-small``: a few rattled water and methane frames labelled with PySCF DFT."""

import numpy as np
from ase.build import molecule

from lam.data.generate.result import GeneratedSet
from lam.data.labelers import label_frames

MOLECULES = ("H2O", "CH4")


def generate(
    n_frames: int = 4, seed: int = 0, size: int = 1, calculator: str = "pyscf:pbe/sto-3g",
    progress: bool = False,
) -> GeneratedSet:
    """Generate and label ``n_frames`` rattled water / methane frames.

    Args:
        n_frames: number of frames (each costs ~0.1-10 s depending on the basis).
        seed: random seed; the same seed gives identical frames.
        size: molecules per frame, placed 4 Å apart along x (1 = monomers).
        calculator: a ``pyscf:<xc>/<basis>`` spec (e.g. ``pyscf:wb97x/6-31g*``).
        progress: show a progress bar while labelling.
    """
    rng, frames = np.random.default_rng(seed), []
    for index in range(n_frames):
        name = MOLECULES[index % len(MOLECULES)]
        atoms = molecule(name)
        for copy in range(1, size):
            shifted = molecule(name)
            shifted.positions += [4.0 * copy, 0.0, 0.0]
            atoms += shifted
        atoms.rattle(stdev=rng.uniform(0.02, 0.08), rng=rng)
        atoms.info.update(config_type=name, frame_id=f"pyscf-small:seed{seed}#{index}")
        frames.append(atoms)
    tag = calculator.lower().split(":", 1)[-1].replace("/", "_").replace("*", "s").replace("-", "")
    return GeneratedSet(
        name=f"pyscf_small_{tag}",
        recipe="pyscf-small",
        frames=label_frames(frames, calculator, progress=progress),
        calculator=calculator,
        description="A few rattled water and methane molecules labelled with PySCF Kohn-Sham DFT.",
        periodic=False,
        parameters={"n_frames": n_frames, "seed": seed, "size": size, "calculator": calculator},
    )
