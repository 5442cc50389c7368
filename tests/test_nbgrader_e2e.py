"""The instructor's whole nbgrader workflow on every lab, in a scratch course per lab.

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

from tests.conftest import ROOT
from tests.grading_helpers import LABS, solution, submitted
from tests.lab_2d_variants import Variant

pytestmark = pytest.mark.slow

#: The submissions autograded end to end: a representative set of each lab's, since every
#: variant is also graded in-process by test_grading_labs. Each lab's set holds a correct one whose
#: helpers sit in cells the student inserted, and mistakes that another exercise calls into.
CORRECT_SUBMITTED: dict[str, tuple[str, ...]] = {
    "lab_2d_gan": ("relu_gan_sgd_loop_broadcast_mmd", "helpers_in_inserted_cells"),
    "lab_js_divergence": ("numpy_loops_and_entropy_form", "xlogy_helper_in_an_added_cell"),
    "lab_mnist_gan": ("functional_layers_logsigmoid_two_forwards", "helpers_in_added_cells"),
    "lab_lsi": ("numpy_measures", "added_threshold_rescale_and_measures_helpers"),
}
WRONG_SUBMITTED: dict[str, tuple[str, ...]] = {
    "lab_2d_gan": (
        "discriminator_ends_with_sigmoid",
        "no_detach",
        "labels_swapped",
        "saturating_generator_loss",
        "g_step_leaves_the_discriminator_frozen",
        "one_optimizer_for_both",
        "loop_makes_new_optimizers_every_step",
        "wraps_the_reference",
        "tampers_with_the_checks",
        "patches_the_reference",
    ),
    "lab_js_divergence": (
        "d_star_inverted",
        "kl_wrong_direction",
        "kl_wrong_direction_js_via_helper",
        "kl_log_base_2",
        "js_missing_one_half",
    ),
    "lab_mnist_gan": (
        "generator_relu",
        "discriminator_with_batch_norm",
        "saturating_loss_called_through_an_alias",
        "step_without_detach",
        "wraps_the_reference",
    ),
    "lab_lsi": (
        "lightness_tutorial_plus_one",
        "evaluate_without_rescaling",
        "probability_log_used_by_evaluate_through_a_helper",
        "illuminate_tell_swapped",
    ),
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
    """generate_assignment, every submission, then autograde, in ``course``."""
    variants = LABS[lab][1]
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions" / lab, course / "solutions" / lab)
    _nbgrader(course, "generate_assignment", lab, "--force")
    release = nbformat.read(course / "release" / lab / f"{lab}.ipynb", as_version=4)
    answers = solution(lab)
    _submit(course, lab, "solution", answers)
    _submit(course, lab, "blank", release)
    for name in CORRECT_SUBMITTED[lab]:
        _submit(course, lab, f"correct-{name}", _submission(release, answers, variants.CORRECT[name]))
    for name in WRONG_SUBMITTED[lab]:
        _submit(course, lab, f"wrong-{name}", _submission(release, answers, variants.WRONG[name]))
    # A student who deleted a test cell: nbgrader puts it back and runs it.
    notebook = _submission(release, answers, None)
    last_test = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"][-1]
    notebook.cells.remove(last_test)
    _submit(course, lab, "deleted-a-test-cell", notebook)
    _nbgrader(course, "autograde", lab, "--create", "--force")
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
def test_correct_alternatives_and_a_restored_test_cell_get_full_marks(courses, lab):
    for student in [f"correct-{name}" for name in CORRECT_SUBMITTED[lab]] + ["deleted-a-test-cell"]:
        assert _scores(courses(lab), lab, student) == _test_points(lab), student


@pytest.mark.parametrize("lab, name", SUBMISSIONS)
def test_each_mistake_loses_exactly_the_points_of_its_test(courses, lab, name):
    fails = LABS[lab][1].WRONG[name].fails
    expected = {cell: 0.0 if cell in fails else points for cell, points in _test_points(lab).items()}
    assert _scores(courses(lab), lab, f"wrong-{name}") == expected


@pytest.mark.parametrize(
    "lab, student, message",
    _by_lab(
        ("lab_2d_gan", "wrong-no_detach", "detach the fake points"),
        ("lab_2d_gan", "wrong-tampers_with_the_checks", "IsolatedCheckFailed"),
        ("lab_js_divergence", "wrong-d_star_inverted", "the ratio is inverted"),
        ("lab_mnist_gan", "wrong-step_without_detach", "x_fake.detach()"),
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
    _nbgrader(course, "generate_feedback", lab, "--force")
    assert message in (course / "feedback" / student / lab / f"{lab}.html").read_text()
