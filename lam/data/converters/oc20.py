"""OC20 S2EF (Chanussot et al. 2021) extxyz + txt files to ``ase.Atoms`` frames.

Published layout: a directory of chunks ``<k>.extxyz`` (optionally ``.xz``-compressed as
downloaded), each with a companion ``<k>.txt`` holding one line per frame,
``random<system_id>,frame<frame_number>,<reference_energy>``. The extxyz frames carry the raw DFT
total ``energy`` (eV), ``forces`` (eV/Å), ``tags`` (0 subsurface, 1 surface, 2 adsorbate) and
the fixed-atom mask; the reference energy (eV) is what fairchem subtracts to obtain the
adsorption energy that S2EF models are usually trained on.
"""

from __future__ import annotations

import lzma
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import ase
import ase.io
from ase.calculators.singlepoint import SinglePointCalculator

_LINE = re.compile(r"^random(?P<sid>\d+),frame(?P<fid>\d+),(?P<ref>\S+)$")


def _companion_txt(extxyz: Path) -> Path:
    """``0.extxyz`` -> ``0.txt``; ``0.extxyz.xz`` -> ``0.txt.xz``."""
    name = extxyz.name.replace(".extxyz", ".txt")
    return extxyz.with_name(name)


def _read_metadata(txt: Path) -> list[tuple[int, int, float]]:
    """(system_id, frame_number, reference_energy eV) per line of an S2EF .txt file."""
    opener = lzma.open if txt.suffix == ".xz" else open
    with opener(txt, "rt") as f:
        lines = [line.strip() for line in f if line.strip()]
    rows = []
    for number, line in enumerate(lines):
        match = _LINE.match(line)
        if match is None:
            raise ValueError(
                f"{txt} line {number + 1}: field 'metadata': expected 'random<sid>,frame<n>,<E>'"
            )
        rows.append((int(match["sid"]), int(match["fid"]), float(match["ref"])))
    return rows


def _chunks(path: Path) -> list[Path]:
    """The extxyz chunks of a directory in numeric order, or the one file given."""
    if path.is_file():
        return [path]
    files = [p for p in path.iterdir() if p.name.endswith((".extxyz", ".extxyz.xz"))]
    stem = lambda p: p.name.split(".")[0]  # noqa: E731
    return sorted(
        files, key=lambda p: (not stem(p).isdigit(), int(stem(p)) if stem(p).isdigit() else 0, p.name)
    )


def read_oc20_s2ef(path: str | Path, energy: Literal["total", "adsorption"] = "total") -> Iterator[ase.Atoms]:
    """Yield the frames of OC20 S2EF chunks with their system id, frame number and reference energy.

    Args:
        path: one ``<k>.extxyz[.xz]`` file or a directory of them; each needs its ``<k>.txt[.xz]``.
        energy: ``"total"`` keeps the raw DFT total energy (like the shipped ``oc20_relaxtraj_rpbe``);
            ``"adsorption"`` subtracts the reference energy as fairchem's S2EF preprocessing does.
            Forces are the same either way.
    """
    for chunk in _chunks(Path(path)):
        txt = _companion_txt(chunk)
        if not txt.exists():
            raise FileNotFoundError(f"{chunk}: field 'metadata': companion file {txt.name} not found")
        metadata = _read_metadata(txt)
        count = 0
        for index, atoms in enumerate(ase.io.iread(chunk, index=":", format="extxyz")):
            if index >= len(metadata):
                raise ValueError(
                    f"{chunk} frame {index}: field 'metadata': {txt.name} has only {len(metadata)} lines"
                )
            sid, fid, reference = metadata[index]
            total = atoms.get_potential_energy()
            results = dict(atoms.calc.results)
            results["energy"] = total - reference if energy == "adsorption" else total
            atoms.calc = SinglePointCalculator(atoms, **results)
            atoms.info.update(
                {
                    "sid": sid,
                    "fid": fid,
                    "reference_energy": reference,
                    "total_energy": total,
                    "frame_id": f"{chunk}#{index}",
                }
            )
            count += 1
            yield atoms
        if count != len(metadata):
            raise ValueError(
                f"{chunk}: field 'metadata': {count} frames but {len(metadata)} lines in {txt.name}"
            )
