"""``lam data list`` and ``lam data show``: browse the dataset registry."""

from __future__ import annotations

from pathlib import Path

from lam.data.registry import CardError, DatasetCard, UnknownDatasetError, get_card, list_cards

_COLUMNS = ("name", "level of theory", "frames", "elements", "periodic", "shipped", "license")


def _row(card: DatasetCard) -> tuple[str, ...]:
    license_ = card.license if len(card.license) <= 40 else card.license[:37] + "..."
    periodic = {True: "yes", False: "no"}.get(card.periodic, str(card.periodic))
    return (
        card.name,
        card.level_of_theory.functional,
        f"{card.frame_count:,}",
        str(len(card.elements)),
        periodic,
        "yes" if card.shipped else "no",
        license_,
    )


def format_table(cards: list[DatasetCard]) -> str:
    """A plain-text table of cards, one row each, columns padded to their widest cell."""
    rows = [_COLUMNS, *(_row(card) for card in cards)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def list_datasets(registry: str | None = None) -> None:
    """List the registered datasets: level of theory, frame count, number of elements, shipped or not.

    Args:
        registry: registry directory (default: $LAM_REGISTRY or data_registry/ in the repository).
    """
    try:
        cards = list_cards(Path(registry) if registry else None)
    except CardError as err:
        raise SystemExit(f"error: invalid registry card: {err}") from None
    print(format_table(cards))


def show(name: str, registry: str | None = None) -> None:
    """Print one dataset card as YAML.

    Args:
        name: dataset name, as listed by ``lam data list``.
        registry: registry directory (default: $LAM_REGISTRY or data_registry/ in the repository).
    """
    try:
        card = get_card(name, Path(registry) if registry else None)
    except (CardError, UnknownDatasetError) as err:
        raise SystemExit(f"error: {err}") from None
    print(card.to_yaml(), end="")


COMMANDS = {"list": list_datasets, "show": show}
