"""Shared test fixtures: small labelled frames of each kind of system."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import ase
import numpy as np
import pytest
import torch
from ase.build import bulk, fcc111, molecule
from ase.calculators.singlepoint import SinglePointCalculator

torch.set_num_threads(1)

sys.path.insert(0, str(Path(__file__).parent / "hub"))
from hub_fixture import hub  # noqa: E402, F401  (the fake Hugging Face Hub fixture of tests/hub)

IO_FIXTURES = Path(__file__).parent / "data" / "fixtures" / "io"


def _label(
    atoms: ase.Atoms, rng: np.random.Generator, forces: bool = True, stress: bool = False
) -> ase.Atoms:
    """Attach random full-precision labels (eV, eV/Å, eV/Å^3 Voigt) to ``atoms``."""
    results: dict[str, object] = {"energy": float(rng.normal(-3.0, 1.0) * len(atoms))}
    if forces:
        results["forces"] = rng.normal(0.0, 0.5, (len(atoms), 3))
    if stress:
        results["stress"] = rng.normal(0.0, 0.01, 6)
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def labelled_frames(seed: int = 0) -> list[ase.Atoms]:
    """Five frames: triclinic bulk (E, F, S), cubic bulk (E only), molecule, slab (T,T,F), bulk again."""
    rng = np.random.default_rng(seed)
    triclinic = bulk("Cu", "fcc", a=3.61).repeat((2, 2, 1))
    triclinic.rattle(0.05, seed=seed)
    rocksalt = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    rocksalt.positions += rng.normal(0.0, 0.02, rocksalt.positions.shape)
    water = molecule("H2O")
    slab = fcc111("Pt", size=(2, 2, 2), vacuum=4.0)
    slab.rattle(0.05, seed=seed + 1)
    slab.info.clear()  # ase.build metadata (adsorbate sites) is not extxyz-serialisable
    again = bulk("Cu", "fcc", a=3.58).repeat((2, 2, 1))
    frames = [
        _label(triclinic, rng, stress=True),
        _label(rocksalt, rng, forces=False),
        _label(water, rng),
        _label(slab, rng),
        _label(again, rng, stress=True),
    ]
    frames[0].info["head"] = "bulk"
    return frames


@pytest.fixture
def frames() -> list[ase.Atoms]:
    """Fresh labelled frames (see :func:`labelled_frames`)."""
    return labelled_frames()


def assert_same_frames(expected: list[ase.Atoms], actual: list[ase.Atoms], exact: bool = True) -> None:
    """Numbers, positions, cell, pbc and labels agree (bitwise when ``exact``); stress in any layout."""
    from lam.data.labels import raw_label as get_label
    from lam.data.labels import stress_3x3

    assert len(actual) == len(expected)
    check = np.testing.assert_array_equal if exact else np.testing.assert_allclose
    for k, (a, b) in enumerate(zip(expected, actual, strict=True)):
        np.testing.assert_array_equal(a.numbers, b.numbers, err_msg=f"frame {k}")
        check(a.positions, b.positions, err_msg=f"frame {k}")
        check(a.cell.array, b.cell.array, err_msg=f"frame {k}")
        np.testing.assert_array_equal(a.pbc, b.pbc, err_msg=f"frame {k}")
        for name in ("energy", "forces", "stress"):
            x, y = get_label(a, name), get_label(b, name)
            assert (x is None) == (y is None), f"frame {k}: {name} present in one only"
            if x is not None:
                if name == "stress":
                    x, y = stress_3x3(x), stress_3x3(y)
                check(np.asarray(x, dtype=float), np.asarray(y, dtype=float), err_msg=f"frame {k} {name}")


def kill_at_step(module: str, builder: str, step: int) -> str:
    """Python source that makes ``module.builder``'s Trainer die like ``kill -9`` at ``step``.

    For tests of resuming: prepended to the code a subprocess runs. The process exits at the start of
    optimizer step ``step``, with no teardown and no saving.
    """
    return textwrap.dedent(f"""
        import os, lightning.pytorch as pl, {module} as target
        class Kill(pl.Callback):
            def on_train_batch_start(self, trainer, *args):
                if trainer.global_step == {step}:
                    os._exit(9)
        build = target.{builder}
        def patched(*a, **k):
            trainer = build(*a, **k)
            trainer.callbacks.insert(0, Kill())
            return trainer
        target.{builder} = patched
        """)
