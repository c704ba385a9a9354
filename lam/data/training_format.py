"""The one on-disk training format: a Hugging Face ``datasets`` dataset saved with ``save_to_disk``.

One row per frame, Arrow shards, memory-mapped on load. Schema (:data:`SCHEMA`), units as in
:mod:`lam.keys`:

==================  ==================================  =========================================
column              type                                meaning
==================  ==================================  =========================================
``atomic_numbers``  ``list<int16>`` [N]                 atomic numbers
``positions``       ``list<list<float64>[3]>`` [N, 3]   Cartesian positions, Å
``cell``            ``list<list<float64>[3]>[3]``       lattice vectors as rows, Å (zeros if none)
``pbc``             ``list<bool>[3]``                   periodicity per axis
``energy``          ``float64`` or null                 total energy, eV
``forces``          ``list<list<float64>[3]>`` or null  forces, eV/Å
``stress``          ``list<list<float64>[3]>[3]`` /null stress, eV/Å^3, ASE sign (tensile > 0)
``head``            ``string``                          dataset / fitting-head name
``frame_id``        ``string``                          ``"<source>#<index>"`` of the original frame
``config_type``     ``string`` or null                  the frame's kind (``info["config_type"]``)
==================  ==================================  =========================================

Next to the shards, ``lam_format.json`` holds ``{"format": "lam-training", "version": 2}``; a
reader refuses other versions instead of misreading them. Version 1 (no ``config_type``, which
fine-tuning needs to stratify its splits) still loads, with the column null.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import ase
import datasets
import numpy as np
import pyarrow as pa
from ase.calculators.singlepoint import SinglePointCalculator
from datasets import Features, List, Value
from datasets.arrow_writer import ArrowWriter

from lam.data.labels import raw_label, stress_3x3

FORMAT_NAME = "lam-training"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
FORMAT_FILE = "lam_format.json"

_VEC3 = List(Value("float64"), length=3)
SCHEMA = Features(
    {
        "atomic_numbers": List(Value("int16")),
        "positions": List(_VEC3),
        "cell": List(_VEC3, length=3),
        "pbc": List(Value("bool"), length=3),
        "energy": Value("float64"),
        "forces": List(_VEC3),
        "stress": List(_VEC3, length=3),
        "head": Value("string"),
        "frame_id": Value("string"),
        "config_type": Value("string"),
    }
)


def atoms_to_row(atoms: ase.Atoms, head: str) -> dict[str, object]:
    """One frame as a row of :data:`SCHEMA`; absent labels are None (null).

    ``atoms.info["head"]`` wins over ``head``, which is the head of frames that carry none.
    """
    energy, forces, stress = (raw_label(atoms, name) for name in ("energy", "forces", "stress"))
    return {
        "atomic_numbers": atoms.numbers.astype(np.int16),
        "positions": np.asarray(atoms.positions, dtype=np.float64),
        "cell": np.asarray(atoms.cell.array, dtype=np.float64),
        "pbc": np.asarray(atoms.pbc, dtype=bool),
        "energy": None if energy is None else float(np.asarray(energy, dtype=np.float64).reshape(())),
        "forces": None if forces is None else np.asarray(forces, dtype=np.float64).reshape(len(atoms), 3),
        "stress": None if stress is None else stress_3x3(stress),
        "head": str(atoms.info.get("head", head)),
        "frame_id": str(atoms.info.get("frame_id", "")),
        "config_type": None if atoms.info.get("config_type") is None else str(atoms.info["config_type"]),
    }


def row_to_atoms(row: Mapping[str, object]) -> ase.Atoms:
    """A row of :data:`SCHEMA` (lists or numpy arrays) back to Atoms with a SinglePointCalculator.

    Stress is given to the calculator as [3, 3]; ``info`` gets ``head``, ``frame_id`` and
    ``config_type`` (when set).
    """
    atoms = ase.Atoms(
        numbers=np.asarray(row["atomic_numbers"], dtype=np.int64),
        positions=np.asarray(row["positions"], dtype=np.float64).reshape(-1, 3),
        cell=np.asarray(row["cell"], dtype=np.float64).reshape(3, 3),
        pbc=np.asarray(row["pbc"], dtype=bool).reshape(3),
    )
    results = {}
    if row["energy"] is not None:
        results["energy"] = float(row["energy"])
    if row["forces"] is not None:
        results["forces"] = np.asarray(row["forces"], dtype=np.float64).reshape(-1, 3)
    if row["stress"] is not None:
        results["stress"] = np.asarray(row["stress"], dtype=np.float64).reshape(3, 3)
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    atoms.info["head"] = str(row["head"])
    if row["frame_id"]:
        atoms.info["frame_id"] = str(row["frame_id"])
    if row.get("config_type") is not None:
        atoms.info["config_type"] = str(row["config_type"])
    return atoms


def _flat(array: pa.Array, width: int) -> np.ndarray:
    """A (nested) fixed-size-list array as a numpy array [elements, ``width``] (a view for float64).

    Walks down with ``.values`` and explicit slice offsets rather than ``flatten()``, which drops
    null entries and would shift every following row.
    """
    lo, hi = 0, len(array)  # logical range of the elements in ``array``
    while pa.types.is_fixed_size_list(array.type):
        size = array.type.list_size
        lo, hi = (array.offset + lo) * size, (array.offset + hi) * size
        array = array.values  # the unsliced child
    return array.to_numpy(zero_copy_only=False)[lo:hi].reshape(-1, width)


class _Batch:
    """Numpy views of one Arrow record batch of :data:`SCHEMA`, built once; rows are cut from them."""

    def __init__(self, batch: pa.RecordBatch) -> None:
        column = batch.column
        # List columns: per-row offsets into the list child (which ignores the batch's slicing).
        self.numbers_offsets = column("atomic_numbers").offsets.to_numpy()
        self.numbers = column("atomic_numbers").values.to_numpy(zero_copy_only=False)
        self.positions_offsets = column("positions").offsets.to_numpy()
        self.positions = _flat(column("positions").values, 3)
        self.forces_offsets = column("forces").offsets.to_numpy()
        self.forces = _flat(column("forces").values, 3)
        self.has_forces = column("forces").is_valid().to_numpy(zero_copy_only=False)
        self.cell = _flat(column("cell"), 9)
        self.stress = _flat(column("stress"), 9)
        self.has_stress = column("stress").is_valid().to_numpy(zero_copy_only=False)
        self.pbc = _flat(column("pbc"), 3)
        self.energy = column("energy").to_numpy(zero_copy_only=False)
        self.has_energy = column("energy").is_valid().to_numpy(zero_copy_only=False)
        self.head = column("head")
        self.frame_id = column("frame_id")
        self.config_type = column("config_type")

    def row(self, k: int) -> dict[str, object]:
        """Row ``k`` of the batch; arrays are writable copies (torch must not wrap memory-mapped buffers)."""
        n0, n1 = self.positions_offsets[k], self.positions_offsets[k + 1]
        f0, f1 = self.forces_offsets[k], self.forces_offsets[k + 1]
        return {
            "atomic_numbers": self.numbers[self.numbers_offsets[k] : self.numbers_offsets[k + 1]].astype(
                np.int64
            ),
            "positions": self.positions[n0:n1].copy(),
            "cell": self.cell[k].reshape(3, 3).copy(),
            "pbc": self.pbc[k].copy(),
            "energy": float(self.energy[k]) if self.has_energy[k] else None,
            "forces": self.forces[f0:f1].copy() if self.has_forces[k] else None,
            "stress": self.stress[k].reshape(3, 3).copy() if self.has_stress[k] else None,
            "head": self.head[k].as_py(),
            "frame_id": self.frame_id[k].as_py(),
            "config_type": self.config_type[k].as_py(),
        }


class ArrowRows:
    """Random access to the rows of an Arrow table with :data:`SCHEMA` as numpy arrays.

    This is the fast path of the data pipeline: numpy views of each record batch are made once,
    so a row costs a few slices instead of ``datasets``' per-element Python conversion (which is
    ~10x slower and returns float32). Row shapes: ``positions``/``forces`` [N, 3] Å, eV/Å;
    ``cell``/``stress`` [3, 3] Å, eV/Å^3; ``energy`` float eV; absent labels are None.
    """

    def __init__(self, table: pa.Table) -> None:
        self._batches = [_Batch(batch) for batch in table.to_batches() if batch.num_rows]
        self._starts = np.cumsum([0] + [len(b.energy) for b in self._batches])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int) -> dict[str, object]:
        """Row ``index`` (0 <= index < len) as a dict of numpy arrays and Python scalars."""
        if not 0 <= index < len(self):
            raise IndexError(f"row {index} out of range for {len(self)} rows")
        batch = int(np.searchsorted(self._starts, index, side="right")) - 1
        return self._batches[batch].row(index - int(self._starts[batch]))


def is_training_dataset(path: str | Path) -> bool:
    """Whether ``path`` is a directory written by :func:`write_training_dataset`."""
    return (Path(path) / FORMAT_FILE).is_file()


def prepare_output_dir(out_dir: Path, overwrite: bool, is_ours: bool) -> None:
    """Refuse an existing non-empty ``out_dir`` unless ``overwrite``; then remove it.

    Even with ``overwrite``, only a directory recognised as our own output (``is_ours``) is deleted,
    so that a mistyped path cannot wipe unrelated data.
    """
    if not out_dir.exists():
        return
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(
            f"{out_dir} exists and is not empty; pass --overwrite (overwrite=True) to replace it"
        )
    if not is_ours:
        raise FileExistsError(
            f"{out_dir} exists and does not look like this output format; remove it by hand"
        )
    if out_dir.is_dir():
        shutil.rmtree(out_dir)
    else:
        out_dir.unlink()


def write_training_dataset(
    frames: Iterable[ase.Atoms],
    out_dir: str | Path,
    head: str,
    overwrite: bool = False,
    num_shards: int | None = None,
) -> Path:
    """Write frames in the training format; returns ``out_dir``.

    Rows are streamed to a temporary Arrow file next to ``out_dir`` (so memory stays flat) and then
    saved as shards with ``Dataset.save_to_disk``.

    Args:
        frames: frames with labels in their calculator (see :func:`atoms_to_row`).
        out_dir: output directory; an existing non-empty one is refused unless ``overwrite``.
        head: head name for frames without ``info["head"]``.
        overwrite: replace an existing training dataset at ``out_dir``.
        num_shards: number of Arrow shards (default: chosen by ``datasets`` from the size).
    """
    out_dir = Path(out_dir)
    prepare_output_dir(out_dir, overwrite, is_training_dataset(out_dir))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp") as tmp:
        arrow_file = str(Path(tmp) / "frames.arrow")
        with ArrowWriter(features=SCHEMA, path=arrow_file) as writer:
            for atoms in frames:
                writer.write(atoms_to_row(atoms, head))
            writer.finalize()
        dataset = datasets.Dataset.from_file(arrow_file)
        dataset.save_to_disk(str(out_dir), num_shards=num_shards)
        del dataset  # release the memory map before the temporary file goes
    (out_dir / FORMAT_FILE).write_text(json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION}) + "\n")
    return out_dir


def load_training_dataset(path: str | Path) -> datasets.Dataset:
    """Load (memory-map) a training-format dataset, checking its version and schema.

    Version 1 datasets get a null ``config_type`` column (the one column version 2 added).
    """
    path = Path(path)
    if not is_training_dataset(path):
        raise ValueError(f"{path}: not a lam training dataset (no {FORMAT_FILE})")
    meta = json.loads((path / FORMAT_FILE).read_text())
    if meta.get("format") != FORMAT_NAME or meta.get("version") not in READABLE_VERSIONS:
        raise ValueError(
            f"{path}/{FORMAT_FILE}: unsupported format {meta}, this lam reads versions {READABLE_VERSIONS}"
        )
    dataset = datasets.load_from_disk(str(path))
    if meta["version"] == 1 and "config_type" not in dataset.column_names:
        dataset = dataset.add_column("config_type", [None] * len(dataset)).cast(SCHEMA)
    if dataset.features != SCHEMA:
        raise ValueError(f"{path}: schema {dataset.features} differs from lam's training schema {SCHEMA}")
    return dataset
