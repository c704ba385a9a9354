"""DeePMD-kit ``deepmd/npy`` systems: read and write.

A system is a directory with ``type.raw`` (one type index per atom), ``type_map.raw`` (element
symbol of each type index) and ``set.*/`` folders holding, per frame, ``coord.npy`` [F, N*3] Å,
``box.npy`` [F, 9] Å (rows are lattice vectors), ``energy.npy`` [F] eV, ``force.npy`` [F, N*3] eV/Å
and ``virial.npy`` [F, 9] eV. A ``nopbc`` file, or no ``box.npy``, means the system is not periodic.
The virial is converted to stress with ASE's sign convention: ``stress = -virial / volume``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import ase
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers as SYMBOL_TO_Z
from ase.data import chemical_symbols

from lam.data.labels import raw_label, stress_3x3
from lam.data.validate import InvalidFrameError


def is_system(path: Path) -> bool:
    """Whether ``path`` is a deepmd/npy system directory."""
    return path.is_dir() and (path / "type.raw").is_file()


def is_written_output(path: Path) -> bool:
    """Whether ``path`` looks like :func:`write_systems` output: a system, or a dir of only systems."""
    if is_system(path):
        return True
    children = list(path.iterdir()) if path.is_dir() else []
    return bool(children) and all(is_system(child) for child in children)


def find_systems(path: Path) -> list[Path]:
    """``path`` itself if it is a system, else every system below it, sorted by path."""
    if is_system(path):
        return [path]
    return sorted(p.parent for p in path.rglob("type.raw") if is_system(p.parent))


def _atomic_numbers(system: Path) -> np.ndarray:
    """[N] atomic numbers from ``type.raw`` and ``type_map.raw``."""
    types = np.loadtxt(system / "type.raw", dtype=np.int64, ndmin=1)
    type_map_file = system / "type_map.raw"
    if not type_map_file.is_file():
        raise ValueError(f"{system}: no type_map.raw, so the elements of the type indices are unknown")
    symbols = type_map_file.read_text().split()
    if types.size and (types.min() < 0 or types.max() >= len(symbols)):
        raise ValueError(f"{system}/type.raw: type index out of range for type_map.raw {symbols}")
    unknown = [s for s in symbols if s not in SYMBOL_TO_Z]
    if unknown:
        raise ValueError(f"{system}/type_map.raw: unknown element symbol(s) {unknown}")
    return np.array([SYMBOL_TO_Z[s] for s in symbols], dtype=np.int64)[types]


def _load(set_dir: Path, name: str) -> np.ndarray | None:
    """``set_dir/name.npy`` as float64 [rows, values per row], or None when the file is absent."""
    file = set_dir / f"{name}.npy"
    if not file.is_file():
        return None
    values = np.load(file).astype(np.float64, copy=False)
    return values.reshape(len(values), -1)


def _frame(
    numbers: np.ndarray, arrays: dict[str, np.ndarray | None], k: int, periodic: bool, source: str, index: int
) -> ase.Atoms:
    """Frame ``k`` of one set as Atoms; a label file with too few rows is a missing label."""
    n_atoms = len(numbers)
    box = arrays["box"]
    if periodic and box is not None and (k >= len(box) or box.shape[1] != 9):
        raise InvalidFrameError(
            source, index, "cell", f"box.npy has {box.shape} values, expected [frames, 9]"
        )
    cell = box[k].reshape(3, 3) if periodic and box is not None else np.zeros((3, 3))
    atoms = ase.Atoms(numbers=numbers, positions=arrays["coord"][k].reshape(n_atoms, 3), cell=cell)
    atoms.pbc = periodic
    results: dict[str, object] = {}
    for name, label in (("energy", "energy"), ("force", "forces"), ("virial", "stress")):
        values = arrays[name]
        if values is None:
            continue
        if k >= len(values):
            raise InvalidFrameError(source, index, label, f"missing: {name}.npy has only {len(values)} rows")
        results[label] = values[k]
    if "energy" in results:
        results["energy"] = float(results["energy"].reshape(-1)[0])
    if "forces" in results:
        forces = results["forces"]  # a wrong size is left for validate_atoms to report
        results["forces"] = forces.reshape(n_atoms, 3) if forces.size == 3 * n_atoms else forces
    if "stress" in results:
        results["stress"] = -results["stress"].reshape(3, 3) / atoms.get_volume()
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def read_system(system: Path) -> Iterator[tuple[str, int, ase.Atoms | InvalidFrameError]]:
    """``(source, index, frame)`` for each frame of one system, sets in sorted order.

    A frame that cannot be built (e.g. a label file with too few rows) comes back as the
    :class:`InvalidFrameError` in place of the frame, so that the caller can skip it and go on.
    """
    system = Path(system)
    numbers = _atomic_numbers(system)
    periodic = not (system / "nopbc").exists()
    index = 0
    for set_dir in sorted(system.glob("set.*")):
        if (set_dir / "real_atom_types.npy").exists():
            raise ValueError(f"{set_dir}: mixed-type deepmd systems (real_atom_types.npy) are not supported")
        coord = np.load(set_dir / "coord.npy").astype(np.float64, copy=False)
        n_frames = len(coord)
        coord = coord.reshape(n_frames, -1)
        if coord.shape[1] != 3 * len(numbers):
            raise ValueError(
                f"{set_dir}/coord.npy: {coord.shape[1]} values per frame, type.raw has {len(numbers)} atoms"
            )
        arrays = {"coord": coord} | {n: _load(set_dir, n) for n in ("box", "energy", "force", "virial")}
        set_periodic = periodic and arrays["box"] is not None
        if arrays["virial"] is not None and not set_periodic:
            raise ValueError(
                f"{set_dir}/virial.npy: a non-periodic system has no volume to turn a virial into stress"
            )
        for k in range(n_frames):
            try:
                frame: ase.Atoms | InvalidFrameError = _frame(
                    numbers, arrays, k, set_periodic, str(system), index
                )
            except InvalidFrameError as error:
                frame = error
            yield str(system), index, frame
            index += 1


def _system_arrays(frames: list[ase.Atoms]) -> dict[str, np.ndarray]:
    """Stack the frames of one system; a label must be on all frames or on none."""
    arrays = {"coord": np.stack([a.positions.reshape(-1) for a in frames])}
    if frames[0].pbc.all():
        arrays["box"] = np.stack([a.cell.array.reshape(-1) for a in frames])
    for name, label in (("energy", "energy"), ("force", "forces"), ("virial", "stress")):
        values = [raw_label(a, label) for a in frames]
        present = [v is not None for v in values]
        if not any(present):
            continue
        if not all(present):
            missing = frames[present.index(False)].info.get("frame_id", present.index(False))
            raise ValueError(
                f"deepmd/npy cannot hold a partly labelled system: frame {missing} has no {label}, others do"
            )
        if label == "stress":
            values = [-stress_3x3(v) * a.get_volume() for v, a in zip(values, frames, strict=True)]
        arrays[name] = np.stack([np.asarray(v, dtype=np.float64).reshape(-1) for v in values])
    if "energy" in arrays:
        arrays["energy"] = arrays["energy"].reshape(-1)
    return arrays


def write_systems(frames: Iterable[ase.Atoms], out_dir: Path) -> int:
    """Write frames as deepmd/npy systems, one per distinct atom sequence; returns the frame count.

    Frames with the same atomic numbers in the same order (and the same periodicity) form one
    system, so frame order is kept within a system only. One system is written to ``out_dir``
    itself, several to ``out_dir/<formula>_<k>``. All systems share one ``type_map.raw`` (elements
    sorted by Z). Heads and other metadata are not representable in deepmd/npy and are not written.
    """
    groups: dict[tuple, list[ase.Atoms]] = {}
    for atoms in frames:
        pbc = tuple(bool(p) for p in atoms.pbc)
        if any(pbc) and not all(pbc):
            raise ValueError(
                f"frame {atoms.info.get('frame_id', '?')}: deepmd/npy cannot hold mixed pbc {pbc}"
            )
        groups.setdefault((tuple(atoms.numbers.tolist()), all(pbc)), []).append(atoms)
    elements = sorted({z for numbers, _ in groups for z in numbers})
    type_of = {z: t for t, z in enumerate(elements)}
    out_dir = Path(out_dir)
    for k, ((numbers, periodic), system_frames) in enumerate(groups.items()):
        system = out_dir if len(groups) == 1 else out_dir / f"{system_frames[0].get_chemical_formula()}_{k}"
        (system / "set.000").mkdir(parents=True, exist_ok=True)
        (system / "type.raw").write_text("".join(f"{type_of[z]}\n" for z in numbers))
        (system / "type_map.raw").write_text("".join(f"{chemical_symbols[z]}\n" for z in elements))
        if not periodic:
            (system / "nopbc").touch()
        for name, values in _system_arrays(system_frames).items():
            np.save(system / "set.000" / f"{name}.npy", values)
    return sum(len(f) for f in groups.values())
