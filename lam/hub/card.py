"""Model cards (``README.md``) of what workflows write: pretrained, fine-tuned, re-referenced, distilled.

The YAML metadata is huggingface_hub's :class:`~huggingface_hub.ModelCardData`: ``base_model`` names
the parent (so the Hub shows the lineage), ``eval_results`` becomes the model-index, and
``lam_lineage`` records parent, revision and heads for tools.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from lam._version import __version__
from lam.hub.models import ModelRef

# installed with the package; the repository's top-level model_cards/ links here
TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "resources" / "model_cards"
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
            "parent_commit": self.parent.commit,
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


def derived_licenses(lineage: Lineage, dataset: str) -> dict[str, str | None]:
    """The terms a derived model inherits: its training data's and its parent's (None: not stated)."""
    return {dataset: dataset_license(dataset), lineage.parent_name: parent_license(lineage)}


def _card_data(lineage: Lineage, dataset: str, metrics: dict | None) -> ModelCardData:
    registered = dataset_license(dataset) is not None
    return ModelCardData(
        library_name="lam",
        tags=["interatomic-potential", "lam", "fine-tuned"],
        base_model=lineage.parent_name,
        license=combined_license(derived_licenses(lineage, dataset)),
        datasets=[dataset] if registered else None,
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
        parent_commit=lineage.parent.commit,
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
        licenses=license_lines(derived_licenses(lineage, data)),
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
        parent_commit=lineage.parent.commit,
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


def dataset_license(name: str) -> str | None:
    """The license of a registered dataset, or None when ``name`` is not registered."""
    from lam.data.registry import UnknownDatasetError, get_card

    try:
        return get_card(name).license
    except (UnknownDatasetError, FileNotFoundError, ValueError):
        return None


def parent_license(lineage: Lineage) -> str | None:
    """The license in the parent model's card, when the parent is a folder with one."""
    path = Path(lineage.parent.location) / CARD_FILE
    if lineage.parent.kind == "hub" or not path.is_file():
        return None
    return ModelCard.load(path).data.to_dict().get("license")


def combined_license(licenses: Mapping[str, str | None]) -> str:
    """One license for the card's metadata: the shared one, else ``other`` (each is named in the text).

    Which of several licenses is the most restrictive is a legal question lam does not decide: the
    card lists every source's terms and the metadata says ``other``.
    """
    values = list(licenses.values())
    if values and all(values) and len(set(values)) == 1:
        return values[0]
    return "other"


def license_lines(licenses: Mapping[str, str | None]) -> str:
    """A markdown list: ``- `source`: license``."""
    lines = [f"- `{name}`: {value or 'not stated, see its source'}" for name, value in licenses.items()]
    return "\n".join(lines)


def _card_row(spec: Any, metrics: dict[str, float]) -> str:
    """One markdown table row: head, level of theory, split sizes, errors in meV/atom, meV/Å, MPa."""

    def value(key: str, scale: float) -> str:
        return f"{metrics[key] * scale:.1f}" if key in metrics else "–"

    return (
        f"| `{spec.name}` | {spec.level_of_theory} | {metrics.get('train_frames', '–')} / "
        f"{metrics.get('val_frames', '–')} | {value('energy_mae_per_atom', 1e3)} "
        f"| {value('force_rmse', 1e3)} "
        f"| {value('stress_rmse', 160.21766e3)} |"  # eV/Å^3 -> MPa
    )


def pretrained_card(model: Any, metrics: dict[str, Any], recipe: str) -> ModelCard:
    """Card of a pretrained model: metadata, heads, levels of theory, held-out errors, data licenses."""
    heads = model.config.heads
    licenses = {d: dataset_license(d) for spec in heads for d in spec.datasets}
    data = ModelCardData(
        library_name="lam",
        tags=["interatomic-potential", "lam", model.config.descriptor.kind, "multi-task"],
        datasets=sorted(licenses),
        license=combined_license(licenses),
        model_name="Pretrained multi-head large atomic model",
        lam_pretraining={"recipe": recipe, "steps": metrics["steps"], "heads": [h.name for h in heads]},
    )
    return ModelCard.from_template(
        data,
        template_path=str(TEMPLATE_DIR / "pretrained.md"),
        model_name=data.model_name,
        descriptor=model.config.descriptor.kind,
        cutoff=model.cutoff,
        n_heads=len(heads),
        steps=metrics["steps"],
        recipe=recipe,
        rows="\n".join(_card_row(spec, metrics["heads"].get(spec.name, {})) for spec in heads),
        licenses=license_lines(licenses),
        first_head=heads[0].name,
    )


def distilled_card(
    lineage: Lineage,
    iterations: Sequence[dict[str, Any]],
    converged: bool,
    speed: dict[str, Any],
    options: Mapping[str, Any],
    reference: Mapping[str, Any] | None = None,
) -> ModelCard:
    """Card of a student: lineage, settings, agreement, speed and errors against reference data.

    ``reference`` holds the student's and the teacher's errors on the user's labelled test frames.
    """
    run_only = ("head", "teacher", "structures", "out", "overwrite", "logger", "progress", "trainer")
    settings = {k: v for k, v in options.items() if k not in run_only}
    structures = options["structures"]
    teacher_license = parent_license(lineage)
    data = ModelCardData(
        library_name="lam",
        tags=["interatomic-potential", "lam", "distilled"],
        base_model=lineage.parent_name,
        license=teacher_license,
        model_name=f"{Path(lineage.parent_name).name}-student",
        lam_lineage={**lineage.to_dict(), "structures": structures, "distillation": settings},
    )
    rows = "\n".join(
        f"| {r['iteration']} | {r['selection']['candidates']} / {r['labelled']} | "
        f"{r['train_frames']} / {r['holdout_frames']} | {r['steps']} | "
        f"{1000 * r['holdout']['energy_mae_per_atom']:.2f} | {1000 * r['holdout']['force_rmse']:.2f} | "
        f"{1000 * r['holdout_teacher_force_rms']:.1f} |"
        for r in iterations
    )
    return ModelCard.from_template(
        data,
        template_path=str(TEMPLATE_DIR / "distilled.md"),
        model_name=data.model_name,
        parent=lineage.parent_name,
        revision=lineage.parent.revision,
        commit=lineage.parent.commit,
        head=lineage.head,
        student=options["student"],
        temperature=" / ".join(f"{t:g}" for t in options["temperatures"]),
        rows=rows,
        target=1000 * options["target_force_rmse"],
        converged=converged,
        speed=speed,
        structures=structures,
        reference=_reference_lines(reference),
    )


def _reference_lines(reference: Mapping[str, Any] | None) -> str:
    """Student and teacher against the user's reference labels, as a table (or a note)."""
    if not reference:
        return "No reference test data was given (`--test-data`): check the student against DFT before use."
    rows = []
    for who in ("student", "teacher"):
        m = reference[who]
        energy = "n/a" if m["energy_mae_per_atom"] is None else f"{1000 * m['energy_mae_per_atom']:.2f}"
        force = "n/a" if m["force_rmse"] is None else f"{1000 * m['force_rmse']:.1f}"
        rows.append(f"| {who} | {energy} | {force} |")
    return (f"Against `{reference['test_data']}` ({reference['frames']} labelled frames):\n\n"
            "| model | energy MAE (meV/atom) | force RMSE (meV/Å) |\n|---|---|---|\n" + "\n".join(rows))
