"""pyproject.toml declares what each part of the course imports, and the student install stays lean."""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import tomllib

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: Which declared dependencies each part may import: the student install, grading, and the authors' tools
#: (which grade too: tools/benchmark_autograde).
_EXTRAS = PYPROJECT["project"]["optional-dependencies"]
PARTS = {
    "core": PYPROJECT["project"]["dependencies"],
    "grading": PYPROJECT["project"]["dependencies"] + _EXTRAS["grading"],
    "authoring": PYPROJECT["project"]["dependencies"] + _EXTRAS["grading"] + _EXTRAS["authoring"],
}
#: Modules that only instructors run: grading a class, in sandboxes. The labs' checks (``lab_*``, ``checks``,
#: ``observe``, ``probes``) are the students' too: their test cells import them.
GRADING_ONLY = {
    f"coursepkg.grading.{name}"
    for name in (
        "autograde",
        "batch",
        "execute",
        "isolation",
        "nbgrader_plugin",
        "probe",
        "records",
        "sandbox",
        "similarity",
        "submission",
    )
}


@cache
def _distributions() -> dict[str, list[str]]:
    return packages_distributions()


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _third_party_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return {
        name for name in names if name not in sys.stdlib_module_names and name not in ("coursepkg", "tools", "tests")
    }


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted((ROOT / "coursepkg").rglob("*.py")) + sorted((ROOT / "tools").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        part = "authoring" if module.startswith("tools") else "grading" if module in GRADING_ONLY else "core"
        found.append((module, part, path))
    return found


@pytest.mark.parametrize("module, part, path", _modules(), ids=lambda value: str(value))
def test_every_import_is_a_declared_dependency_of_its_part(module, part, path):
    distributions = _distributions()
    declared = {_name(requirement) for requirement in PARTS[part]}
    for name in _third_party_imports(path):
        provided_by = {d.lower().replace("_", "-") for d in distributions.get(name, [name])}
        assert provided_by & declared, f"{module} imports {name} ({sorted(provided_by)}), not declared for {part}"


def test_the_grading_and_authoring_tools_stay_out_of_the_student_install():
    core = {_name(requirement) for requirement in PARTS["core"]}
    assert not core & {"nbgrader", "nbformat", "nbclient", "ipython", "pyyaml", "jupyter-book"}
    assert PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"] == ["coursepkg*"]  # tools/ is not installed


def test_requirements_install_the_package_with_every_extra():
    requirements = (ROOT / "requirements.txt").read_text()
    (line,) = [line for line in requirements.splitlines() if line.startswith("-e .")]
    assert set(line.removeprefix("-e .[").removesuffix("]").split(",")) == set(
        PYPROJECT["project"]["optional-dependencies"]
    )
