"""What the isolated re-run runs: the student's cells, in order, observed where each test cell stands."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from coursepkg.grading.isolation import judge, probe_in_subprocess, probe_plan, student_program
from tests.grading_helpers import LABS, solution

MODULE = "coursepkg.grading.lab_2d_gan"


def _cell(source: str, **nbgrader) -> nbformat.NotebookNode:
    cell = new_code_cell(source)
    if nbgrader:
        cell.metadata["nbgrader"] = {"grade": False, "solution": False, "locked": False, **nbgrader}
    return cell


def _notebook() -> list[nbformat.NotebookNode]:
    setup = _cell("import torch", grade_id="setup", locked=True)
    setup.metadata["tags"] = ["setup"]
    return [
        new_markdown_cell("# A lab"),
        setup,
        _cell("slow_demo()", grade_id="read_only_1", locked=True),  # the instructor's, read-only
        _cell("SCALE = 2.0"),  # the student added it: no nbgrader metadata
        _cell("def mmd2(x, y, *, bandwidth=0.5):\n    return SCALE", grade_id="mmd2_solution", solution=True),
        _cell(
            "from coursepkg.grading import lab_2d_gan as grader\ngrader.check('mmd2', globals())",
            grade_id="test_mmd2",
            grade=True,
            locked=True,
            points=2,
        ),
        _cell("def mmd2(x, y, *, bandwidth=0.5):\n    return 0.0"),  # added after the test: too late for it
    ]


def test_the_plan_runs_setup_solution_and_added_cells_and_observes_at_each_test_cell():
    cells = _notebook()
    assert student_program(cells) == [
        "import torch",
        "SCALE = 2.0",
        "def mmd2(x, y, *, bandwidth=0.5):\n    return SCALE",
        "def mmd2(x, y, *, bandwidth=0.5):\n    return 0.0",
    ]
    assert [step.get("observe") for step in probe_plan(cells)] == [None, None, None, [[MODULE, "mmd2"]], None]
    assert [step["at"] for step in probe_plan(cells)] == [1, 3, 4, 5, 6]


def test_a_check_sees_the_definitions_above_its_test_cell_only():
    plan = probe_plan(_notebook())
    observed = probe_in_subprocess(plan, cwd=".", timeout=120)
    # The helper constant from the added cell reached mmd2 (it returned 2.0, not a NameError), and the
    # redefinition below the test cell did not replace it (0.0 would be right for mmd2(x, x) only).
    message = judge((MODULE, "mmd2"), observed[5, (MODULE, "mmd2")])
    assert message.startswith("mmd2(x, y, bandwidth=0.7) returned 2.000000; expected")


@pytest.mark.parametrize("lab", LABS)
def test_every_instructor_code_cell_is_read_only_so_the_re_run_skips_it(lab):
    """Only setup and solution cells of the instructor's notebook are re-run; the rest is locked."""
    cells = solution(lab).cells
    rerun = set(student_program(cells))
    for cell in cells:
        if cell.cell_type != "code":
            continue
        nbgrader = cell.metadata.get("nbgrader", {})
        assert nbgrader, f"code cell without nbgrader metadata in {lab}: mark it read-only\n{cell.source[:80]}"
        expected = nbgrader.get("solution", False) or "setup" in cell.metadata.get("tags", [])
        assert (cell.source in rerun) == expected, cell.source[:80]
        assert expected or nbgrader["locked"]
