"""Plausibility of the user's labels, judged against the pretrained model before training.

A pretrained model predicts forces on the right scale for the structures it is given, whatever its
errors. Labels whose force RMS is ten times larger or smaller than the model's, or whose energies stay
eV/atom away after the reference refit, are most likely in another unit (Hartree, kcal/mol) or per
atom instead of total; training on them quietly reports errors of tens of eV/atom.
"""

from __future__ import annotations

import numpy as np

from lam.train.evaluate import Parity
from lam.train.refit import MIN_FORCE_SCALE

# factor between the labels' and the pretrained model's force RMS beyond which units are suspected
FORCE_SCALE_FACTOR = 10.0
# zero-shot energy MAE after the refit beyond which units are suspected, eV/atom (matching levels of
# theory give 0.01-0.1; a different functional a few tenths)
ENERGY_MAE_LIMIT = 1.0


def unit_warnings(parity: Parity, source: str) -> list[str]:
    """Sentences about labels that look like another unit than eV and eV/Å (empty when plausible)."""
    messages = []
    true_rms = float(np.sqrt(np.mean(parity.forces_true**2))) if parity.forces_true.size else 0.0
    pred_rms = float(np.sqrt(np.mean(parity.forces_pred**2))) if parity.forces_pred.size else 0.0
    if true_rms > 0 and pred_rms > MIN_FORCE_SCALE:  # an untrained model's ~0 forces give no scale
        ratio = true_rms / pred_rms
        if not 1 / FORCE_SCALE_FACTOR <= ratio <= FORCE_SCALE_FACTOR:
            messages.append(
                f"{source}: the force labels' RMS ({true_rms:.3g}) is {ratio:.3g} times the pretrained "
                f"model's ({pred_rms:.3g} eV/Å): are the forces in eV/Å? (Hartree/Bohr is 51.4 eV/Å, "
                "kcal/mol/Å 0.0434)"
            )
    if parity.energy_true.size:
        per_atom = np.abs(parity.energy_pred - parity.energy_true) / np.maximum(parity.n_atoms, 1)
        if float(per_atom.mean()) > ENERGY_MAE_LIMIT:
            messages.append(
                f"{source}: after the reference refit the energies are still {float(per_atom.mean()):.3g} "
                "eV/atom off: are they total energies in eV? (1 Hartree is 27.2 eV, 1 kcal/mol 0.0434 eV)"
            )
    return messages
