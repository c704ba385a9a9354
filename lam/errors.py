"""The base of every failure a user can cause and fix (bad file, frame, field, name or option).

Each such error is a :class:`LamError` whose message is one sentence naming what is wrong (file,
frame, field) and what to do. The ``lam`` command prints it and exits with status 2; anything else is
a bug and prints one line pointing at ``LAM_DEBUG=1``. The subclasses live next to the code that
raises them and keep a built-in base too (``ValueError``...), so ``except ValueError`` still works.
"""


class LamError(Exception):
    """A failure the user can cause and fix; its message is one sentence."""
