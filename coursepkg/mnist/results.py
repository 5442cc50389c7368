"""The MNIST benchmark's rows as a table: printed by ``python -m coursepkg benchmark mnist``, shown by the MNIST lab.

A module of its own, holding no answer key, so that the lab's graded notebook may import it
(:mod:`coursepkg.mnist.benchmark` trains, with the answer key's training step).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["table_formats", "table_frame"]


#: Column headers of the table (the command's text and the MNIST lab's), with their number formats.
_COLUMNS = {
    "generator": ("generator", None),
    "cpu_budget_s": ("budget (CPU s)", "{:.0f}"),
    "epochs": ("epochs", "{:.1f}"),
    "images_per_cpu_second": ("images/CPU s", "{:.0f}"),
    "digits": ("digits", "{:.0f}"),
    "class_kl": ("KL(classes‖uniform)", "{:.3f}"),
    "frechet": ("Fréchet", "{:.1f}"),
    "precision": ("precision", "{:.3f}"),
    "recall": ("recall", "{:.3f}"),
    "density": ("density", "{:.3f}"),
    "coverage": ("coverage", "{:.3f}"),
}


def table_frame(results: dict) -> pd.DataFrame:
    """The rows of :func:`coursepkg.mnist.benchmark.run_benchmark` with the table's headers (blanks are NaN)."""
    frame = pd.DataFrame(results["rows"])[list(_COLUMNS)]
    return frame.rename(columns={key: header for key, (header, _) in _COLUMNS.items()})


def table_formats() -> dict[str, str]:
    """Number formats of :func:`table_frame`'s columns, for ``DataFrame.style.format``."""
    return {header: number for header, number in _COLUMNS.values() if number is not None}
