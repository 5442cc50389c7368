"""Run a lab's checks on variants of its solution, in-process and as a kernel would."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from types import ModuleType

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

from coursepkg.grading import isolation, lab_2d_gan, lab_js_divergence, lab_lsi, lab_mnist_gan, sandbox
from coursepkg.grading.checks import CheckFailed
from coursepkg.grading.isolation import judge, student_program
from tests import lab_2d_variants, lab_js_variants, lab_lsi_variants, lab_mnist_variants
from tests.conftest import ROOT
from tests.lab_2d_variants import Variant

#: Every lab: its checks module and its right and wrong submissions
#: (``CORRECT``, ``WRONG``, ``TEST_CELL_CHECKS``).
LABS: dict[str, tuple[ModuleType, ModuleType]] = {
    "lab_2d_gan": (lab_2d_gan, lab_2d_variants),
    "lab_js_divergence": (lab_js_divergence, lab_js_variants),
    "lab_mnist_gan": (lab_mnist_gan, lab_mnist_variants),
    "lab_lsi": (lab_lsi, lab_lsi_variants),
}


def solution(lab: str) -> nbformat.NotebookNode:
    """The instructor notebook of a lab."""
    return nbformat.read(ROOT / "solutions" / lab / f"{lab}.ipynb", as_version=4)


def submitted(notebook: nbformat.NotebookNode, variant: Variant | None = None) -> nbformat.NotebookNode:
    """A copy of ``notebook`` as the variant's student hands it in: answers replaced, cells added."""
    submission = nbformat.from_dict(notebook)
    if variant is None:
        return submission
    cells = []
    for cell in submission.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in variant.added:
            cells.append(nbformat.v4.new_code_cell(variant.added[grade_id]))
        if grade_id in variant.cells:
            cell.source = variant.cells[grade_id]
        cells.append(cell)
    unknown = (variant.cells.keys() | variant.added.keys()) - {
        c.metadata.get("nbgrader", {}).get("grade_id") for c in cells
    }
    assert not unknown, f"the variant names cells the notebook does not have: {sorted(unknown)}"
    submission.cells = cells
    return submission


def program(notebook: nbformat.NotebookNode, variant: Variant | None = None) -> list[str]:
    """The probe's program for the solution as the variant's student hands it in."""
    return student_program(submitted(notebook, variant).cells)


def run_program(sources: list[str]) -> tuple[dict[str, object], list[str]]:
    """Run cell sources in one fresh namespace, here, as the notebook would; return it and the cells' errors."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    errors = []
    for index, source in enumerate(sources):
        try:
            exec(compile(TransformerManager().transform_cell(source), f"<cell {index}>", "exec"), namespace)
        except BaseException as error:  # noqa: BLE001 - a cheat's cell may even call exit()
            errors.append(f"cell {index}: {type(error).__name__}: {error}")
    return namespace, errors


def failing_in_isolation(notebook: nbformat.NotebookNode, variant: Variant | None = None) -> dict[str, list[str]]:
    """The autograder's isolated re-run of a submission, in its sandbox: each failing test cell's messages."""
    cells = submitted(notebook, variant).cells
    salt = 1 + secrets.randbelow(2**31)
    observed, _ = isolation.observe(cells, limits=sandbox.Limits(), salt=salt)
    failing: dict[str, list[str]] = {}
    for (at, check), looks in observed.items():
        verdict = judge(check, looks, salt)
        if verdict.failure:
            failing.setdefault(cells[at].metadata["nbgrader"]["grade_id"], []).append(verdict.failure)
    return failing


def failing_cells(module: ModuleType, test_cells: dict[str, tuple[str, ...]], namespace) -> dict[str, str]:
    """Run every check in-process; map each failing test cell to its first message."""
    failing = {}
    for cell, names in test_cells.items():
        for name in names:
            check = module.CHECKS[name]
            try:
                check.evaluate(check.observe(namespace))
            except CheckFailed as failure:
                failing.setdefault(cell, str(failure))
    return failing


_KERNEL_SCRIPT = """
import contextlib, io, json, sys
from tests.grading_helpers import run_program
request = json.load(sys.stdin)
namespace, _ = run_program(request["program"])
failing = []
for grade_id, source in request["tests"].items():
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(source, namespace)
    except Exception:
        failing.append(grade_id)
print(json.dumps(failing))
"""


def failing_in_a_kernel(program_sources: list[str], notebook: nbformat.NotebookNode) -> list[str]:
    """Run the program, then the notebook's test cells, in one separate process.

    This is what the student's kernel does. It runs elsewhere because cheats
    patch torch and coursepkg, which must not leak into the test process.
    """
    tests = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in notebook.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
    }
    result = subprocess.run(
        [sys.executable, "-c", _KERNEL_SCRIPT],
        input=json.dumps({"program": program_sources, "tests": tests}),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])
