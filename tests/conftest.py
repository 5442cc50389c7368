"""Shared fixtures: the repository root and the 2D lab's solution code."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import nbformat
import pytest
import torch

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
LAB_2D = ROOT / "solutions" / "lab_2d_gan" / "lab_2d_gan.ipynb"


@pytest.fixture(autouse=True)
def _close_figures():
    """Keep figures from piling up across tests."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    # The CI machine has 2 cores; more threads only slow small tensors down.
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def lab_2d_notebook() -> nbformat.NotebookNode:
    return nbformat.read(LAB_2D, as_version=4)
