"""One definition per workflow: the options dataclass, the command's flags and the recipes agree."""

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from lam.cli import components, normalize_argv
from lam.cli import run as run_cli
from lam.devtools.code_stats import import_circles, import_graph
from lam.train.distill.options import DistillOptions
from lam.train.finetune.options import FinetuneOptions
from lam.train.pretrain import PretrainOptions
from lam.train.trainer import TrainerOptions

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = {"finetune": FinetuneOptions, "distill": DistillOptions, "pretrain": PretrainOptions}
RECIPES = {
    "finetune": ["finetune_full", "finetune_frozen", "finetune_replay"],
    "distill": ["distill"],
}


def help_keys(command: str, capsys: pytest.CaptureFixture) -> set[str]:
    """The ``--flags`` that ``lam COMMAND --help`` lists (jsonargparse's own options left out)."""
    with pytest.raises(SystemExit):
        run_cli([command, "--help"])
    text = capsys.readouterr().out
    return set(re.findall(r"^\s+--(\w+)", text, flags=re.M)) - {"help", "config", "print_config"}


@pytest.mark.parametrize("command", sorted(WORKFLOWS))
def test_help_lists_exactly_the_option_fields(command: str, capsys: pytest.CaptureFixture) -> None:
    fields = {f.name for f in dataclasses.fields(WORKFLOWS[command])}
    assert help_keys(command, capsys) == fields


@pytest.mark.parametrize("command", sorted(RECIPES))
def test_recipes_list_exactly_the_option_fields(command: str) -> None:
    fields = {f.name for f in dataclasses.fields(WORKFLOWS[command])}
    for recipe in RECIPES[command]:
        keys = set(yaml.safe_load((REPO / "recipes" / f"{recipe}.yaml").read_text()))
        assert keys == fields, recipe


@pytest.mark.parametrize("command", sorted(WORKFLOWS))
def test_every_workflow_takes_the_trainer_options(command: str) -> None:
    assert issubclass(WORKFLOWS[command], TrainerOptions)
    argv = normalize_argv([command, "--num-nodes", "2", "--logger", "wandb"], components())
    assert argv[1:] == ["--num_nodes", "2", "--logger", "wandb"]


def test_recipe_values_reach_the_options_and_flags_override_them(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    monkeypatch.setitem(__import__("lam.commands.workflows").commands.workflows.RUNNERS, FinetuneOptions,
                        lambda options: seen.setdefault("options", options))
    recipe = REPO / "recipes" / "finetune_frozen.yaml"
    run_cli(["finetune", "--config", str(recipe), "--data", "d.xyz", "--lr", "0.005"])
    expected = FinetuneOptions(**{**yaml.safe_load(recipe.read_text()), "data": "d.xyz", "lr": 0.005})
    assert seen["options"] == expected and expected.mode == "frozen"


def test_the_package_has_no_import_circle() -> None:
    assert import_circles(import_graph(REPO / "lam")) == []


def test_import_circles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_circles(graph) == [["a", "b", "c"]]
