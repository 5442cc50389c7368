"""The isolated re-run blocks exactly what it must: no reference function is reachable from a student's code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from coursepkg.grading.isolation import SETUP_TAG, blocked_modules, import_graph
from tests.conftest import ROOT
from tests.grading_helpers import LABS, solution

# Run in a fresh process, as the probe does: import the lab's checks, block its modules, run the
# notebook's setup cells, then import every module that is left and look at what each one holds.
_REACHABLE = """
import importlib, json, pkgutil, sys, types
import coursepkg
from coursepkg.grading.isolation import blocked_modules
from coursepkg.grading.probe import _block, _run_program

request = json.load(sys.stdin)
lab = importlib.import_module("coursepkg.grading." + request["lab"])
keys = set(lab.ANSWER_KEYS)
blocked = blocked_modules(keys)
for name in blocked:
    _block(name)
namespace, errors = _run_program(request["setup"], blocked)
problems = [f"setup cell failed: {error}" for error in errors]
for info in pkgutil.walk_packages(coursepkg.__path__, "coursepkg."):
    if info.name in blocked or info.name.startswith("coursepkg.grading"):
        continue
    try:
        importlib.import_module(info.name)
    except ImportError as error:
        problems.append(f"{info.name} is not blocked but cannot be imported: {error}")


def leaks(where, values):
    for value in values:
        if isinstance(value, types.ModuleType) and value.__name__ in keys:
            yield f"{where} holds the answer key {value.__name__}"
        elif getattr(value, "__module__", None) in keys:
            yield f"{where} holds {value.__module__}.{getattr(value, '__qualname__', value)}"


problems += leaks("the student's namespace", list(namespace.values()))
for name, module in list(sys.modules.items()):
    # The grader's own modules hold references by design: walling them off is the sandbox's job.
    if module is None or not name.startswith("coursepkg") or name.startswith("coursepkg.grading"):
        continue
    problems += leaks(name, list(vars(module).values()))
print(json.dumps({"problems": problems, "blocked": sorted(blocked)}))
"""


def _setup_cells(lab: str) -> list[str]:
    return [
        cell.source
        for cell in solution(lab).cells
        if cell.cell_type == "code" and SETUP_TAG in cell.metadata.get("tags", [])
    ]


@pytest.mark.parametrize("lab", LABS)
def test_no_module_a_student_can_reach_holds_a_reference_function(lab):
    result = subprocess.run(
        [sys.executable, "-c", _REACHABLE],
        input=json.dumps({"lab": lab, "setup": _setup_cells(lab)}),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["problems"] == []
    assert set(LABS[lab][0].ANSWER_KEYS) <= set(report["blocked"])


#: Exercises whose reference has another name.
_REFERENCE_NAMES = {"identity_sides": "minimax_identity"}


@pytest.mark.parametrize("lab", LABS)
def test_the_answer_keys_define_every_exercise(lab):
    import importlib

    module = LABS[lab][0]
    defined = {
        name
        for key in module.ANSWER_KEYS
        for name, value in vars(importlib.import_module(key)).items()
        if getattr(value, "__module__", None) == key
    }
    exercises = {_REFERENCE_NAMES.get(name, name) for check in module.CHECKS.values() for name in check.needs}
    assert exercises <= defined, f"{sorted(exercises - defined)} are graded but in none of {module.ANSWER_KEYS}"


def test_the_closure_follows_imports_through_other_modules():
    # lsi.plots imports lsi.archive, which imports lsi.measures: blocking the measures blocks both.
    assert {"coursepkg.lsi.archive", "coursepkg.lsi.plots"} <= blocked_modules(["coursepkg.lsi.measures"])
    assert "coursepkg.lsi.measures" in import_graph()["coursepkg.lsi.archive"]
    # Helpers that import no answer key stay importable: the labs' setup cells use them.
    assert not {"coursepkg.util.runtime", "coursepkg.mnist.data", "coursepkg.mnist.plots"} & blocked_modules(
        ["coursepkg.mnist.models", "coursepkg.toy2d.losses"]
    )
    assert not any(name.startswith("coursepkg.grading") for name in import_graph())
    # The probe passes a generator of keys: it must count once, not be used up.
    assert blocked_modules(iter(["coursepkg.lsi.measures"])) == blocked_modules(["coursepkg.lsi.measures"])


def test_no_package_init_imports_anything():
    # An import in an __init__ would load its modules, answer keys included, before the probe blocks them.
    for init in (ROOT / "coursepkg").rglob("__init__.py"):
        tree = ast.parse(init.read_text())
        assert not [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))], init


def test_an_unknown_answer_key_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="not modules of coursepkg; fix the lab's ANSWER_KEYS"):
        blocked_modules(["coursepkg.gan2d"])
