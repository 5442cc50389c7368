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


def student_program(cells: Iterable[Mapping[str, Any]]) -> list[str]:
    """Sources of the code cells the probe re-runs: setup cells and solution cells.

    Args:
        cells: notebook cells (nbformat dicts).

    Returns:
        Their sources, in notebook order.
    """
    program = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        metadata = cell.get("metadata", {})
        if SETUP_TAG in metadata.get("tags", []) or metadata.get("nbgrader", {}).get("solution", False):
            program.append(cell["source"])
    return program


def check_key(check_id: CheckId) -> str:
    """The string under which a check's observations travel between processes."""
    return f"{check_id[0]}:{check_id[1]}"


def probe_in_subprocess(
    program: list[str], checks: list[CheckId], *, cwd: str | os.PathLike[str], timeout: float
) -> dict[CheckId, dict[str, Any]]:
    """Run the student's program and the checks' probes in a fresh Python process.

    Args:
        program: cell sources, run in order in one namespace.
        checks: the checks to probe.
        cwd: working directory of the process (the notebook's folder).
        timeout: seconds before the process is killed.

    Returns:
        Observations of every check; a check whose probe could not run gets
        ``{"error": "..."}`` saying why.
    """
    with tempfile.TemporaryDirectory(prefix="coursepkg-probe-") as tmp:
        request = Path(tmp, "request.json")
        output = Path(tmp, "observations.pt")
        request.write_text(json.dumps({"program": program, "checks": [list(c) for c in checks]}))
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
            return {c: {"error": f"The autograder's re-run of your code took over {timeout:.0f} s."} for c in checks}
        if not output.exists():
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            reason = " / ".join(tail) or f"exit status {result.returncode}"
            return {c: {"error": f"The autograder's re-run of your code stopped early: {reason}"} for c in checks}
        observed = torch.load(output, weights_only=True)
    missing = {"error": "The autograder's re-run of your code recorded nothing for this check."}
    return {c: observed.get(check_key(c), missing) for c in checks}


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
