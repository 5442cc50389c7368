"""Shared fixtures: the repository root and the 2D lab's solution code."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import matplotlib
import nbformat
import pytest
import torch
from hypothesis import settings

from coursepkg.util.runtime import use_available_cores

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
def _threads_per_core():
    # One thread per core, at most $OMP_NUM_THREADS: `make test` runs a worker per core, each on one thread.
    use_available_cores()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep each test module on one pytest-xdist worker (``make test`` runs ``--dist loadgroup``).

    Module-scoped fixtures (the built book, the trained models) are then built once.
    Tests that name their own ``xdist_group`` (the nbgrader runs, one group per lab) keep it.
    """
    for item in items:
        if not any(item.iter_markers("xdist_group")):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


@pytest.fixture(scope="session", autouse=True)
def _xdist_groups_applied(request):
    # pytest-xdist writes a test's group into its node id; a pytest release that stops honouring that
    # (9.2 with xdist 3.8) would grade every lab once per worker: twice the work, silently.
    if getattr(request.config.option, "loadgroup", False):
        assert all("@" in item.nodeid for item in request.session.items), (
            "pytest-xdist did not apply --dist loadgroup; install the pytest and pytest-xdist of requirements.txt"
        )


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


@pytest.fixture(scope="session")
def secrets(tmp_path_factory, worker_id) -> frozenset[str]:
    """:func:`tests.leaks.secret_lines`, found once per run and shared by pytest-xdist's workers.

    Finding them runs ``nbgrader generate_assignment`` on every lab (about 25 s); the first
    worker to ask writes them to the run's folder, above each worker's, and the others read them.
    """
    from tests.leaks import secret_lines  # (tests.leaks imports this module's ROOT)

    if worker_id == "master":  # no workers: the folder above is shared with other runs
        return secret_lines()
    run = tmp_path_factory.getbasetemp().parent
    with open(run / "secret_lines.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = run / "secret_lines.json"
        if not path.exists():
            path.write_text(json.dumps(sorted(secret_lines())))
        return frozenset(json.loads(path.read_text()))
