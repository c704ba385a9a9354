"""Plausibility of the user's labels, judged against the pretrained model before training.

A pretrained model predicts forces on the right scale for the structures it is given, whatever its
errors. Labels whose force RMS is ten times larger or smaller than the model's, or whose energies stay
eV/atom away after the reference refit, are most likely in another unit (Hartree, kcal/mol) or per
atom instead of total; training on them quietly reports errors of tens of eV/atom.
"""

from __future__ import annotations

from collections.abc import Sequence

import ase
import numpy as np

from lam.data.labels import read_label
from lam.train.evaluate import Parity
from lam.train.refit import MIN_FORCE_SCALE

# factor between the labels' and the pretrained model's force RMS beyond which units are suspected
FORCE_SCALE_FACTOR = 10.0
# zero-shot energy MAE after the refit beyond which units are suspected, eV/atom (matching levels of
# theory give 0.01-0.1; a different functional a few tenths)
ENERGY_MAE_LIMIT = 1.0


def _named(frames: Sequence[ase.Atoms], label: str, badness: np.ndarray) -> str:
    """The ids of (up to three of) the worst frames carrying ``label``, as a phrase."""
    # frames read from files carry "file#index"; frames from Python are numbered within those checked
    ids = [
        atoms.info.get("frame_id", f"checked frame {i}")
        for i, atoms in enumerate(frames)
        if read_label(atoms, label) is not None
    ]
    worst = [ids[i] for i in np.argsort(-badness)[:3] if i < len(ids)]
    return f" (worst frames: {', '.join(worst)})" if worst else ""


def _frame_force_rms(parity: Parity, frames: Sequence[ase.Atoms]) -> np.ndarray:
    """RMS of each force-labelled frame's force labels (the order of ``parity.forces_true``)."""
    sizes = [len(atoms) for atoms in frames if read_label(atoms, "forces") is not None]
    if sum(sizes) != len(parity.forces_true):
        return np.zeros(0)
    bounds = np.cumsum([0, *sizes])
    pairs = zip(bounds[:-1], bounds[1:], strict=True)
    return np.array([np.sqrt(np.mean(parity.forces_true[a:b] ** 2)) for a, b in pairs])


def unit_warnings(parity: Parity, frames: Sequence[ase.Atoms], source: str) -> list[str]:
    """Sentences about labels that look like another unit than eV and eV/Å (empty when plausible).

    ``parity`` holds the pretrained model's predictions on ``frames`` (in their order).
    """
    messages = []
    true_rms = float(np.sqrt(np.mean(parity.forces_true**2))) if parity.forces_true.size else 0.0
    pred_rms = float(np.sqrt(np.mean(parity.forces_pred**2))) if parity.forces_pred.size else 0.0
    if true_rms > 0 and pred_rms > MIN_FORCE_SCALE:  # an untrained model's ~0 forces give no scale
        ratio = true_rms / pred_rms
        if not 1 / FORCE_SCALE_FACTOR <= ratio <= FORCE_SCALE_FACTOR:
            frame_rms = _frame_force_rms(parity, frames)
            badness = np.abs(np.log(np.maximum(frame_rms, 1e-12) / pred_rms))
            messages.append(
                f"{source}: the force labels' RMS ({true_rms:.3g}) is {ratio:.3g} times the pretrained "
                f"model's ({pred_rms:.3g} eV/Å): are the forces in eV/Å? (Hartree/Bohr is 51.4 eV/Å, "
                f"kcal/mol/Å 0.0434){_named(frames, 'forces', badness)}"
            )
    if parity.energy_true.size:
        per_atom = np.abs(parity.energy_pred - parity.energy_true) / np.maximum(parity.n_atoms, 1)
        if float(per_atom.mean()) > ENERGY_MAE_LIMIT:
            messages.append(
                f"{source}: after the reference refit the energies are still {float(per_atom.mean()):.3g} "
                "eV/atom off: are they total energies in eV? (1 Hartree is 27.2 eV, 1 kcal/mol 0.0434 eV)"
                + _named(frames, "energy", per_atom)
            )
    return messages
