"""The dataset registry: one YAML card per dataset in ``data_registry/``, and cached loading.

A card (schema in ``data_registry/README.md``) records what a dataset is (level of theory, units,
elements, periodicity, frame count, license, citation, provenance) and, for datasets shipped in
the repository, where its files are and their sha256 checksums. :func:`load_registered` reads
the shipped files with the converter the card names, verifies their checksums, converts them
once to the training format (:mod:`lam.data.training_format`) and caches the result under
``$LAM_CACHE/datasets/<name>-<sha12>/`` (``LAM_CACHE`` defaults to ``~/.cache/lam``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import ase
import datasets
import yaml
from ase.data import chemical_symbols

from lam.data.converters import CONVERTERS

# The only units lam stores; a card declaring anything else (kcal/mol, Ha, bohr, GPa) is rejected
# rather than silently mixed with eV/Å data.
UNITS: dict[str, str] = {"energy": "eV", "length": "Å", "forces": "eV/Å", "stress": "eV/Å^3"}
ALL_SPLITS = "all"
REQUIRED_FIELDS = (
    "name", "description", "level_of_theory", "units", "elements", "periodic", "has_stress",
    "frame_count", "source", "format", "license", "citation",
)  # fmt: skip
OPTIONAL_FIELDS = ("files", "checksums", "default_head", "provenance")


class CardError(ValueError):
    """A registry card that does not follow the schema; names the card file and the field."""

    def __init__(self, path: Path | str, field: str, reason: str) -> None:
        self.path, self.field, self.reason = Path(path), field, reason
        super().__init__(f"{path}: field '{field}': {reason}")


class UnknownDatasetError(LookupError):
    """No card of that name; the message lists the known names."""


class ChecksumError(ValueError):
    """A shipped file whose sha256 differs from the one recorded in its card."""


@dataclass(frozen=True)
class LevelOfTheory:
    """How the labels were computed."""

    functional: str  # e.g. "PBE", "ωB97X"
    basis: str  # basis set or plane-wave/PAW setup
    code: str  # e.g. "VASP", "Gaussian 16"
    notes: str = ""  # caveats: raw vs corrected energies, float32 source, unverified functional, ...


@dataclass(frozen=True)
class Source:
    """Where the data comes from."""

    url: str
    hub_id: str | None = None  # Hugging Face dataset id, if any
    commit: str | None = None  # source commit or release version
    path: str | None = None  # path of the file(s) within the source


@dataclass(frozen=True)
class DatasetCard:
    """One dataset of the registry, as read from ``data_registry/<name>.yaml``.

    ``files`` maps split name -> path relative to the card's directory (empty for datasets that are
    not shipped); ``checksums`` maps those relative paths -> sha256 hex digests.
    """

    name: str
    description: str
    level_of_theory: LevelOfTheory
    units: dict[str, str]
    elements: tuple[str, ...]
    periodic: bool | Literal["slab"]
    has_stress: bool
    frame_count: int
    source: Source
    format: str
    license: str
    citation: str
    files: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    default_head: str = ""
    provenance: str | None = None
    card_path: Path | None = None  # the YAML file this card was read from

    @property
    def directory(self) -> Path:
        """Directory the card's relative paths are resolved against."""
        return self.card_path.parent if self.card_path is not None else registry_dir()

    @property
    def local_files(self) -> dict[str, Path]:
        """Split name -> absolute path of the shipped file (empty if the dataset is not shipped)."""
        return {split: self.directory / rel for split, rel in self.files.items()}

    @property
    def shipped(self) -> bool:
        """Whether the dataset's files are in the repository."""
        return bool(self.files)

    def to_dict(self) -> dict[str, object]:
        """The card as plain YAML-ready data, in schema order."""
        data = dataclasses.asdict(self)
        data.pop("card_path")
        data["elements"] = list(self.elements)
        return data

    def to_yaml(self) -> str:
        """The card as YAML text (elements on one line, as in the card files)."""
        data = {**self.to_dict(), "elements": _FlowList(self.elements)}
        return yaml.dump(data, Dumper=_CardDumper, sort_keys=False, allow_unicode=True, width=100)


class _FlowList(list):
    """A list that YAML writes in flow style: ``[H, C, N, O]``."""


class _CardDumper(yaml.SafeDumper):
    """SafeDumper that writes :class:`_FlowList` in flow style."""


_CardDumper.add_representer(
    _FlowList, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)
)


