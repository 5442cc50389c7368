"""The instructor's whole nbgrader workflow on the 2D lab, in a scratch course.

generate_assignment -> submissions (solution, blank, correct alternatives, real
mistakes, cheats) -> autograde -> manual grade -> export -> generate_feedback.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from tests.conftest import LAB_2D, ROOT
from tests.lab_2d_variants import CORRECT, WRONG, Variant

pytestmark = pytest.mark.slow

LAB = "lab_2d_gan"
WRONG_SUBMITTED = (
    "discriminator_ends_with_sigmoid",
    "uniform_latent_noise",
    "no_detach",
    "labels_swapped",
    "saturating_generator_loss",
    "one_optimizer_for_both",
    "mmd_unbiased",
    "wraps_the_reference",
    "tampers_with_the_checks",
    "patches_the_reference",
)


def _nbgrader(course: Path, *args: str) -> str:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _submission(release: nbformat.NotebookNode, solution: nbformat.NotebookNode, variant: Variant | None):
    """The released notebook with every answer filled in: ours, except where the variant says."""
    answers = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in solution.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    if variant:
        answers.update(variant.cells)
    notebook = nbformat.from_dict(release)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answers[grade_id]
    return notebook


def _submit(course: Path, student: str, notebook: nbformat.NotebookNode) -> None:
    folder = course / "submitted" / student / LAB
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{LAB}.ipynb")


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course directory after generate_assignment, submissions and autograde."""
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(LAB_2D.parent, course / "solutions" / LAB)
    _nbgrader(course, "generate_assignment", LAB, "--force")
    release = nbformat.read(course / "release" / LAB / f"{LAB}.ipynb", as_version=4)
    solution = nbformat.read(LAB_2D, as_version=4)

    _submit(course, "solution", solution)
    _submit(course, "blank", release)
    for name, variant in CORRECT.items():
        _submit(course, f"correct-{name}", _submission(release, solution, variant))
    for name in WRONG_SUBMITTED:
        _submit(course, f"wrong-{name}", _submission(release, solution, WRONG[name]))
    # A student who deleted a test cell: nbgrader puts it back and runs it.
    notebook = _submission(release, solution, None)
    notebook.cells = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_mmd2"]
    _submit(course, "deleted-a-test-cell", notebook)

    _nbgrader(course, "autograde", LAB, "--create", "--force")
    return course


def _scores(course: Path, student: str) -> dict[str, float]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook(LAB, LAB, student)
        return {grade.name: grade.score for grade in notebook.grades if grade.auto_score is not None}


def _max_points(solution: nbformat.NotebookNode) -> dict[str, float]:
    return {
        c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"])
        for c in solution.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
    }


def test_solution_gets_full_marks_and_blank_gets_zero(course, lab_2d_notebook):
    full = _max_points(lab_2d_notebook)
    assert _scores(course, "solution") == full
    # An untouched written answer gets 0 too, without waiting for a human.
    assert _scores(course, "blank") == {cell: 0.0 for cell in [*full, "advantages_drawbacks"]}


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_alternatives_get_full_marks(course, lab_2d_notebook, name):
    assert _scores(course, f"correct-{name}") == _max_points(lab_2d_notebook)


def test_a_deleted_test_cell_is_restored_and_graded(course, lab_2d_notebook):
    assert _scores(course, "deleted-a-test-cell") == _max_points(lab_2d_notebook)


@pytest.mark.parametrize("name", WRONG_SUBMITTED)
def test_each_mistake_loses_exactly_the_points_of_its_test(course, lab_2d_notebook, name):
    full = _max_points(lab_2d_notebook)
    expected = {cell: 0.0 if cell in WRONG[name].fails else points for cell, points in full.items()}
    assert _scores(course, f"wrong-{name}") == expected


def test_manual_grading_export_and_feedback(course, lab_2d_notebook):
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        answer = gb.find_grade("advantages_drawbacks", LAB, LAB, "solution")
        assert answer.needs_manual_grade
        answer.manual_score = 3.0
        gb.db.commit()
    _nbgrader(course, "export", "--to", str(course / "grades.csv"))
    with open(course / "grades.csv") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    total = sum(_max_points(lab_2d_notebook).values()) + 3.0
    assert float(rows["solution"]["score"]) == float(rows["solution"]["max_score"]) == total
    assert float(rows["blank"]["score"]) == 0.0
    assert float(rows["wrong-no_detach"]["score"]) == total - 3.0 - 3.0  # no manual grade yet, minus the step

    _nbgrader(course, "generate_feedback", LAB, "--force")
    feedback = (course / "feedback" / "wrong-no_detach" / LAB / f"{LAB}.html").read_text()
    assert "detach the fake points" in feedback
    cheat = (course / "feedback" / "wrong-tampers_with_the_checks" / LAB / f"{LAB}.html").read_text()
    assert "IsolatedCheckFailed" in cheat and "labels are swapped" in cheat
