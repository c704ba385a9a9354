"""Layers import downward only (STYLE rule 1): nn -> model -> {train, hub, calculator, cli}."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lam"
FORBIDDEN = {
    "nn": ("lightning", "pytorch_lightning", "ase", "huggingface_hub", "jsonargparse", "lam.model",
           "lam.train",
           "lam.data", "lam.hub"),
    "model": ("lightning", "pytorch_lightning", "ase", "jsonargparse", "lam.train", "lam.data", "lam.hub",
              "huggingface_hub"),
}
# the one allowed exception: LAM inherits huggingface_hub's PyTorchModelHubMixin
ALLOWED = {("model", "lam.py", "huggingface_hub")}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downward(layer: str) -> None:
    offences = []
    for path in sorted((PACKAGE / layer).glob("*.py")):
        for module in imported_modules(path):
            for banned in FORBIDDEN[layer]:
                inside = module == banned or module.startswith(banned + ".")
                if inside and (layer, path.name, banned) not in ALLOWED:
                    offences.append(f"{path.name} imports {module}")
    assert not offences, offences
