"""Shared fixtures: the repository root and the 2D lab's solution code."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import nbformat
import pytest
import torch
from hypothesis import settings

matplotlib.use("Agg")
# Property tests draw the same examples on every run.
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")

ROOT = Path(__file__).resolve().parents[1]
LAB_2D = ROOT / "solutions" / "lab_2d_gan" / "lab_2d_gan.ipynb"
LAB_JS = ROOT / "solutions" / "lab_js_divergence" / "lab_js_divergence.ipynb"


@pytest.fixture(autouse=True)
def _isolate_global_state():
    """Close figures, and undo a notebook's torch.set_default_dtype, after each test."""
    dtype = torch.get_default_dtype()
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
    torch.set_default_dtype(dtype)


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    # The CI machine has 2 cores; more threads only slow small tensors down.
    torch.set_num_threads(2)


@pytest.fixture
def one_thread():
    """Run a test of tiny networks on one torch thread (two only add synchronisation)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def lab_2d_notebook() -> nbformat.NotebookNode:
    return nbformat.read(LAB_2D, as_version=4)


@pytest.fixture(scope="session")
def lab_js_notebook() -> nbformat.NotebookNode:
    return nbformat.read(LAB_JS, as_version=4)
