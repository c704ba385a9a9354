"""The ``lam`` command line: typed functions and options dataclasses through ``jsonargparse.auto_cli``.

Each group of subcommands lives in its own module under :mod:`lam.commands` as a ``COMMANDS`` dict;
this file assembles them and lets users spell flags the usual way: ``--max-steps`` for
``--max_steps``, a bare boolean flag (``--overwrite``) for ``--overwrite true``, ``--from`` for
the ``model`` field (``from`` is a Python keyword) and ``lam pretrain --config RECIPE``.

A workflow command (``finetune``, ``distill``, ``pretrain``) is its options dataclass: auto_cli builds
the options from the flags and the ``--config`` recipe, and :data:`lam.commands.workflows.RUNNERS`
runs them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any, get_args, get_origin, get_type_hints

from jsonargparse import auto_cli

FLAG_ALIASES = {"--from": "--model"}
SHORT_FLAGS = {"-o": "--output"}
# jsonargparse reserves --config for a file of a command's own arguments; pretraining users mean the recipe
# (an alias of None makes the flag's value the positional argument)
COMMAND_FLAG_ALIASES: dict[str, dict[str, str | None]] = {"pretrain": {"--config": "--recipe"}}


def components() -> dict[str, Any]:
    """The command tree: ``{"data": {...}, "finetune": fn, ...}``."""
    from lam.commands import data_io, demo, generate, hub, interop, registry, train, workflows

    return {
        "data": {**registry.COMMANDS, **data_io.COMMANDS, **generate.COMMANDS},
        **workflows.COMMANDS,
        **train.COMMANDS,
        **hub.COMMANDS,
        **interop.COMMANDS,
        **demo.COMMANDS,
    }


def _command_of(tree: dict[str, Any], argv: list[str]) -> Callable | None:
    """The function the leading positional tokens of ``argv`` select, if any."""
    node: Any = tree
    for token in argv:
        if not isinstance(node, dict) or token not in node:
            break
        node = node[token]
    return node if callable(node) else None


def normalize_argv(argv: list[str], tree: dict[str, Any]) -> list[str]:
    """Map user spellings of flags to the ones jsonargparse derives from the signatures."""
    aliases = {**FLAG_ALIASES, **COMMAND_FLAG_ALIASES.get(argv[0] if argv else "", {})}
    normalized = []
    for token in argv:
        token = SHORT_FLAGS.get(token, token)
        if token.startswith("--") and len(token) > 2:
            flag, eq, value = token.partition("=")
            if flag in aliases and aliases[flag] is None:
                if eq:
                    normalized.append(value)
                continue
            flag = aliases.get(flag, flag)
            token = "--" + flag[2:].replace("-", "_") + eq + value
        normalized.append(token)
    command = _command_of(tree, normalized)
    if command is None:
        return normalized
    hints = get_type_hints(command)
    booleans = {f"--{name}" for name, kind in hints.items() if kind is bool}
    lists = {f"--{name}" for name, kind in hints.items() if _is_list(kind)}
    normalized = _collect_lists(normalized, lists)
    completed = []
    for i, token in enumerate(normalized):
        completed.append(token)
        following = normalized[i + 1] if i + 1 < len(normalized) else "--"
        if token in booleans and following.startswith("--"):
            completed.append("true")
    return completed


def _is_list(kind: Any) -> bool:
    """Whether a type hint is ``list[...]`` or ``list[...] | None``.

    A union with other types (``--devices 2`` for ``int | list[int]``) is not: its flag takes one value.
    """
    if get_origin(kind) is list:
        return True
    options = [arg for arg in get_args(kind) if arg is not type(None)]
    return bool(options) and all(get_origin(arg) is list for arg in options)


def _collect_lists(argv: list[str], list_flags: set[str]) -> list[str]:
    """``--branch a --branch b`` or ``--branch a,b`` -> ``--branch ["a", "b"]`` (one list value)."""
    values: dict[str, list[str]] = {}
    rest: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        flag, eq, value = token.partition("=")
        if flag in list_flags and not value.startswith("["):
            given = value if eq else next(tokens, "")
            values.setdefault(flag, []).extend(given.split(",") if "," in given else [given])
        else:
            rest.append(token)
    for flag, items in values.items():
        rest += [flag, json.dumps(items)]
    return rest


def run(argv: list[str]) -> Any:
    """Run one ``lam`` command line and return what the subcommand returned."""
    from lam.commands.workflows import RUNNERS

    tree = components()
    result = auto_cli(tree, args=normalize_argv(list(argv), tree), as_positional=True)
    runner = RUNNERS.get(type(result))
    return runner(result) if runner is not None else result


def main() -> None:
    """Entry point of the ``lam`` console script (returns nothing: its return value is the exit status).

    Errors about the user's input (bad files, frames, names, existing output) print one clear line
    and exit with status 2; anything unexpected prints one line and exits with 1. ``LAM_DEBUG=1``
    shows the traceback instead.
    """
    from lam.cpu_memory import reuse_freed_memory
    from lam.errors import LamError

    reuse_freed_memory()  # the command line opts in for large systems: see lam/cpu_memory.py
    try:
        run(sys.argv[1:])
    except (LamError, ValueError, KeyError, FileNotFoundError, FileExistsError, IsADirectoryError) as error:
        if os.environ.get("LAM_DEBUG"):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"lam: error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("lam: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as error:  # a bug or an environment problem: one line, the traceback on request
        if os.environ.get("LAM_DEBUG"):
            raise
        print(f"lam: unexpected {type(error).__name__}: {error} (run with LAM_DEBUG=1 for the traceback)",
              file=sys.stderr)
        sys.exit(1)
