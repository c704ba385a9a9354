"""``xtb-molecules``: ANI-style small closed-shell C/H/N/O organics, labelled with GFN2-xTB.

Starting geometries are the g2 molecules of ``ase.build.molecule`` made only of C, H, N and O with
an even electron count and at most ``size`` atoms. Each frame is sampled either by a short Langevin
MD run driven by the labeller (``sampling="md"``: 200-1000 K, 10-40 steps of 0.5 fs), by ANI's
normal-mode sampling (``sampling="normal-modes"``: random displacements along the Hessian
eigenvectors with energy ~ k_B T, T in 200-800 K), or by either at random (``"mixed"``, default).
"""

import ase
import numpy as np
from ase.build import molecule
from ase.calculators.calculator import Calculator
from ase.collections import g2
from ase.units import kB

from lam.data.generate.result import GeneratedSet
from lam.data.generate.sampling import langevin_snapshot
from lam.data.labelers import label_frames, make_calculator

ELEMENTS = frozenset("CHNO")
_SAMPLING_TEXT = {
    "md": "short Langevin MD",
    "normal-modes": "normal-mode displacements",
    "mixed": "short Langevin MD or normal-mode displacements",
}


def organic_molecules(max_atoms: int) -> list[str]:
    """Names of g2 closed-shell molecules made of C/H/N/O with at most ``max_atoms`` atoms, sorted."""
    names = []
    for name in sorted(g2.names):
        atoms = g2[name]
        if set(atoms.get_chemical_symbols()) <= ELEMENTS and len(atoms) <= max_atoms:
            if atoms.numbers.sum() % 2 == 0 and len(atoms) > 1:
                names.append(name)
    return names


def hessian(atoms: ase.Atoms, calculator: Calculator, delta: float = 0.005) -> np.ndarray:
    """[3N, 3N] Hessian (eV/Å^2) by central differences of the forces, symmetrised."""
    probe = atoms.copy()
    probe.calc = calculator
    n = 3 * len(atoms)
    columns = np.zeros((n, n))
    for k in range(n):
        shifted = []
        for sign in (1.0, -1.0):
            positions = atoms.positions.copy()
            positions.flat[k] += sign * delta
            probe.positions = positions
            shifted.append(probe.get_forces().ravel())
        columns[:, k] = -(shifted[0] - shifted[1]) / (2 * delta)
    return 0.5 * (columns + columns.T)


def normal_mode_sample(
    atoms: ase.Atoms, modes: tuple[np.ndarray, np.ndarray], rng: np.random.Generator, temperature_K: float
) -> ase.Atoms:
    """ANI normal-mode sampling (Smith et al., Chem. Sci. 8, 3192 (2017)).

    Args:
        atoms: the reference (near-equilibrium) geometry.
        modes: (force constants [M] eV/Å^2, orthonormal Cartesian modes [M, N, 3]) of the
            positive-curvature modes.
        rng: source of the random energy partition and signs.
        temperature_K: the sampled displacements carry up to ~3/2 N k_B T of harmonic energy.
    """
    force_constants, vectors = modes
    weights = rng.uniform(size=len(force_constants))
    weights *= rng.uniform() / weights.sum()  # random partition of a random fraction of the energy
    amplitudes = np.sqrt(3 * weights * len(atoms) * kB * temperature_K / force_constants)
    amplitudes *= rng.choice([-1.0, 1.0], size=len(amplitudes))
    displaced = atoms.copy()
    displaced.positions += np.tensordot(amplitudes, vectors, axes=1)
    return displaced


def _modes(atoms: ase.Atoms, calculator: Calculator) -> tuple[np.ndarray, np.ndarray]:
    """Positive-curvature modes (> 1 eV/Å^2, which drops translations/rotations) of the Hessian."""
    values, vectors = np.linalg.eigh(hessian(atoms, calculator))
    keep = values > 1.0
    return values[keep], vectors[:, keep].T.reshape(-1, len(atoms), 3)


def _sample(name: str, sampling: str, driver: Calculator, rng: np.random.Generator, cache: dict) -> ase.Atoms:
    """One sampled geometry of molecule ``name``."""
    atoms = molecule(name)
    if sampling == "mixed":
        sampling = str(rng.choice(["md", "normal-modes"]))
    if sampling == "md":
        steps = int(rng.integers(10, 41))
        return langevin_snapshot(atoms, driver, rng, rng.uniform(200.0, 1000.0), steps, 0.5)
    if name not in cache:
        cache[name] = _modes(atoms, driver)
    return normal_mode_sample(atoms, cache[name], rng, rng.uniform(200.0, 800.0))


def generate(
    n_frames: int = 50, seed: int = 0, size: int = 9, calculator: str = "gfn2-xtb",
    sampling: str = "mixed", progress: bool = False,
) -> GeneratedSet:
    """Generate and label ``n_frames`` organic-molecule frames.

    Args:
        n_frames: number of frames.
        seed: random seed; the same seed gives identical frames.
        size: largest molecule, in atoms (9 includes ethanol; 12 includes benzene).
        calculator: labeller spec, also the MD / Hessian driver (``gfn2-xtb``, ``gfn1-xtb``, ``pyscf:...``).
        sampling: ``md``, ``normal-modes`` or ``mixed`` (each frame picks one at random).
        progress: show a progress bar while labelling.
    """
    if sampling not in ("md", "normal-modes", "mixed"):
        raise ValueError(f"sampling must be 'md', 'normal-modes' or 'mixed', got '{sampling}'")
    names = organic_molecules(size)
    if not names:
        raise ValueError(f"no g2 C/H/N/O molecule has at most size={size} atoms")
    rng, driver, cache = np.random.default_rng(seed), make_calculator(calculator), {}
    frames = []
    for index in range(n_frames):
        name = str(rng.choice(names))
        atoms = _sample(name, sampling, driver, rng, cache)
        atoms.info.update(config_type=f"{name}-{sampling}", frame_id=f"xtb-molecules:seed{seed}#{index}")
        frames.append(atoms)
    tag = calculator.lower().replace("-xtb", "").replace(":", "_").replace("/", "_").replace("*", "s")
    return GeneratedSet(
        name=f"xtb_organics_{tag}" if "xtb" in calculator.lower() else f"organics_{tag}",
        recipe="xtb-molecules",
        frames=label_frames(frames, calculator, progress=progress),
        calculator=calculator,
        description=(
            f"Small closed-shell C/H/N/O molecules from the g2 set (<= {size} atoms), sampled by "
            f"{_SAMPLING_TEXT[sampling]}; ANI-style "
            "off-equilibrium organics for tests and tutorials."
        ),
        periodic=False,
        parameters={"n_frames": n_frames, "seed": seed, "size": size, "calculator": calculator,
                    "sampling": sampling},
    )
