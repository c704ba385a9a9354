"""The ``lam`` command line: typed functions exposed through ``jsonargparse.auto_cli``.

Each group of subcommands lives in its own module under :mod:`lam.commands`; this file only
assembles them.
"""

from __future__ import annotations

import sys

from jsonargparse import auto_cli


def _components() -> dict:
    from lam.commands import data_io, generate, registry

    data = {**registry.COMMANDS, **data_io.COMMANDS, **generate.COMMANDS}
    components: dict = {"data": data}
    try:  # training commands arrive with the model; the data layer works without them
        from lam.commands import train
    except ImportError:
        train = None
    if train is not None:
        components.update(train.COMMANDS)
    return components


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``lam`` console script."""
    auto_cli(_components(), args=sys.argv[1:] if argv is None else argv, as_positional=True)
