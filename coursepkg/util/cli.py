"""Command-line argument types shared by the course's commands (benchmarks, grading).

Each is an ``argparse`` ``type=``: it turns the text on the command line into a
value or raises :class:`argparse.ArgumentTypeError`, which argparse prints with
the option's name, so every command spells its errors the same way.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence

__all__ = ["names", "positive_int", "positive_float", "size"]


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


def positive_float(text: str) -> float:
    """``text`` as a number above 0 (seconds, say); an error names what was given otherwise."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*", re.IGNORECASE)


def size(text: str) -> int:
    """A number of bytes written as ``4GiB``, ``512MB``, ``64m`` or ``1048576`` (powers of 1024).

    Raises:
        argparse.ArgumentTypeError: naming what was given, for anything else.
    """
    match = _SIZE.fullmatch(text)
    value = float(match[1]) * 1024 ** " kmg".index(match[2].lower() or " ") if match else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a size such as 4GiB, 512MiB or 1048576 (bytes), got {text!r}")
    return int(value)
