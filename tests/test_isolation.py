"""The isolated re-run: what it runs, what its sandbox holds, and how a step that dies costs that step only."""

from __future__ import annotations

import io

import cloudpickle
import nbformat
import numpy as np
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell

from coursepkg.grading import isolation, sandbox
from coursepkg.grading.isolation import judge, probe_plan, runs, sandbox_modules, sandbox_view, student_program
from tests.grading_helpers import LABS, solution

MODULE = "coursepkg.grading.lab_2d_gan"
LIMITS = sandbox.Limits(deadline=240)
SALT = 7919


def _cell(source: str, **nbgrader) -> nbformat.NotebookNode:
    cell = new_code_cell(source)
    if nbgrader:
        cell.metadata["nbgrader"] = {"grade": False, "solution": False, "locked": False, **nbgrader}
    return cell


def _test_cell(name: str, grade_id: str) -> nbformat.NotebookNode:
    source = f"from coursepkg.grading import lab_2d_gan as grader\ngrader.check({name!r}, globals())"
    return _cell(source, grade_id=grade_id, grade=True, locked=True, points=2)


def _notebook(*middle: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    setup = _cell("import torch\nfrom torch import nn", grade_id="setup", locked=True)
    setup.metadata["tags"] = ["setup"]
    return [new_markdown_cell("# A lab"), setup, *middle]


MMD = "def mmd2(x, y, *, bandwidth=0.5):\n    return {}"


def test_the_plan_runs_setup_solution_and_added_cells_and_observes_at_each_test_cell():
    cells = _notebook(
        _cell("slow_demo()", grade_id="read_only_1", locked=True),  # the instructor's, read-only
        _cell("SCALE = 2.0"),  # the student added it: no nbgrader metadata
        _cell(MMD.format("SCALE"), grade_id="mmd2_solution", solution=True),
        _test_cell("mmd2", "test_mmd2"),
        _cell(MMD.format("0.0")),  # added after the test: too late for it
    )
    plan = probe_plan(cells)
    assert plan.setup == ["import torch\nfrom torch import nn"]
    assert plan.cells == [(3, "SCALE = 2.0"), (4, MMD.format("SCALE")), (6, MMD.format("0.0"))]
    assert plan.checks == [(5, (MODULE, "mmd2"))]
    assert student_program(cells) == [
        "import torch\nfrom torch import nn",
        "SCALE = 2.0",
        MMD.format("SCALE"),
        MMD.format("0.0"),
    ]


def test_a_check_sees_the_definitions_above_its_test_cell_only():
    cells = _notebook(
        _cell("SCALE = 2.0"),
        _cell(MMD.format("SCALE"), grade_id="mmd2_solution", solution=True),
        _test_cell("mmd2", "test_mmd2"),
        _cell(MMD.format("0.0")),
    )
    observed, notes = isolation.observe(cells, limits=LIMITS, salt=SALT)
    # The helper constant from the added cell reached mmd2 (it returned 2.0, not a NameError), and the
    # redefinition below the test cell did not replace it (0.0 would be right for mmd2(x, x) only).
    assert notes == []
    assert judge((MODULE, "mmd2"), observed[4, (MODULE, "mmd2")], SALT).failure.startswith(
        "mmd2(x, y, bandwidth=0.7) returned 2.000000; expected"
    )


def test_a_cell_or_a_check_that_kills_its_process_or_hangs_costs_that_step_only():
    """An added cell that exits, one that never ends and a check whose function segfaults: the others are graded."""
    solved = {
        c.metadata["nbgrader"]["grade_id"]: c.source for c in solution("lab_2d_gan").cells if "nbgrader" in c.metadata
    }
    crash = "import ctypes\ndef mmd2(x, y, *, bandwidth=0.5):\n    ctypes.string_at(0)"
    cells = _notebook(
        _cell(solved["gan_solution"], grade_id="gan_solution", solution=True),
        _cell("import os\nos._exit(3)"),
        _test_cell("gan", "test_gan"),
        _cell("while True:\n    pass"),
        _cell(crash, grade_id="mmd2_solution", solution=True),
        _test_cell("mmd2", "test_mmd2"),
        _test_cell("sample", "test_sample"),
    )
    timeouts = isolation.Timeouts(cell=3, probe=60, total=200)
    observed, notes = isolation.observe(cells, limits=LIMITS, salt=SALT, timeouts=timeouts)
    assert judge((MODULE, "gan"), observed[4, (MODULE, "gan")], SALT).failure is None
    assert judge((MODULE, "sample"), observed[8, (MODULE, "sample")], SALT).failure is None
    assert "killed by SIGSEGV" in judge((MODULE, "mmd2"), observed[7, (MODULE, "mmd2")], SALT).failure
    assert "cell 3 was skipped in the re-run: its process exited with status 3" in notes
    assert "cell 5 was skipped in the re-run: it ran for more than 3 s" in notes


def test_an_honest_answer_holding_numpy_numbers_is_read_back_and_graded():
    """nbgrader's old judge lost every point of a GAN that kept its latent size as an np.int64."""
    solved = solution("lab_2d_gan").cells
    gan = next(c.source for c in solved if c.metadata.get("nbgrader", {}).get("grade_id") == "gan_solution")
    odd = gan.replace("self.latent_dim = latent_dim", "self.latent_dim = np.int64(latent_dim)")
    assert odd != gan
    cells = _notebook(
        _cell("import numpy as np"), _cell(odd, grade_id="gan_solution", solution=True), _test_cell("gan", "test_gan")
    )
    observed, _ = isolation.observe(cells, limits=LIMITS, salt=SALT)
    assert judge((MODULE, "gan"), observed[4, (MODULE, "gan")], SALT).failure is None


def test_observations_are_turned_into_plain_data():
    from coursepkg.grading.probe import plain

    seen = plain({"n": np.int64(3), "x": np.float32(0.5), "a": np.arange(3), "t": (1, [torch.ones(2)]), "o": object()})
    assert seen["n"] == 3 and type(seen["n"]) is int and type(seen["x"]) is float
    assert torch.equal(seen["a"], torch.arange(3)) and isinstance(seen["t"], tuple)
    assert seen["o"].startswith("object <object object at")
    buffer = io.BytesIO()
    torch.save(seen, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["n"] == 3


@pytest.mark.parametrize("lab", LABS)
def test_the_sandbox_holds_no_answer_key_and_no_judge(lab):
    keys = LABS[lab][0].ANSWER_KEYS
    kept = sandbox_modules(keys)
    assert not kept & isolation.blocked_modules(keys)
    judges = {name for name in kept if name.startswith("coursepkg.grading")} - {
        *isolation.PROBE_GRADING,
        "coursepkg.grading.probes",
        *(f"coursepkg.grading.probes.{lab}" for lab in LABS),
    }
    assert judges == set()
    # What is kept imports only what is kept: nothing in the sandbox reaches for a missing module.
    graph = isolation.import_graph()
    assert {name: graph[name] - kept for name in kept if graph[name] - kept} == {}
    view = sandbox_view(keys).source
    files = {str(path.relative_to(view)) for path in view.rglob("*.py")}
    for name in isolation.blocked_modules(keys) | {f"coursepkg.grading.{lab}", "coursepkg.grading.checks"}:
        assert name.removeprefix("coursepkg.").replace(".", "/") + ".py" not in files, name


def test_the_notebooks_sandbox_holds_no_judge_nor_a_probe():
    kept = sandbox_modules(None)
    assert {name for name in kept if name.startswith("coursepkg.grading")} == set(isolation.KERNEL_GRADING)
    assert {"coursepkg.toy2d.gan", "coursepkg.theory.divergences", "coursepkg.mnist.pretrained"} <= kept


@pytest.mark.parametrize("lab", LABS)
def test_no_probe_is_handed_the_answer_it_checks(lab):
    """A probe's references are other exercises' answers: never the function its own check grades."""
    exercises = {
        name: {_REFERENCE_NAMES.get(need, need) for need in check.probe.needs}
        for name, check in LABS[lab][0].CHECKS.items()
    }
    for name, check in LABS[lab][0].CHECKS.items():
        handed = {key.partition(":")[2] for key in check.probe.uses}
        assert not handed & exercises[name], f"{lab}: {name} is handed {sorted(handed & exercises[name])}"


#: Exercises whose reference has another name.
_REFERENCE_NAMES = {"identity_sides": "minimax_identity"}


def test_runs_group_probes_by_their_references_and_carry_only_those():
    plan = probe_plan(solution("lab_2d_gan").cells)
    grouped = runs(plan)
    assert [sorted(step["probe"] for step in steps) for steps, _ in grouped] == [
        ["gan", "mmd2", "sample"],
        ["discriminator_step", "generator_step"],
        ["train_gan"],
    ]
    assert grouped[0][1] is None  # the probes that use no reference get none
    assert set(cloudpickle.loads(grouped[1][1])) == {"coursepkg.toy2d.gan:GAN"}
    assert set(cloudpickle.loads(grouped[2][1])) == {
        "coursepkg.toy2d.gan:GAN",
        "coursepkg.toy2d.gan:discriminator_step",
        "coursepkg.toy2d.gan:generator_step",
        "coursepkg.toy2d.mmd:mmd2",
    }


_REACH = """
import importlib, os, sys
out['gan'] = importlib.util.find_spec('coursepkg.toy2d.gan') is not None
out['judge'] = importlib.util.find_spec('coursepkg.grading.lab_2d_gan') is not None
out['probes'] = importlib.util.find_spec('coursepkg.grading.probes.lab_2d_gan') is not None
import coursepkg
root = coursepkg.__path__[0]
out['files'] = sorted(os.listdir(os.path.join(root, 'toy2d')))
"""


def test_in_the_sandbox_the_answer_keys_are_not_there_at_all():
    from tests.test_sandbox import _python, _sent

    keys = LABS["lab_2d_gan"][0].ANSWER_KEYS
    seen = _sent(_python(_REACH, mounts=[sandbox_view(keys)]))
    assert seen["gan"] is False and seen["judge"] is False and seen["probes"] is True
    assert "gan.py" not in seen["files"] and "mmd.py" not in seen["files"] and "data.py" in seen["files"]


def test_the_instructors_notebooks_keep_their_code_cells_read_only():
    """Only setup and solution cells of the instructor's notebook are re-run; the rest is locked."""
    for lab in LABS:
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
