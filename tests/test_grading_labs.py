"""Every lab's checks: the solution and correct variants pass, each real mistake fails its exercise only."""

from __future__ import annotations

import pytest

from coursepkg.grading.isolation import requested_checks
from coursepkg.grading.probe import _run_program
from tests.grading_helpers import LABS, failing_cells, program, solution
from tests.lab_2d_variants import Variant


def _failing(lab: str, namespace) -> dict[str, str]:
    module, variants = LABS[lab]
    return failing_cells(module, variants.TEST_CELL_CHECKS, namespace)


@pytest.mark.parametrize("lab", LABS)
def test_test_cells_declare_the_checks_they_run(lab):
    module, variants = LABS[lab]
    found = {
        cell.metadata["nbgrader"]["grade_id"]: tuple(name for _, name in requested_checks(cell.source))
        for cell in solution(lab).cells
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")
    }
    assert found == variants.TEST_CELL_CHECKS
    assert set(module.CHECKS) == {name for names in found.values() for name in names}


@pytest.mark.parametrize("lab", LABS)
def test_the_solution_passes_every_check(lab):
    namespace, errors = _run_program(program(solution(lab)))
    assert errors == []
    assert _failing(lab, namespace) == {}


@pytest.mark.parametrize("lab, name", [(lab, name) for lab, (_, v) in LABS.items() for name in v.CORRECT])
def test_correct_submissions_written_differently_pass(lab, name):
    namespace, errors = _run_program(program(solution(lab), LABS[lab][1].CORRECT[name]))
    assert errors == []
    assert _failing(lab, namespace) == {}


@pytest.mark.parametrize(
    "lab, name",
    [(lab, name) for lab, (_, v) in LABS.items() for name, variant in v.WRONG.items() if not variant.kernel_passes],
)
def test_each_mistake_fails_its_exercise_only_with_a_specific_message(lab, name):
    variant = LABS[lab][1].WRONG[name]
    namespace, errors = _run_program(program(solution(lab), variant))
    assert errors == []
    failing = _failing(lab, namespace)
    assert set(failing) == set(variant.fails)
    assert all(variant.message in message for message in failing.values()), failing


@pytest.mark.parametrize("lab", LABS)
def test_a_blank_submission_fails_every_check_with_a_hint(lab):
    answers = [
        c.metadata["nbgrader"]["grade_id"]
        for c in solution(lab).cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")
    ]
    namespace, _ = _run_program(program(solution(lab), Variant({cell: "" for cell in answers})))
    failing = _failing(lab, namespace)
    assert set(failing) == set(LABS[lab][1].TEST_CELL_CHECKS)
    assert all("is not defined" in message for message in failing.values())
