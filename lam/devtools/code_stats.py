"""Size and structure figures of a Python package: file and function lengths, import circles.

Used by ``scripts/code_stats.py`` (the figures the style guide sets budgets for) and by the layering
test (no import circle). Every ``import`` counts, at module level, inside functions and under
``TYPE_CHECKING``: a circle that is only broken by importing late is still a circle in the design.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class FunctionSize:
    """One function or method: where it is and how many lines it spans (decorators excluded)."""

    module: str
    name: str
    lines: int


def module_name(path: Path, root: Path) -> str:
    """``lam/train/finetune.py`` -> ``lam.train.finetune``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(root: Path) -> dict[str, Path]:
    """Every module of the package under ``root`` (the folder holding ``__init__.py``) by dotted name."""
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Dotted names each import statement of ``tree`` refers to (relative imports resolved)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = module.split(".")
            if node.level:  # relative: from the module's package upward
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # "from lam import keys" imports the submodule lam.keys when there is one
            yield from (f"{prefix}.{alias.name}" for alias in node.names)
            yield prefix


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> modules of the same package it imports (the nearest existing module of each name)."""
    modules = package_modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = set()
        for dotted in _imported_names(tree, name, path.name == "__init__.py"):
            while dotted and dotted not in modules:
                dotted = dotted.rpartition(".")[0]
            if dotted and dotted != name and not name.startswith(dotted + "."):
                targets.add(dotted)  # a module importing its own parent package is no circle
        graph[name] = targets
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan), each sorted; none is the goal."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(circles)


def function_sizes(root: Path) -> list[FunctionSize]:
    """Every function and method of the package with its line span."""
    sizes = []
    for name, path in package_modules(root).items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                sizes.append(FunctionSize(name, node.name, node.end_lineno - node.lineno + 1))
    return sizes


def _spread(values: list[int]) -> dict[str, float]:
    return {
        "median": float(np.median(values)),
        "p90": float(np.percentile(values, 90)),
        "max": int(max(values)),
    }


def code_stats(root: Path, function_limit: int = 60, file_limit: int = 400) -> dict:
    """The figures as one JSON-ready dict (lines are physical lines, blank and comment lines included)."""
    files = {name: len(path.read_text().splitlines()) for name, path in package_modules(root).items()}
    functions = function_sizes(root)
    return {
        "files": len(files),
        "file_lines": _spread(list(files.values())),
        "files_over_limit": {name: n for name, n in files.items() if n > file_limit},
        "functions": len(functions),
        "function_lines": _spread([f.lines for f in functions]),
        "functions_over_limit": sorted(
            (f"{f.module}.{f.name}", f.lines) for f in functions if f.lines > function_limit
        ),
        "import_circles": import_circles(import_graph(root)),
    }
