"""The instructor's whole workflow on every lab, in a scratch course per lab.

nbgrader generate_assignment -> submissions (solution, blank, a correct alternative,
real mistakes, a cheat, a deleted test cell) -> ``python -m coursepkg grade`` (the
sandboxed batch, which writes the gradebook, ``autograded/`` and ``feedback/``) ->
manual grade -> nbgrader export. Every variant is also graded in-process by
``test_grading_labs``; the class of hostile submissions is ``test_grading_class``.
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

from coursepkg.grading import batch
from tests.conftest import ROOT
from tests.grading_helpers import LABS, solution, submitted
from tests.lab_2d_variants import Variant

pytestmark = pytest.mark.slow

#: The submissions graded end to end: a representative set of each lab's, since every variant is
#: also graded in-process by test_grading_labs. Each lab's set holds a correct one whose helpers sit
#: in cells the student inserted, a mistake that another exercise calls into, and a cheat.
#: (The Jensen-Shannon lab's whole class, hostile submissions included, is graded by test_grading_class.)
CORRECT_SUBMITTED: dict[str, str] = {
    "lab_2d_gan": "helpers_in_inserted_cells",
    "lab_mnist_gan": "helpers_in_added_cells",
    "lab_lsi": "added_threshold_rescale_and_measures_helpers",
}
WRONG_SUBMITTED: dict[str, tuple[str, ...]] = {
    "lab_2d_gan": ("no_detach", "wraps_the_reference", "tampers_with_the_checks"),
    "lab_mnist_gan": ("saturating_loss_called_through_an_alias", "wraps_the_reference"),
    "lab_lsi": ("lightness_tutorial_plus_one", "probability_log_used_by_evaluate_through_a_helper"),
}


def _by_lab(*rows: tuple) -> list:
    """Parameters whose first entry is a lab, each in that lab's pytest-xdist group.

    ``make test`` runs a worker per core; a lab's tests then share one worker and its
    graded course (the ``courses`` fixture), while the labs run side by side.
    """
    return [pytest.param(*row, marks=pytest.mark.xdist_group(f"nbgrader-{row[0]}")) for row in rows]


LABS_GRADED = _by_lab(*[(lab,) for lab in WRONG_SUBMITTED])
SUBMISSIONS = _by_lab(*[(lab, name) for lab, wrong in WRONG_SUBMITTED.items() for name in wrong])


def _nbgrader(course: Path, *args: str) -> str:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _submission(release: nbformat.NotebookNode, ours: nbformat.NotebookNode, variant: Variant | None):
    """The released notebook with every answer filled in: ours, except where the variant says."""
    answers = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in ours.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    if variant:
        answers.update(variant.cells)
    notebook = nbformat.from_dict(release)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answers[cell.metadata["nbgrader"]["grade_id"]]
    return submitted(notebook, Variant({}, added=variant.added)) if variant else notebook


def _submit(course: Path, lab: str, student: str, notebook: nbformat.NotebookNode) -> None:
    folder = course / "submitted" / student / lab
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{lab}.ipynb")


def _grade(lab: str, course: Path) -> Path:
    """generate_assignment, every submission, then the sandboxed batch, in ``course``."""
    variants = LABS[lab][1]
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions" / lab, course / "solutions" / lab)
    _nbgrader(course, "generate_assignment", lab, "--force")
    release = nbformat.read(course / "release" / lab / f"{lab}.ipynb", as_version=4)
    answers = solution(lab)
    _submit(course, lab, "solution", answers)
    _submit(course, lab, "blank", release)
    for name in WRONG_SUBMITTED[lab]:
        _submit(course, lab, f"wrong-{name}", _submission(release, answers, variants.WRONG[name]))
    # A correct alternative whose student also deleted a test cell: the grader puts it back and runs it.
    notebook = _submission(release, answers, variants.CORRECT[CORRECT_SUBMITTED[lab]])
    last_test = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"][-1]
    notebook.cells.remove(last_test)
    _submit(course, lab, "correct-without-a-test-cell", notebook)
    summary = batch.grade(course, lab, workers=1, progress=False)
    assert summary.failed == {}, summary.format()
    return course


@pytest.fixture(scope="module")
def courses(tmp_path_factory):
    """``courses(lab)``: the graded scratch course of a lab, built once."""
    built: dict[str, Path] = {}

    def get(lab: str) -> Path:
        if lab not in built:
            built[lab] = _grade(lab, tmp_path_factory.mktemp(lab))
        return built[lab]

    return get


def _scores(course: Path, lab: str, student: str) -> dict[str, float]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook(lab, lab, student)
        return {grade.name: grade.score for grade in notebook.grades if grade.auto_score is not None}


def _test_points(lab: str) -> dict[str, float]:
    return {
        c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"])
        for c in solution(lab).cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
    }


def _written_answer(lab: str) -> tuple[str, float]:
    (cell,) = [
        c for c in solution(lab).cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")
    ]
    return cell.metadata["nbgrader"]["grade_id"], float(cell.metadata["nbgrader"]["points"])


@pytest.mark.parametrize("lab", LABS_GRADED)
def test_solution_gets_full_marks_and_blank_gets_zero(courses, lab):
    full = _test_points(lab)
    assert _scores(courses(lab), lab, "solution") == full
    # An untouched written answer gets 0 too, without waiting for a human.
    answer, _ = _written_answer(lab)
    assert _scores(courses(lab), lab, "blank") == {cell: 0.0 for cell in [*full, answer]}


@pytest.mark.parametrize("lab", LABS_GRADED)
def test_a_correct_alternative_with_a_deleted_test_cell_gets_full_marks(courses, lab):
    assert _scores(courses(lab), lab, "correct-without-a-test-cell") == _test_points(lab)


@pytest.mark.parametrize("lab, name", SUBMISSIONS)
def test_each_mistake_loses_exactly_the_points_of_its_test(courses, lab, name):
    fails = LABS[lab][1].WRONG[name].fails
    expected = {cell: 0.0 if cell in fails else points for cell, points in _test_points(lab).items()}
    assert _scores(courses(lab), lab, f"wrong-{name}") == expected


@pytest.mark.parametrize(
    "lab, student, message",
    _by_lab(
        ("lab_2d_gan", "wrong-no_detach", "detach the fake points"),
        ("lab_2d_gan", "wrong-tampers_with_the_checks", "CheckFailed"),
        ("lab_mnist_gan", "wrong-saturating_loss_called_through_an_alias", "saturating"),
        ("lab_lsi", "wrong-lightness_tutorial_plus_one", "boldness + 1"),
    ),
)
def test_manual_grading_export_and_feedback(courses, lab, student, message):
    course = courses(lab)
    answer, points = _written_answer(lab)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade = gb.find_grade(answer, lab, lab, "solution")
        assert grade.needs_manual_grade
        grade.manual_score = points
        gb.db.commit()
    _nbgrader(course, "export", "--to", str(course / "grades.csv"))
    with open(course / "grades.csv") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    total = sum(_test_points(lab).values()) + points
    assert float(rows["solution"]["score"]) == float(rows["solution"]["max_score"]) == total
    assert float(rows["blank"]["score"]) == 0.0
    feedback = (course / "feedback" / student / lab / f"{lab}.html").read_text()
    assert message in feedback
    assert "### BEGIN HIDDEN TESTS" not in feedback
