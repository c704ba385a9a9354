"""Reference labellers: attach energies, forces (and stress) from a named calculator to frames.

A calculator is named by a short spec string:

- ``emt``: ASE's effective-medium theory (Al Cu Ag Au Ni Pd Pt, plus H C N O for fun); periodic or not.
- ``gfn2-xtb`` / ``gfn1-xtb``: extended tight binding through ``tblite`` (molecules and periodic cells).
- ``pyscf:<xc>/<basis>``: Kohn-Sham DFT with PySCF for molecules, e.g. ``pyscf:pbe/sto-3g`` or
  ``pyscf:wb97x/6-31g*``.

Labels are stored as a ``SinglePointCalculator`` on a copy of each frame: energy (eV), forces (eV/Å)
and, for fully periodic frames whose calculator supports it, stress (eV/Å^3, ASE sign).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import version

import ase
import numpy as np
from ase.calculators.calculator import CalculationFailed, Calculator, all_changes
from ase.calculators.singlepoint import SinglePointCalculator
from ase.units import Bohr, Hartree
from tqdm.auto import tqdm

from lam.errors import LamError

_XTB_METHODS = {"gfn2-xtb": "GFN2-xTB", "gfn1-xtb": "GFN1-xTB"}
_CITATIONS = {
    "emt": "K. W. Jacobsen, P. Stoltze, J. K. Norskov, Surf. Sci. 366, 394 (1996)",
    "gfn2-xtb": "C. Bannwarth, S. Ehlert, S. Grimme, J. Chem. Theory Comput. 15, 1652 (2019)",
    "gfn1-xtb": "S. Grimme, C. Bannwarth, P. Shushkov, J. Chem. Theory Comput. 13, 1989 (2017)",
    "pyscf": "Q. Sun et al., J. Chem. Phys. 153, 024109 (2020)",
}


class LabelingError(LamError, RuntimeError):
    """A reference calculation failed for one frame (e.g. SCF not converged)."""

    def __init__(self, index: int, frame_id: str, spec: str, reason: str) -> None:
        self.index, self.frame_id, self.spec, self.reason = index, frame_id, spec, reason
        where = f" ({frame_id})" if frame_id else ""
        super().__init__(f"frame {index}{where}: calculator '{spec}' failed: {reason}")


class PySCFCalculator(Calculator):
    """Restricted (closed shell) or unrestricted Kohn-Sham DFT with PySCF, for molecules only.

    Results: ``energy`` (eV) and ``forces`` [N, 3] (eV/Å). Raises ``CalculationFailed`` when the
    SCF does not converge, instead of returning an unconverged energy.
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, xc: str, basis: str, charge: int = 0, max_cycle: int = 100) -> None:
        """Set up the method.

        Args:
            xc: libxc functional name (``pbe``, ``b3lyp``, ``wb97x``).
            basis: basis set name (``sto-3g``, ``6-31g*``, ``def2-svp``).
            charge: total charge, e.
            max_cycle: SCF iterations before giving up.
        """
        super().__init__()
        self.xc, self.basis, self.charge, self.max_cycle = xc, basis, charge, max_cycle

    def calculate(
        self, atoms: ase.Atoms | None = None, properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Run SCF + analytic nuclear gradient; store eV and eV/Å results."""
        from pyscf import dft, gto

        super().calculate(atoms, properties, system_changes)
        if self.atoms.pbc.any():
            raise CalculationFailed("the pyscf labeller handles molecules only (pbc must be all False)")
        n_electrons = int(self.atoms.numbers.sum()) - self.charge
        mol = gto.M(
            atom=list(zip(self.atoms.get_chemical_symbols(), self.atoms.positions, strict=True)),
            basis=self.basis, charge=self.charge, spin=n_electrons % 2, unit="Angstrom", verbose=0,
        )
        scf = dft.RKS(mol) if n_electrons % 2 == 0 else dft.UKS(mol)
        scf.xc, scf.max_cycle = self.xc, self.max_cycle
        energy = scf.kernel()
        if not scf.converged:
            raise CalculationFailed(f"SCF not converged in {self.max_cycle} cycles")
        gradient = scf.nuc_grad_method().kernel()  # [N, 3] Hartree/Bohr
        self.results = {
            "energy": float(energy) * Hartree,
            "free_energy": float(energy) * Hartree,
            "forces": -np.asarray(gradient) * Hartree / Bohr,
        }


def _parse_pyscf(spec: str) -> tuple[str, str]:
    """``pyscf:<xc>/<basis>`` -> (xc, basis)."""
    body = spec.split(":", 1)[1]
    if "/" not in body or not all(body.split("/", 1)):
        raise ValueError(f"calculator spec '{spec}': expected 'pyscf:<xc>/<basis>', e.g. 'pyscf:pbe/sto-3g'")
    xc, basis = body.split("/", 1)
    return xc, basis


def make_calculator(spec: str) -> Calculator:
    """An ASE calculator from a spec string (see the module docstring for the accepted specs)."""
    key = spec.strip().lower()
    if key == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if key in _XTB_METHODS:
        from tblite.ase import TBLite

        return TBLite(method=_XTB_METHODS[key], verbosity=0)
    if key.startswith("pyscf:"):
        return PySCFCalculator(*_parse_pyscf(key))
    raise ValueError(f"unknown calculator spec '{spec}'; known: emt, gfn2-xtb, gfn1-xtb, pyscf:<xc>/<basis>")


def level_of_theory(spec: str) -> dict[str, str | None]:
    """The registry-card ``level_of_theory`` block for a calculator spec.

    Returns:
        ``{"functional", "basis", "code", "notes"}``; ``code`` includes the package version.
    """
    key = spec.strip().lower()
    if key == "emt":
        return {"functional": "EMT", "basis": None, "code": f"ase {version('ase')}",
                "notes": f"effective-medium theory, ASE parameters; {_CITATIONS['emt']}"}
    if key in _XTB_METHODS:
        return {"functional": _XTB_METHODS[key], "basis": None, "code": f"tblite {version('tblite')}",
                "notes": f"semi-empirical tight binding; {_CITATIONS[key]}"}
    if key.startswith("pyscf:"):
        xc, basis = _parse_pyscf(key)
        return {"functional": xc.upper(), "basis": basis, "code": f"pyscf {version('pyscf')}",
                "notes": f"Kohn-Sham DFT (RKS/UKS), analytic gradients; {_CITATIONS['pyscf']}"}
    raise ValueError(f"unknown calculator spec '{spec}'; known: emt, gfn2-xtb, gfn1-xtb, pyscf:<xc>/<basis>")


def citation(spec: str) -> str:
    """Citation of the method behind a calculator spec."""
    key = spec.strip().lower()
    return _CITATIONS["pyscf" if key.startswith("pyscf:") else key]


def label_atoms(atoms: ase.Atoms, calculator: Calculator) -> ase.Atoms:
    """A copy of ``atoms`` carrying the calculator's energy, forces and (periodic) stress.

    Stress is attached only when all three axes are periodic and the calculator implements it.
    Raises whatever the calculator raises; :func:`label_frames` adds the frame index.
    """
    labelled = atoms.copy()  # copies info and arrays, drops any old calculator
    labelled.calc = calculator
    results = {
        "energy": labelled.get_potential_energy(),
        "forces": labelled.get_forces(),
    }
    if labelled.pbc.all() and "stress" in calculator.implemented_properties:
        results["stress"] = labelled.get_stress(voigt=False)
    labelled.calc = SinglePointCalculator(labelled, **results)
    return labelled


def label_frames(
    frames: Iterable[ase.Atoms], spec: str, progress: bool = True, total: int | None = None
) -> list[ase.Atoms]:
    """Label every frame with the calculator named by ``spec``.

    Args:
        frames: structures; existing labels are replaced.
        spec: calculator spec (``emt``, ``gfn2-xtb``, ``gfn1-xtb``, ``pyscf:<xc>/<basis>``).
        progress: show a tqdm progress bar.
        total: number of frames, for the progress bar when ``frames`` has no ``len``.

    Returns:
        Labelled copies, in order.

    Raises:
        LabelingError: a calculation failed or gave non-finite results; names the frame index and
            ``atoms.info["frame_id"]`` when present.
    """
    calculator = make_calculator(spec)
    labelled = []
    for index, atoms in enumerate(tqdm(frames, total=total, desc=f"label {spec}", disable=not progress)):
        frame_id = str(atoms.info.get("frame_id", ""))
        try:
            result = label_atoms(atoms, calculator)
        except Exception as error:  # any calculator failure becomes a frame-indexed error
            raise LabelingError(index, frame_id, spec, f"{type(error).__name__}: {error}") from error
        if not all(np.isfinite(v).all() for v in result.calc.results.values()):
            raise LabelingError(index, frame_id, spec, "non-finite energy, forces or stress")
        labelled.append(result)
    return labelled
