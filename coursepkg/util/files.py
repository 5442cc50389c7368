"""Writing files so that a crash never leaves half of one behind.

Every file the course writes for later (checkpoints, shipped weights, their
manifest, benchmark results) is first written beside its destination as
``<name>.partial`` and then renamed over it: a rename within a folder is atomic,
so readers see the old file or the new one, never a mixture.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["write_atomic", "write_json"]


def write_atomic(path: Path, data: bytes | Callable[[Path], None]) -> None:
    """Replace ``path`` with new contents in one step, creating its folder if needed.

    Args:
        path: the destination.
        data: the bytes to write, or a function that writes the file at the path
            it is given (e.g. ``lambda p: torch.save(state, p)``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    if isinstance(data, bytes):
        partial.write_bytes(data)
    else:
        data(partial)
    partial.replace(path)


def write_json(path: Path, value: Any, *, indent: int = 1) -> None:
    """Write ``value`` as indented JSON with a final newline, atomically."""
    write_atomic(path, (json.dumps(value, indent=indent) + "\n").encode())
