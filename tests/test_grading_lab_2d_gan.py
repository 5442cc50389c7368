"""The 2D lab's checks: correct submissions pass, real mistakes fail with a useful message."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from coursepkg.grading import lab_2d_gan
from coursepkg.grading.checks import CheckFailed, assert_standard_normal
from coursepkg.grading.isolation import (
    judge,
    probe_in_subprocess,
    requested_checks,
    student_program,
)
from coursepkg.grading.probe import _run_program
from tests.conftest import ROOT
from tests.lab_2d_variants import CORRECT, TEST_CELL_CHECKS, WRONG, Variant

MODULE = "coursepkg.grading.lab_2d_gan"


def _program(notebook, variant: Variant | None = None) -> list[str]:
    """The probe's program for the solution with some solution cells replaced."""
    cells = [dict(c) for c in notebook.cells]
    for cell in cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if variant and grade_id in variant.cells:
            cell["source"] = variant.cells[grade_id]
    return student_program(cells)


def _failing_cells(namespace) -> dict[str, str]:
    """Run every check in-process; map each failing test cell to its first message."""
    failing = {}
    for cell, names in TEST_CELL_CHECKS.items():
        for name in names:
            check = lab_2d_gan.CHECKS[name]
            try:
                check.evaluate(check.observe(namespace))
            except CheckFailed as failure:
                failing.setdefault(cell, str(failure))
    return failing


def test_test_cells_declare_the_checks_they_run(lab_2d_notebook):
    found = {}
    for cell in lab_2d_notebook.cells:
        nbgrader = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and nbgrader.get("grade"):
            found[nbgrader["grade_id"]] = tuple(name for _, name in requested_checks(cell.source))
    assert found == TEST_CELL_CHECKS
    assert set(lab_2d_gan.CHECKS) == {name for names in found.values() for name in names}


def test_requested_checks_reads_aliases_and_ignores_other_calls():
    source = (
        "import coursepkg.grading.lab_2d_gan as g\n"
        "from coursepkg.grading import lab_2d_gan\n"
        "g.check('b', globals())\n"
        "lab_2d_gan.check('a', globals())\n"
        "other.check('c', globals())\n"
    )
    assert requested_checks(source) == [(MODULE, "b"), (MODULE, "a")]


def test_the_solution_passes_every_check(lab_2d_notebook):
    namespace, errors = _run_program(_program(lab_2d_notebook))
    assert errors == []
    assert _failing_cells(namespace) == {}


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_submissions_written_differently_pass(lab_2d_notebook, name):
    namespace, errors = _run_program(_program(lab_2d_notebook, CORRECT[name]))
    assert errors == []
    assert _failing_cells(namespace) == {}


@pytest.mark.parametrize("name", sorted(n for n, v in WRONG.items() if not v.kernel_passes))
def test_each_mistake_fails_its_test_cell_with_a_specific_message(lab_2d_notebook, name):
    variant = WRONG[name]
    namespace, errors = _run_program(_program(lab_2d_notebook, variant))
    assert errors == []
    failing = _failing_cells(namespace)
    assert set(failing) == set(variant.fails)
    (message,) = failing.values()
    assert variant.message in message


def test_blank_submission_fails_every_check_with_a_hint(lab_2d_notebook):
    blank = {cell: "" for cell in ("gan_solution", "discriminator_step_solution", "generator_step_solution",
                                   "train_gan_solution", "mmd2_solution")}
    namespace, _ = _run_program(_program(lab_2d_notebook, Variant(blank)))
    failing = _failing_cells(namespace)
    assert set(failing) == set(TEST_CELL_CHECKS)
    assert all("is not defined" in message for message in failing.values())


def test_check_prints_a_verdict_and_raises_on_failure(lab_2d_notebook, capsys):
    namespace, _ = _run_program(_program(lab_2d_notebook))
    lab_2d_gan.check("mmd2", namespace)
    assert "✔ mmd2" in capsys.readouterr().out
    namespace["mmd2"] = lambda x, y, *, bandwidth=0.5: 0.0
    with pytest.raises(CheckFailed, match=r"mmd2\(x, y, bandwidth=0.7\) returned 0.000000; expected"):
        lab_2d_gan.check("mmd2", namespace)
    with pytest.raises(KeyError, match="No check named"):
        lab_2d_gan.check("nope", namespace)


def test_student_stderr_and_warnings_stay_off_the_test_cell(lab_2d_notebook, capsys):
    namespace, _ = _run_program(_program(lab_2d_notebook))
    original = namespace["mmd2"]

    def noisy_mmd2(x, y, *, bandwidth=0.5):
        import sys
        import warnings

        print("progress", file=sys.stderr)
        warnings.warn("harmless", stacklevel=2)
        return original(x, y, bandwidth=bandwidth)

    namespace["mmd2"] = noisy_mmd2
    lab_2d_gan.check("mmd2", namespace)
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "note: your code warned: UserWarning: harmless" in captured.out


_KERNEL_SCRIPT = """
import contextlib, io, json, sys
from coursepkg.grading.probe import _run_program
request = json.load(sys.stdin)
namespace, _ = _run_program(request["program"])
failing = []
for grade_id, source in request["tests"].items():
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(source, namespace)
    except Exception:
        failing.append(grade_id)
print(json.dumps(failing))
"""


def _failing_in_a_kernel(program: list[str], notebook) -> list[str]:
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
        input=json.dumps({"program": program, "tests": tests}),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", sorted(n for n, v in WRONG.items() if v.kernel_passes))
def test_cheats_pass_in_their_own_kernel_but_fail_in_isolation(lab_2d_notebook, name):
    variant = WRONG[name]
    program = _program(lab_2d_notebook, variant)
    assert _failing_in_a_kernel(program, lab_2d_notebook) == []  # the in-kernel checks are fooled...
    checks = [(MODULE, n) for names in TEST_CELL_CHECKS.values() for n in names]
    observed = probe_in_subprocess(program, checks, cwd=".", timeout=120)
    messages = {
        cell: [m for n in names if (m := judge((MODULE, n), observed[(MODULE, n)]))]
        for cell, names in TEST_CELL_CHECKS.items()
    }
    failing = {cell for cell, found in messages.items() if found}
    assert failing == set(variant.fails)  # ...the isolated re-run is not
    (cell,) = failing
    assert variant.message in messages[cell][0]


def test_isolated_probe_reports_a_crash_and_a_timeout(lab_2d_notebook):
    checks = [(MODULE, "mmd2")]
    crashed = probe_in_subprocess(["import os\nos._exit(3)"], checks, cwd=".", timeout=60)
    assert "stopped early" in judge(checks[0], crashed[checks[0]])
    hung = probe_in_subprocess(["while True:\n    pass"], checks, cwd=".", timeout=5)
    assert "took over 5 s" in judge(checks[0], hung[checks[0]])


def test_standard_normal_check_rejects_uniform_and_scaled_noise():
    generator = torch.Generator().manual_seed(0)
    assert_standard_normal(torch.randn(2000, generator=generator), "z")
    for bad in (torch.rand(2000, generator=generator), 2 * torch.randn(2000, generator=generator)):
        with pytest.raises(CheckFailed, match="standard normal"):
            assert_standard_normal(bad, "z")
