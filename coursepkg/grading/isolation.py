"""Re-run a notebook's checks out of reach of the student's kernel.

A test cell's verdict in the notebook cannot be trusted on its own: the cells
before it ran in the same kernel and may have replaced ``torch.allclose`` or a
``coursepkg`` function. Here the checks run again in two halves:

1. the *probe*: a fresh Python process (:mod:`coursepkg.grading.probe`) runs the
   notebook's setup cells and the student's solution cells, with the lab's
   answer keys and every module that imports them made unimportable
   (:func:`blocked_modules`), calls the student's code on fixed inputs and
   writes what it returned to a file;
2. the *judge*: this process, which never ran student code, reads those
   observations (``torch.load(weights_only=True)``: plain tensors and numbers)
   and compares them with the references.

Which checks a test cell stands for is read from its own source (restored by
nbgrader from the gradebook, hidden tests included): every call
``<alias>.check("name", ...)`` where ``<alias>`` is a module imported from
``coursepkg.grading``.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import torch

from coursepkg.grading.checks import CheckFailed

__all__ = [
    "SETUP_TAG",
    "blocked_modules",
    "check_key",
    "import_graph",
    "judge",
    "probe_in_subprocess",
    "probe_plan",
    "requested_checks",
    "student_program",
]

#: Tag of the notebook's read-only setup cells (imports, constants), which the
#: probe runs before the solution cells.
SETUP_TAG = "setup"

CheckId = tuple[str, str]  # (module, check name)


@cache
def import_graph() -> dict[str, frozenset[str]]:
    """Which ``coursepkg`` modules each module of the package imports, read from the source.

    Returns:
        ``{module: modules it imports}`` for every module outside :mod:`coursepkg.grading`
        (the grader imports answer keys by design), counting ``import a.b``,
        ``from a import b`` (``a.b`` when it is a module) and imports inside functions.
    """
    package = Path(__file__).resolve().parents[1]
    names = {
        ".".join(("coursepkg", *path.relative_to(package).with_suffix("").parts)).removesuffix(".__init__"): path
        for path in package.rglob("*.py")
    }
    graph = {}
    for name, path in names.items():
        if name.startswith("coursepkg.grading"):
            continue
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[name] = frozenset(imported & names.keys())
    return graph


def blocked_modules(answer_keys: Iterable[str]) -> frozenset[str]:
    """The modules the isolated re-run makes unimportable for a lab.

    Args:
        answer_keys: the lab's ``ANSWER_KEYS``, e.g. ``("coursepkg.theory.divergences",)``.

    Returns:
        The answer keys and every module outside :mod:`coursepkg.grading` that imports
        one of them, directly or through other modules: none of what is left can hand
        a student a reference function.
    """
    graph = import_graph()
    blocked = set(answer_keys)
    unknown = blocked - graph.keys()
    if unknown:
        raise ValueError(f"answer keys {sorted(unknown)} are not modules of coursepkg; fix the lab's ANSWER_KEYS.")
    while True:
        more = {module for module, imports in graph.items() if imports & blocked} - blocked
        if not more:
            return frozenset(blocked)
        blocked |= more


def requested_checks(source: str) -> list[CheckId]:
    """List the checks a test cell runs, in source order.

    Args:
        source: Python source of a test cell.

    Returns:
        ``(module, name)`` pairs, e.g.
        ``("coursepkg.grading.lab_2d_gan", "discriminator_step")``.
    """
    tree = ast.parse(source)
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "coursepkg.grading":
            aliases.update({a.asname or a.name: f"coursepkg.grading.{a.name}" for a in node.names})
        elif isinstance(node, ast.Import):
            aliases.update(
                {a.asname: a.name for a in node.names if a.asname and a.name.startswith("coursepkg.grading.")}
            )
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "check"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in aliases
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ]
    calls.sort(key=lambda node: (node.lineno, node.col_offset))
    return [(aliases[node.func.value.id], node.args[0].value) for node in calls]


def _is_test_cell(cell: Mapping[str, Any]) -> bool:
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return bool(nbgrader.get("grade")) and not nbgrader.get("solution", False)


def _is_students(cell: Mapping[str, Any]) -> bool:
    """Whether a code cell holds the student's code: a solution cell or a cell the student added.

    The instructor's other code cells (setup, demonstrations, training runs, test
    cells) are nbgrader read-only cells, ``locked`` in their metadata; a cell the
    student inserted has no nbgrader metadata at all.
    """
    metadata = cell.get("metadata", {})
    nbgrader = metadata.get("nbgrader", {})
    if SETUP_TAG in metadata.get("tags", []):
        return True
    return nbgrader.get("solution", False) or not (nbgrader.get("locked", False) or _is_test_cell(cell))


def student_program(cells: Iterable[Mapping[str, Any]]) -> list[str]:
    """Sources of the code cells the probe re-runs, in notebook order.

    These are the setup cells (imports and constants), the solution cells and every
    code cell the student added; the instructor's read-only cells (demonstrations,
    training runs, plots) and the test cells are left out, which keeps the re-run short.

    Args:
        cells: notebook cells (nbformat dicts).

    Returns:
        Their sources, in notebook order.
    """
    return [step["run"] for step in probe_plan(cells) if "run" in step]


def probe_plan(cells: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What the probe does, in notebook order: run the student's cells, observe at each test cell.

    A test cell's checks are observed where the test cell stands, after the cells
    above it and before the ones below, as the notebook's own run sees them.

    Args:
        cells: notebook cells (nbformat dicts).

    Returns:
        Steps ``{"run": source, "at": position}`` (the cells of :func:`student_program`)
        and ``{"observe": [[module, name], ...], "at": position}`` for every test cell
        that requests checks, where ``position`` is the cell's index in the notebook.
    """
    plan: list[dict[str, Any]] = []
    for position, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        if _is_test_cell(cell):
            checks = requested_checks(cell["source"])
            if checks:
                plan.append({"observe": [list(c) for c in checks], "at": position})
        elif _is_students(cell):
            plan.append({"run": cell["source"], "at": position})
    return plan


