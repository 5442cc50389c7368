"""nbgrader integration: judge every test cell again, out of the student's reach.

``nbgrader_config.py`` puts :class:`IsolatedChecks` right after nbgrader's
``Execute`` step of ``nbgrader autograde``::

    c.Autograde.autograde_preprocessors = autograde_preprocessors()

After the notebook has run, it re-runs the checks of every autograded test
cell through :mod:`coursepkg.grading.isolation`. A cell whose checks fail there
gets an error output saying why, so nbgrader's ``SaveAutoGrades`` gives it zero,
whatever the student's kernel printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbconvert.exporters.exporter import ResourcesDict
from nbformat import NotebookNode
from nbformat.v4 import new_output
from nbgrader.converters.autograde import Autograde
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Integer

from coursepkg.grading.isolation import judge, probe_in_subprocess, probe_plan

__all__ = ["IsolatedChecks", "autograde_preprocessors"]


class IsolatedChecks(NbGraderPreprocessor):
    """Zero every test cell whose checks fail when re-run in isolation."""

    timeout = Integer(180, help="Seconds the isolated re-run of a notebook's code may take.").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        plan = probe_plan(nb.cells)
        observing = [step for step in plan if "observe" in step]
        if not observing:
            return nb, resources
        cwd = resources.get("metadata", {}).get("path") or "."
        self.log.info("Re-running the checks of %d test cells in an isolated process", len(observing))
        observed = probe_in_subprocess(plan, cwd=Path(cwd), timeout=self.timeout)
        for step in observing:
            cell = nb.cells[step["at"]]
            verdicts = {
                name: judge((module, name), observed[step["at"], (module, name)]) for module, name in step["observe"]
            }
            failures = [f"{name}: {verdict}" for name, verdict in verdicts.items() if verdict]
            if failures:
                self.log.info("Cell %s fails in isolation: %s", cell.metadata.nbgrader["grade_id"], failures)
                cell.outputs.append(_failure_output(failures))
        return nb, resources


def _failure_output(failures: list[str]) -> NotebookNode:
    message = (
        "The autograder re-ran this check in a fresh process, without the course's reference "
        "solutions, and it failed: " + " | ".join(failures)
    )
    return new_output(
        "error", ename="IsolatedCheckFailed", evalue=message, traceback=[f"IsolatedCheckFailed: {message}"]
    )


def autograde_preprocessors() -> list[Any]:
    """nbgrader's default autograde pipeline with :class:`IsolatedChecks` after ``Execute``."""
    default = list(Autograde.class_traits()["autograde_preprocessors"].default())
    position = default.index(Execute) + 1
    return default[:position] + [IsolatedChecks] + default[position:]