def registry_dir() -> Path:
    """``$LAM_REGISTRY`` if set, else ``data_registry/`` at the repository root."""
    override = os.environ.get("LAM_REGISTRY")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "data_registry"


def cache_dir() -> Path:
    """``$LAM_CACHE/datasets`` (``LAM_CACHE`` defaults to ``~/.cache/lam``)."""
    return Path(os.environ.get("LAM_CACHE", Path.home() / ".cache" / "lam")) / "datasets"


def _require(data: Mapping, key: str, kind: type, path: Path) -> object:
    value = data.get(key)
    # bool is an int subclass: frame_count: true must not pass as a count
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise CardError(path, key, f"expected {kind.__name__}, got {value!r}")
    return value


def _check_units(units: Mapping, path: Path) -> dict[str, str]:
    for quantity, unit in units.items():
        if quantity not in UNITS:
            raise CardError(path, f"units.{quantity}", f"unknown quantity (lam stores only {sorted(UNITS)})")
        if unit != UNITS[quantity]:
            raise CardError(path, f"units.{quantity}", f"{unit!r} is unsupported; lam stores {UNITS[quantity]!r}")
    missing = sorted(set(UNITS) - set(units))
    if missing:
        raise CardError(path, f"units.{missing[0]}", "missing")
    return dict(units)


def _check_elements(elements: list, path: Path) -> tuple[str, ...]:
    for i, symbol in enumerate(elements):
        if symbol not in chemical_symbols[1:]:
            raise CardError(path, f"elements[{i}]", f"{symbol!r} is not a chemical symbol")
    return tuple(elements)


def _check_files(files: Mapping, checksums: Mapping, path: Path) -> None:
    for split, rel in files.items():
        if split == ALL_SPLITS:
            raise CardError(path, f"files.{split}", f"'{ALL_SPLITS}' is reserved for the union of all splits")
        if not isinstance(rel, str) or Path(rel).is_absolute():
            raise CardError(path, f"files.{split}", f"expected a path relative to {path.parent}, got {rel!r}")
        digest = checksums.get(rel)
        if not (isinstance(digest, str) and len(digest) == 64 and set(digest) <= set("0123456789abcdef")):
            raise CardError(path, f"checksums.{rel}", f"expected a sha256 hex digest, got {digest!r}")


def _sub(data: Mapping, key: str, cls: type, path: Path) -> object:
    value = _require(data, key, dict, path)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - names)
    if unknown:
        raise CardError(path, f"{key}.{unknown[0]}", f"unknown field (allowed: {sorted(names)})")
    try:
        return cls(**{k: None if v is None else str(v) for k, v in value.items()})
    except TypeError as err:
        raise CardError(path, key, str(err)) from None