def check_key(position: int, check_id: CheckId) -> str:
    """The string under which a check's observations at a test cell travel between processes."""
    return f"{position}:{check_id[0]}:{check_id[1]}"


def probe_in_subprocess(
    plan: list[dict[str, Any]], *, cwd: str | os.PathLike[str], timeout: float
) -> dict[tuple[int, CheckId], dict[str, Any]]:
    """Carry out a :func:`probe_plan` in a fresh Python process.

    Args:
        plan: the steps: cells to run and test cells whose checks to observe.
        cwd: working directory of the process (the notebook's folder).
        timeout: seconds before the process is killed.

    Returns:
        ``{(test cell position, check): observations}`` for every check of the plan;
        a check whose probe could not run gets ``{"error": "..."}`` saying why.
    """
    wanted = [(step["at"], (m, n)) for step in plan if "observe" in step for m, n in step["observe"]]
    with tempfile.TemporaryDirectory(prefix="coursepkg-probe-") as tmp:
        request = Path(tmp, "request.json")
        output = Path(tmp, "observations.pt")
        request.write_text(json.dumps({"plan": plan}))
        env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
        try:
            result = subprocess.run(
                [sys.executable, "-m", "coursepkg.grading.probe", str(request), str(output)],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {w: {"error": f"The autograder's re-run of your code took over {timeout:.0f} s."} for w in wanted}
        if not output.exists():
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            reason = " / ".join(tail) or f"exit status {result.returncode}"
            return {w: {"error": f"The autograder's re-run of your code stopped early: {reason}"} for w in wanted}
        observed = torch.load(output, weights_only=True)
    missing = {"error": "The autograder's re-run of your code recorded nothing for this check."}
    return {(at, c): observed.get(check_key(at, c), missing) for at, c in wanted}


def judge(check_id: CheckId, observations: dict[str, Any]) -> str | None:
    """Judge one check's observations with the untouched references.

    Returns:
        ``None`` when the check passes, else the failure message.
    """
    module, name = check_id
    try:
        importlib.import_module(module).CHECKS[name].evaluate(observations)
    except CheckFailed as failure:
        return str(failure)
    return None
