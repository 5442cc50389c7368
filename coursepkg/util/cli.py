"""Command-line argument types shared by the course's benchmark commands.

Each is an ``argparse`` ``type=``: it turns the text on the command line into a
value or raises :class:`argparse.ArgumentTypeError`, which argparse prints with
the option's name, so every command spells its errors the same way.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

__all__ = ["names", "positive_int"]


def names(kind: str, allowed: Sequence[str]) -> Callable[[str], list[str]]:
    """A parser of comma-separated names, each one of ``allowed``.

    Args:
        kind: what the names are, for the error message (``"variant"``, ``"configuration"``).
        allowed: the names that may be given.

    Returns:
        A function from ``"a,b"`` to ``["a", "b"]`` that rejects unknown names and an empty list.
    """

    def parse(text: str) -> list[str]:
        chosen = [name for name in text.split(",") if name]
        unknown = [name for name in chosen if name not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"unknown {kind} {unknown or text!r}; choose from {','.join(allowed)}")
        return chosen

    return parse


def positive_int(text: str) -> int:
    """``text`` as an integer of at least 1; an error names what was given otherwise."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)