def card_from_dict(data: Mapping, path: Path | str) -> DatasetCard:
    """Validate card data read from ``path`` and build the :class:`DatasetCard`.

    Raises:
        CardError: naming ``path`` and the offending field.
    """
    path = Path(path)
    unknown = sorted(set(data) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise CardError(path, unknown[0], "unknown field (typo?)")
    for key in REQUIRED_FIELDS:
        if data.get(key) is None:
            raise CardError(path, key, "missing")
    name = _require(data, "name", str, path)
    if name != path.stem:
        raise CardError(path, "name", f"{name!r} differs from the file name {path.stem!r}")
    periodic = data["periodic"]
    if periodic not in (True, False, "slab"):
        raise CardError(path, "periodic", f"expected true, false or slab, got {periodic!r}")
    frame_count = _require(data, "frame_count", int, path)
    if frame_count < 1:
        raise CardError(path, "frame_count", f"must be positive, got {frame_count}")
    fmt = _require(data, "format", str, path)
    if fmt not in CONVERTERS:
        raise CardError(path, "format", f"{fmt!r} has no converter; known: {', '.join(CONVERTERS)}")
    files, checksums = data.get("files") or {}, data.get("checksums") or {}
    _check_files(files, checksums, path)
    return DatasetCard(
        name=name,
        description=str(data["description"]).strip(),
        level_of_theory=_sub(data, "level_of_theory", LevelOfTheory, path),
        units=_check_units(_require(data, "units", dict, path), path),
        elements=_check_elements(_require(data, "elements", list, path), path),
        periodic=periodic,
        has_stress=_require(data, "has_stress", bool, path),
        frame_count=frame_count,
        source=_sub(data, "source", Source, path),
        format=fmt,
        license=str(data["license"]),
        citation=str(data["citation"]).strip(),
        files=dict(files),
        checksums=dict(checksums),
        default_head=str(data.get("default_head") or name),
        provenance=data.get("provenance"),
        card_path=path,
    )


def read_card(path: Path | str) -> DatasetCard:
    """Read and validate one card file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise CardError(path, "<yaml>", f"not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise CardError(path, "<root>", "expected a mapping of card fields")
    return card_from_dict(data, path)


def list_cards(directory: Path | str | None = None) -> list[DatasetCard]:
    """Every card of the registry (``registry_dir()`` by default), sorted by name."""
    directory = Path(directory) if directory is not None else registry_dir()
    return [read_card(p) for p in sorted(directory.glob("*.yaml"))]


def get_card(name: str, directory: Path | str | None = None) -> DatasetCard:
    """The card called ``name``.

    Raises:
        UnknownDatasetError: listing the known names.
    """
    directory = Path(directory) if directory is not None else registry_dir()
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(directory.glob("*.yaml")))
        raise UnknownDatasetError(f"no dataset {name!r} in {directory}; known datasets: {known}")
    return read_card(path)


def sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksums(card: DatasetCard, splits: list[str] | None = None) -> None:
    """Check the sha256 of the card's shipped files (all, or those of ``splits``).

    Raises:
        FileNotFoundError, ChecksumError: naming the file and the card.
    """
    for split in splits or list(card.files):
        rel = card.files[split]
        local = card.local_files[split]
        if not local.is_file():
            raise FileNotFoundError(f"{card.card_path}: field 'files.{split}': {local} does not exist")
        actual = sha256(local)
        if actual != card.checksums[rel]:
            raise ChecksumError(f"{local}: sha256 {actual} differs from {card.checksums[rel]} in {card.card_path}")


def _select_splits(card: DatasetCard, split: str) -> list[str]:
    if not card.shipped:
        raise FileNotFoundError(
            f"{card.card_path}: dataset {card.name!r} is not shipped with lam. Download it from "
            f"{card.source.url} and convert it with lam.data.converters.convert(path, {card.format!r})."
        )
    if split == ALL_SPLITS:
        return list(card.files)
    if split not in card.files:
        raise KeyError(f"{card.card_path}: no split {split!r}; splits: {ALL_SPLITS}, {', '.join(card.files)}")
    return [split]


def _frames(card: DatasetCard, splits: list[str]) -> Iterator[ase.Atoms]:
    from lam.data.validate import validate_atoms

    for split in splits:
        path = card.local_files[split]
        for index, atoms in enumerate(CONVERTERS[card.format](path)):
            validate_atoms(atoms, str(path), index)  # converters other than extxyz do not validate
            yield atoms


def cache_path(card: DatasetCard, split: str = ALL_SPLITS) -> Path:
    """Where :func:`load_registered` caches ``split`` of ``card``: the key hashes the file checksums."""
    splits = _select_splits(card, split)
    key = "\n".join(f"{s}:{card.checksums[card.files[s]]}" for s in splits) + f"\nhead:{card.default_head}"
    return cache_dir() / f"{card.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def load_registered(name: str, split: str = ALL_SPLITS) -> datasets.Dataset:
    """A registered, shipped dataset in the training format, converted once and then cached.

    Args:
        name: card name (see :func:`list_cards`).
        split: a split of the card's ``files`` (e.g. ``train``, ``test``) or ``all`` for all of them
            concatenated in card order.

    Raises:
        UnknownDatasetError, FileNotFoundError (dataset not shipped), KeyError (unknown split),
        ChecksumError, ValueError (frame count differs from the card).
    """
    from lam.data.training_format import is_training_dataset, load_training_dataset, write_training_dataset

    card = get_card(name)
    splits = _select_splits(card, split)
    target = cache_path(card, split)
    if not is_training_dataset(target):
        verify_checksums(card, splits)
        # Write next to the target and rename, so an interrupted conversion never looks cached.
        partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        write_training_dataset(_frames(card, splits), partial, head=card.default_head)
        try:
            partial.rename(target)
        except OSError:  # another process finished first: keep its copy
            shutil.rmtree(partial, ignore_errors=True)
    dataset = load_training_dataset(target)
    if split == ALL_SPLITS and len(dataset) != card.frame_count:
        raise ValueError(f"{card.card_path}: field 'frame_count': {card.frame_count}, but {target} has {len(dataset)}")
    return dataset
