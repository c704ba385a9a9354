"""Model cards (``README.md``) for fine-tuned and re-referenced models, from ``model_cards/`` templates.

The YAML metadata is huggingface_hub's :class:`~huggingface_hub.ModelCardData`: ``base_model`` names
the parent (so the Hub shows the lineage), ``eval_results`` becomes the model-index, and
``lam_lineage`` records parent, revision and heads for tools.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from lam._version import __version__
from lam.hub.models import ModelRef

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "model_cards"
CARD_FILE = "README.md"
TASK = "interatomic-potential"


@dataclass(frozen=True)
class Lineage:
    """Where a derived model comes from.

    Attributes:
        parent: the parent model reference (built-in name, folder or Hub id).
        parent_head: head of the parent the new head started from ("new" for a fresh head).
        head: head name in the derived model.
        mode: "full", "frozen", "replay" or "change-bias".
    """

    parent: ModelRef
    parent_head: str
    head: str
    mode: str

    @property
    def parent_name(self) -> str:
        """Built-in name, Hub repo id or folder path of the parent (no revision)."""
        return Path(self.parent.location).name if self.parent.kind == "builtin" else self.parent.location

    def to_dict(self) -> dict[str, str | None]:
        """JSON/YAML-ready lineage record (a built-in parent is pinned by the lam version that ships it)."""
        record = {k: v for k, v in asdict(self).items() if k != "parent"}
        return {
            "parent": self.parent_name,
            "parent_kind": self.parent.kind,
            "parent_revision": self.parent.revision,
            **record,
            "lam_version": __version__,
        }


def _eval_results(metrics: dict[str, dict[str, float | int | None]], dataset: str) -> list[EvalResult]:
    return [
        EvalResult(
            task_type=TASK,
            dataset_type=dataset,
            dataset_name=dataset,
            dataset_split="test",
            metric_type=f"{head}/{name}",
            metric_value=value,
        )
        for head, values in metrics.items()
        for name in ("energy_mae_per_atom", "force_rmse", "stress_rmse")
        if (value := values.get(name)) is not None
    ]


def _card_data(lineage: Lineage, dataset: str, metrics: dict | None) -> ModelCardData:
    return ModelCardData(
        library_name="lam",
        tags=["interatomic-potential", "lam", "fine-tuned"],
        base_model=lineage.parent_name,
        model_name=f"{Path(lineage.parent_name).name}-{lineage.head}",
        eval_results=_eval_results(metrics, dataset) if metrics else None,
        lam_lineage=lineage.to_dict(),
    )


def finetuned_card(
    lineage: Lineage,
    data: str,
    split_sizes: tuple[int, int, int],
    steps: int,
    metrics: dict[str, dict[str, float | int | None]],
    metrics_table: str,
    refit_note: str,
    force_frames: int,
) -> ModelCard:
    """Card of a fine-tuned model (template ``model_cards/finetuned.md``).

    Args:
        lineage: parent, revision and heads.
        data: the training data source as given by the user.
        split_sizes: (train, validation, test) frame counts.
        steps: optimiser steps taken.
        metrics: head -> test metrics (:func:`lam.train.evaluate.error_metrics`).
        metrics_table: the same metrics as text (:func:`lam.train.evaluate.format_table`).
        refit_note: paragraphs on the energy-reference refit (and warnings about the data).
        force_frames: training frames whose forces carry information.
    """
    card_data = _card_data(lineage, data, metrics)
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE_DIR / "finetuned.md"),
        model_name=card_data.model_name,
        parent=lineage.parent_name,
        parent_kind=lineage.parent.kind,
        parent_revision=lineage.parent.revision,
        parent_head=lineage.parent_head,
        head=lineage.head,
        mode=lineage.mode,
        data=data,
        n_train=split_sizes[0],
        n_val=split_sizes[1],
        n_test=split_sizes[2],
        n_train_forces=force_frames,
        steps=steps,
        metrics_table=f"```\n{metrics_table}\n```",
        refit_note=refit_note,
    )


def change_bias_card(lineage: Lineage, data: str, n_frames: int, refit_note: str) -> ModelCard:
    """Card of a model whose only change is a refit of one head's energy references."""
    card_data = _card_data(lineage, data, None)
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE_DIR / "change_bias.md"),
        model_name=card_data.model_name,
        parent=lineage.parent_name,
        parent_kind=lineage.parent.kind,
        parent_revision=lineage.parent.revision,
        head=lineage.head,
        data=data,
        n_frames=n_frames,
        refit_note=refit_note,
    )


def read_lineage(folder: str | Path) -> dict | None:
    """The ``lam_lineage`` metadata of a model folder's card, or None when absent."""
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        return None
    return ModelCard.load(path).data.to_dict().get("lam_lineage")
