"""Dataset statistics for model set-up: per-element energy references, force RMS, neighbour counts.

The per-element energy references solve ``E_frame ≈ Σ_Z n_Z(frame) * e_Z`` by least squares on
composition counts (DeePMD's ``bias_atom_e``). When elements always appear in a fixed ratio (e.g.
only H2O frames) the counts matrix is rank deficient; the minimum-norm solution is returned and the
deficiency is reported. :func:`fit_reference_correction` is the same fit applied to a model's energy
error on new data (DeePMD's fine-tuning "change-by-statistic").

Pure numpy; statistics are cached as ``stats.json`` next to the data (see :func:`cached_statistics`).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import ase
import ase.data
import datasets
import numpy as np

from lam.data.labels import read_label
from lam.data.neighbors import neighbor_list

STATS_FILE = "stats.json"
_NOT_DATA = {STATS_FILE, "PROVENANCE.md", "state.json"}  # never part of the data checksum (nor *.yaml cards)


@dataclass(frozen=True)
class ReferenceFit:
    """Result of a per-element least-squares fit.

    Attributes:
        references: Z -> per-atom value (eV for energies).
        rank: rank of the [n_frames, n_elements] composition matrix.
        n_elements: number of distinct elements (columns).
        rank_deficient: True when rank < n_elements: the split between elements that always occur in
            a fixed ratio is not determined by the data; the minimum-norm solution is returned.
        rms_residual_per_atom: RMS of (target - fit) / n_atoms over frames (eV/atom).
        ridge: the ridge (L2) strength used (0 = plain least squares).
    """

    references: dict[int, float]
    rank: int
    n_elements: int
    rank_deficient: bool
    rms_residual_per_atom: float
    ridge: float


def composition_matrix(numbers: Sequence[np.ndarray], elements: Sequence[int]) -> np.ndarray:
    """[n_frames, n_elements] counts of each element (columns ordered as ``elements``)."""
    column = {int(z): k for k, z in enumerate(elements)}
    counts = np.zeros((len(numbers), len(elements)))
    for row, frame_numbers in enumerate(numbers):
        zs, n = np.unique(np.asarray(frame_numbers, dtype=int), return_counts=True)
        counts[row, [column[int(z)] for z in zs]] = n
    return counts


def fit_per_element(numbers: Sequence[np.ndarray], targets: np.ndarray, ridge: float = 0.0) -> ReferenceFit:
    """Least-squares per-element values ``e_Z`` with ``targets[f] ≈ Σ_Z n_Z(f) e_Z``.

    Args:
        numbers: per frame, the [N_f] atomic numbers.
        targets: [n_frames] extensive quantity per frame (e.g. energy, eV).
        ridge: L2 penalty ``ridge * n_frames * |e|^2`` (0 = plain min-norm least squares).
    """
    targets = np.asarray(targets, dtype=np.float64)
    if len(numbers) == 0 or len(numbers) != len(targets):
        raise ValueError(
            f"need one target per frame and at least one frame, got {len(numbers)} frames "
            f"and {len(targets)} targets"
        )
    elements = sorted({int(z) for frame in numbers for z in np.asarray(frame)})
    counts = composition_matrix(numbers, elements)
    rank = int(np.linalg.matrix_rank(counts))
    if ridge > 0:
        gram = counts.T @ counts + ridge * len(targets) * np.eye(len(elements))
        solution = np.linalg.solve(gram, counts.T @ targets)
    else:  # lstsq returns the minimum-norm solution when rank deficient
        solution = np.linalg.lstsq(counts, targets, rcond=None)[0]
    residual = (targets - counts @ solution) / counts.sum(axis=1)
    return ReferenceFit(
        references={z: float(e) for z, e in zip(elements, solution, strict=True)},
        rank=rank,
        n_elements=len(elements),
        rank_deficient=rank < len(elements),
        rms_residual_per_atom=float(np.sqrt(np.mean(residual**2))),
        ridge=float(ridge),
    )


def _energies(frames: Sequence[ase.Atoms]) -> tuple[list[np.ndarray], np.ndarray]:
    """Atomic numbers and energies of the frames that carry an energy label."""
    numbers, energies = [], []
    for atoms in frames:
        energy = read_label(atoms, "energy")
        if energy is not None:
            numbers.append(atoms.numbers)
            energies.append(float(energy))
    return numbers, np.asarray(energies)


def as_frames(source: Iterable[ase.Atoms] | datasets.Dataset) -> Iterable[ase.Atoms]:
    """Frames of a list/iterable of Atoms, or of a training-format ``datasets.Dataset`` (lazily)."""
    if isinstance(source, datasets.Dataset):
        from lam.data.training_format import row_to_atoms

        return (row_to_atoms(row) for row in source)
    return source


def fit_energy_references(
    source: Iterable[ase.Atoms] | datasets.Dataset, ridge: float = 0.0, head: str | None = None
) -> dict[int, float]:
    """Per-element energy references (Z -> eV) by least squares on composition counts.

    Args:
        source: frames (labels in their calculators) or a training-format dataset.
        ridge: optional L2 penalty (see :func:`fit_per_element`).
        head: use only frames whose ``info["head"]`` is ``head`` (None: all frames).

    Frames without an energy label are ignored. A rank-deficient fit (elements in fixed ratio) is
    reported with a ``UserWarning`` and solved by minimum norm (or ridge when ``ridge > 0``).
    """
    frames = [a for a in as_frames(source) if head is None or a.info.get("head") == head]
    numbers, energies = _energies(frames)
    fit = fit_per_element(numbers, energies, ridge)
    if fit.rank_deficient:
        warnings.warn(
            f"energy references: composition matrix has rank {fit.rank} < {fit.n_elements} elements "
            "(some elements always occur in a fixed ratio); using the minimum-norm solution",
            stacklevel=2,
        )
    return fit.references


def fit_reference_correction(
    residual_energies: np.ndarray, numbers: Sequence[np.ndarray], ridge: float = 0.0
) -> ReferenceFit:
    """Per-element correction to add to a model's references ("change-by-statistic").

    Args:
        residual_energies: [n_frames] reference energy minus model energy on the new data, eV.
        numbers: per frame, the [N_f] atomic numbers.
        ridge: optional L2 penalty (see :func:`fit_per_element`).

    Returns:
        The fit; ``references[Z]`` is the shift (eV) to add to element Z's energy reference.
    """
    return fit_per_element(numbers, residual_energies, ridge)


def force_rms(frames: Iterable[ase.Atoms]) -> float | None:
    """RMS force component over all atoms of frames with forces (eV/Å); None when none has forces."""
    squares, count = 0.0, 0
    for atoms in frames:
        forces = read_label(atoms, "forces")
        if forces is not None:
            squares += float(np.sum(forces**2))
            count += forces.size
    return float(np.sqrt(squares / count)) if count else None


def count_frames_with_forces(frames: Iterable[ase.Atoms], threshold: float) -> int:
    """Frames whose forces carry information: some component above ``threshold`` eV/Å.

    Symmetric cells (the elastic and volume scans of an equation of state) have every force zero by
    symmetry: they teach a model energies, but nothing about the shape of the force field.
    """
    count = 0
    for atoms in frames:
        forces = read_label(atoms, "forces")
        if forces is not None and forces.size and float(np.abs(forces).max()) > threshold:
            count += 1
    return count


def mean_neighbor_count(frames: Iterable[ase.Atoms], cutoff: float) -> float:
    """Mean number of neighbours per atom within ``cutoff`` (Å), periodic images included."""
    edges, atoms_total = 0, 0
    for atoms in frames:
        edge_index, _ = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
        edges += edge_index.shape[1]
        atoms_total += len(atoms)
    return edges / atoms_total if atoms_total else 0.0


def _head_statistics(frames: list[ase.Atoms], cutoff: float, ridge: float) -> dict:
    """Statistics of the frames of one head (JSON-able)."""
    numbers, energies = _energies(frames)
    fit = fit_per_element(numbers, energies, ridge) if energies.size else None
    elements = sorted(
        {ase.data.chemical_symbols[z] for a in frames for z in set(a.numbers)},
        key=ase.data.atomic_numbers.get,
    )
    stats = {
        "frames": len(frames),
        "atoms": int(sum(len(a) for a in frames)),
        "elements": elements,
        "frames_with_energy": int(energies.size),
        "energy_references_eV": None,
        "reference_fit": None,
        "force_rms_eV_per_A": force_rms(frames),
        "cutoff_A": float(cutoff),
        "mean_neighbor_count": mean_neighbor_count(frames, cutoff),
    }
    if fit is not None:
        stats["energy_references_eV"] = {ase.data.chemical_symbols[z]: e for z, e in fit.references.items()}
        stats["reference_fit"] = {k: v for k, v in asdict(fit).items() if k != "references"}
    return stats


def compute_statistics(
    frames: Iterable[ase.Atoms] | datasets.Dataset,
    cutoff: float = 6.0,
    ridge: float = 0.0,
    default_head: str = "default",
) -> dict[str, dict]:
    """Statistics per head (``atoms.info["head"]``, else ``default_head``), as a JSON-able dict.

    Each head gets: frames, atoms, elements, per-element energy references (eV, keyed by element
    symbol) with the fit's rank report, force RMS (eV/Å) and mean neighbour count at ``cutoff`` (Å).
    """
    by_head: dict[str, list[ase.Atoms]] = {}
    for atoms in as_frames(frames):
        by_head.setdefault(str(atoms.info.get("head") or default_head), []).append(atoms)
    return {head: _head_statistics(group, cutoff, ridge) for head, group in sorted(by_head.items())}


def _is_data(path: Path) -> bool:
    """Whether a file inside a data directory is data (not a card, cache or provenance file)."""
    return path.name not in _NOT_DATA and path.suffix != ".yaml" and not path.name.endswith(f".{STATS_FILE}")


def data_checksum(path: str | Path) -> str:
    """sha256 of a data file (as in registry cards), or of all data files of a directory.

    A directory's digest runs over each data file's relative name and sha256, in sorted order.
    ``stats.json`` caches, ``*.yaml`` cards, ``PROVENANCE.md`` and the ``datasets`` ``state.json`` (whose
    fingerprint changes between identical saves) are not data and are skipped.
    """
    path = Path(path)
    if path.is_file():
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    files = sorted(p for p in path.rglob("*") if p.is_file() and _is_data(p))
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(bytes.fromhex(data_checksum(file)))
    return digest.hexdigest()


def stats_path(path: str | Path) -> Path:
    """Where the statistics of ``path`` are cached: ``DIR/stats.json`` or ``FILE.stats.json``."""
    path = Path(path)
    return path / STATS_FILE if path.is_dir() else path.with_name(f"{path.name}.{STATS_FILE}")


def cached_statistics(
    path: str | Path,
    frames: Iterable[ase.Atoms] | datasets.Dataset | None = None,
    cutoff: float = 6.0,
    ridge: float = 0.0,
    default_head: str = "default",
) -> dict:
    """Statistics of the data at ``path``, read from its cache when the data checksum still matches.

    Args:
        path: data file or directory; the cache is :func:`stats_path` of it.
        frames: the frames (or training-format dataset) of ``path``; read with
            ``lam.data.readers.read_frames`` when None.
        cutoff: neighbour-count cutoff, Å; a cache made with another cutoff is recomputed.
        ridge: ridge strength of the reference fit; a cache made with another one is recomputed.
        default_head: head of frames without ``info["head"]``.

    Returns:
        ``{"checksum", "cutoff_A", "ridge", "heads": {head: stats}}``.
    """
    checksum, cache = data_checksum(path), stats_path(path)
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if (cached.get("checksum"), cached.get("cutoff_A"), cached.get("ridge")) == (checksum, cutoff, ridge):
            return cached
    if frames is None:
        from lam.data.readers import read_frames

        frames = read_frames(path)
    stats = {
        "checksum": checksum,
        "cutoff_A": float(cutoff),
        "ridge": float(ridge),
        "heads": compute_statistics(frames, cutoff, ridge, default_head),
    }
    cache.write_text(json.dumps(stats, indent=2) + "\n")
    return stats
