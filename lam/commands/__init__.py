"""Subcommands of the ``lam`` CLI, one module per group."""
