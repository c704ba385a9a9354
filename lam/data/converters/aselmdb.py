"""fairchem ASE-LMDB (``*.aselmdb``: OMat24, sAlex, OMol25, ...) to ``ase.Atoms`` frames.

Published layout (fairchem ``LMDBDatabase``, an ASE-db backend): one LMDB file (``subdir=False``)
whose keys are ASCII row ids ``"1"``, ``"2"``, ... plus the reserved keys ``nextid``,
``deleted_ids`` and ``metadata``. Each value is ``zlib.compress(orjson.dumps(row))`` where ``row``
is an ASE ``AtomsRow`` dict (``numbers``, ``positions``, ``cell``, ``pbc``, ``energy``, ``forces``,
``stress`` as Voigt eV/Å^3, ``constraints``, ``key_value_pairs``, ``data``, ...). orjson writes
plain JSON, so the standard ``json`` module reads it; ``lmdb`` is the only extra dependency.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import ase
from ase.db.row import AtomsRow


def _row_ids(txn: object) -> list[int]:
    """Row ids 1..nextid-1 minus the deleted ones, as fairchem defines them."""
    nextid = txn.get(b"nextid")
    deleted = txn.get(b"deleted_ids")
    last = json.loads(zlib.decompress(nextid)) if nextid is not None else 1
    gone = set(json.loads(zlib.decompress(deleted))) if deleted is not None else set()
    return [i for i in range(1, last) if i not in gone]


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.glob("*.aselmdb"))


def read_aselmdb(path: str | Path) -> Iterator[ase.Atoms]:
    """Yield every row of one ``.aselmdb`` file, or of each such file in a directory, in id order.

    Labels come through ASE's own ``AtomsRow.toatoms`` (a ``SinglePointCalculator``); the row's
    ``key_value_pairs`` go to ``info``, plus ``frame_id`` = "<file>#<row id>".

    Args:
        path: an ``.aselmdb`` file or a directory of them (e.g. an OMat24 split folder).
    """
    import lmdb  # optional dependency: only needed for these files

    files = _files(Path(path))
    if not files:
        raise FileNotFoundError(f"{path}: no .aselmdb files")
    for file in files:
        env = lmdb.open(str(file), subdir=False, readonly=True, lock=False)
        try:
            with env.begin() as txn:
                for row_id in _row_ids(txn):
                    value = txn.get(str(row_id).encode("ascii"))
                    if value is None:
                        raise KeyError(f"{file} frame {row_id}: field 'row': id listed but missing")
                    row = AtomsRow({**json.loads(zlib.decompress(value)), "id": row_id})
                    atoms = row.toatoms(add_additional_information=False)
                    atoms.info.update(row.key_value_pairs)
                    atoms.info["frame_id"] = f"{file}#{row_id}"
                    yield atoms
        finally:
            env.close()
