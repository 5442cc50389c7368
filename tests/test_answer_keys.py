"""The sandbox holds back exactly what it must: no reference function is reachable from a student's code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from coursepkg.grading.isolation import SETUP_TAG, blocked_modules, import_graph
from tests.conftest import ROOT
from tests.grading_helpers import LABS, solution

# Run in a fresh process, as the sandbox does: every module the lab's sandbox does not hold is made unimportable,
# the probes are imported and the notebook's setup cells run, then every module that is left is imported and
# everything it holds is looked at.
_REACHABLE = """
import importlib, json, sys, types
from coursepkg.grading.isolation import blocked_modules, import_graph, sandbox_modules

request = json.load(sys.stdin)
keys = set(request["keys"])
kept = sandbox_modules(keys)
for name in import_graph():
    if name not in kept:
        sys.modules[name] = None
for name in sorted(kept):
    importlib.import_module(name)
namespace = {"__name__": "__main__"}
problems = []
for source in request["setup"]:
    try:
        exec(source.replace("%pip", "pass  #"), namespace)
    except Exception as error:
        problems.append(f"setup cell failed: {error!r}")


def leaks(where, values):
    for value in values:
        if isinstance(value, types.ModuleType) and value.__name__ in keys:
            yield f"{where} holds the answer key {value.__name__}"
        elif getattr(value, "__module__", None) in keys:
            yield f"{where} holds {value.__module__}.{getattr(value, '__qualname__', value)}"


problems += leaks("the student's namespace", list(namespace.values()))
for name, module in list(sys.modules.items()):
    if module is not None and name.startswith("coursepkg"):
        problems += leaks(name, list(vars(module).values()))
print(json.dumps({"problems": problems, "kept": sorted(kept)}))
"""


def _setup_cells(lab: str) -> list[str]:
    return [
        cell.source
        for cell in solution(lab).cells
        if cell.cell_type == "code" and SETUP_TAG in cell.metadata.get("tags", [])
    ]


@pytest.mark.parametrize("lab", LABS)
def test_nothing_in_the_sandbox_holds_a_reference_function(lab):
    """With only the sandbox's modules, the probes, the setup cells and every module left hold no answer key."""
    keys = LABS[lab][0].ANSWER_KEYS
    result = subprocess.run(
        [sys.executable, "-c", _REACHABLE],
        input=json.dumps({"keys": keys, "setup": _setup_cells(lab)}),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["problems"] == []
    assert f"coursepkg.grading.probes.{lab}" in report["kept"]
    assert not set(keys) & set(report["kept"])


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
    exercises = {_REFERENCE_NAMES.get(name, name) for check in module.CHECKS.values() for name in check.probe.needs}
    assert exercises <= defined, f"{sorted(exercises - defined)} are graded but in none of {module.ANSWER_KEYS}"


def test_the_closure_follows_imports_through_other_modules():
    # lsi.plots imports lsi.archive, which imports lsi.measures: blocking the measures blocks both.
    assert {"coursepkg.lsi.archive", "coursepkg.lsi.plots"} <= blocked_modules(["coursepkg.lsi.measures"])
    assert "coursepkg.lsi.measures" in import_graph()["coursepkg.lsi.archive"]
    # Helpers that import no answer key stay importable: the labs' setup cells use them.
    assert not {"coursepkg.util.runtime", "coursepkg.mnist.data", "coursepkg.mnist.plots"} & blocked_modules(
        ["coursepkg.mnist.models", "coursepkg.toy2d.losses"]
    )
    # The probes import no answer key; the judges import theirs by design.
    probes = {name for name in import_graph() if name.startswith("coursepkg.grading.probes.")}
    assert len(probes) == 4
    for name in probes:
        lab = name.rpartition(".")[2]
        assert name not in blocked_modules(LABS[lab][0].ANSWER_KEYS)
    # The probe passes a generator of keys: it must count once, not be used up.
    assert blocked_modules(iter(["coursepkg.lsi.measures"])) == blocked_modules(["coursepkg.lsi.measures"])


def test_no_package_init_imports_anything():
    # An import in an __init__ would load its modules, answer keys included, wherever the package is imported.
    for init in (ROOT / "coursepkg").rglob("__init__.py"):
        tree = ast.parse(init.read_text())
        assert not [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))], init


def test_an_unknown_answer_key_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="not modules of coursepkg; fix the lab's ANSWER_KEYS"):
        blocked_modules(["coursepkg.gan2d"])
