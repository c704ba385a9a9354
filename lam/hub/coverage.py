"""Which head covers which elements: a head asked about an element it never saw is an error.

A head's energy for an element outside its training data rests on a reference energy of 0 eV and an
untrained embedding: a number with no meaning (the ``s66x8_wb97x`` head, trained on H C N O, would
give bulk Cu an energy). lam refuses it, naming the heads that do cover the elements.
"""

from __future__ import annotations

from collections.abc import Iterable

from ase.data import chemical_symbols

from lam.errors import LamError
from lam.model.lam import LAM


class UnseenElementError(LamError, ValueError):
    """A head was asked about elements it was not trained on."""


def heads_covering(model: LAM, elements: Iterable[int]) -> list[str]:
    """Heads of ``model`` trained on every one of ``elements``."""
    wanted = set(int(z) for z in elements)
    return [name for name in model.heads if wanted <= set(model.head_elements(name))]


def check_elements(model: LAM, head: str, numbers: Iterable[int], allow_unseen: bool = False) -> None:
    """Raise :class:`UnseenElementError` when ``head`` was not trained on some of ``numbers``.

    Args:
        model: the model.
        head: the head to be used.
        numbers: atomic numbers of the structure(s).
        allow_unseen: predict anyway (the caller takes responsibility for the numbers).
    """
    covered = set(model.head_elements(head))
    if not covered or allow_unseen:  # a head with no fitted reference (a fresh model) records nothing
        return
    present = {int(z) for z in numbers}
    unseen = sorted(present - covered)
    if not unseen:
        return
    symbols = " ".join(chemical_symbols[z] for z in unseen)
    others = heads_covering(model, present)
    hint = f"heads that cover them: {', '.join(others)}" if others else "no head of this model covers them"
    raise UnseenElementError(
        f"head {head!r} was not trained on {symbols}: its energies for them would rest on a reference "
        f"of 0 eV; {hint} (allow_unseen_elements=True predicts anyway)"
    )
