"""nbgrader integration: plain ``nbgrader autograde`` with the course's walls.

``nbgrader_config.py`` swaps two of nbgrader's steps::

    c.Autograde.sanitize_preprocessors = sanitize_preprocessors()   # RepairSubmission first
    c.Autograde.autograde_preprocessors = autograde_preprocessors() # SandboxedExecute for Execute

* :class:`RepairSubmission` puts a submission back in the shape of the released
  notebook (:func:`coursepkg.grading.submission.repair`) before nbgrader's own steps,
  so that an edited, re-flagged or duplicated cell, or metadata of an unknown schema,
  cannot stop the batch;
* :class:`SandboxedExecute` runs the notebook and its checks in sandboxes and writes
  the verdicts into the test cells (:func:`coursepkg.grading.autograde.grade_notebook`):
  nbgrader's ``SaveAutoGrades`` then scores what the isolated checks decided, never
  what the student's kernel printed.

What plain ``nbgrader autograde`` still cannot do is read a file that is not a
notebook (invalid JSON, a wrong name): it skips those, one at a time.
``python -m coursepkg grade`` (:mod:`coursepkg.grading.batch`) grades them zero with
the reason, and grades a class in parallel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbconvert.exporters.exporter import ResourcesDict
from nbformat import NotebookNode
from nbgrader.converters.autograde import Autograde
from nbgrader.converters.generate_feedback import GenerateFeedback
from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor
from traitlets import Float, Int, Unicode

from coursepkg.grading import autograde, isolation, sandbox
from coursepkg.grading.submission import repair

__all__ = [
    "HideHiddenTests",
    "RepairSubmission",
    "SandboxedExecute",
    "autograde_preprocessors",
    "feedback_preprocessors",
    "sanitize_preprocessors",
]


class RepairSubmission(NbGraderPreprocessor):
    """Restore a submission's structure from the released notebook, before nbgrader's sanitising steps."""

    release_directory = Unicode("release", help="Folder of the released assignments, from the course root.").tag(
        config=True
    )

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        ids = resources["nbgrader"]
        released = Path(self.release_directory, ids["assignment"], f"{ids['notebook']}.ipynb")
        if not released.exists():
            self.log.warning("%s is missing: the submission is not repaired (run generate_assignment).", released)
            return nb, resources
        repaired, notes = repair(nb, nbformat.read(released, as_version=4))
        for note in notes:
            self.log.warning("%s: %s", ids["student"], note)
        resources.setdefault("coursepkg", {})["repair_notes"] = notes
        return repaired, resources


class SandboxedExecute(NbGraderPreprocessor):
    """nbgrader's ``Execute`` step, in sandboxes, with the test cells' verdicts from the isolated checks."""

    memory = Int(sandbox.Limits.memory, help="Bytes of memory the notebook's processes may hold together.").tag(
        config=True
    )
    processes = Int(sandbox.Limits.processes, help="Processes a sandbox may run at once.").tag(config=True)
    deadline = Float(sandbox.Limits.deadline, help="Seconds after which a notebook's sandbox is killed.").tag(
        config=True
    )
    cell_timeout = Float(autograde.Settings.cell_timeout, help="Seconds a cell may run before it is interrupted.").tag(
        config=True
    )
    probe_timeout = Float(isolation.Timeouts.total, help="Seconds the isolated re-run of the checks may take.").tag(
        config=True
    )

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        sandbox.check_available()
        limits = sandbox.Limits(memory=self.memory, processes=self.processes, deadline=self.deadline)
        settings = autograde.Settings(
            limits=limits, cell_timeout=self.cell_timeout, timeouts=isolation.Timeouts(total=self.probe_timeout)
        )
        graded, report = autograde.grade_notebook(nb, settings=settings)
        for event in report.events:
            self.log.warning("%s: %s", resources["nbgrader"]["student"], event)
        for flag in report.flags:
            self.log.warning(
                "%s: cell %s is a near copy (%.0f%%) of %s",
                resources["nbgrader"]["student"],
                flag.cell,
                100 * flag.similarity,
                flag.reference,
            )
        return graded, resources


class HideHiddenTests(ClearHiddenTests):
    """nbgrader's ``ClearHiddenTests``, on the test cells only.

    nbgrader's own looks for the markers in every cell and stops the student's feedback
    when a cell of theirs mentions ``BEGIN HIDDEN TESTS`` without the end marker.
    """

    def preprocess_cell(
        self, cell: NotebookNode, resources: ResourcesDict, index: int
    ) -> tuple[NotebookNode, ResourcesDict]:
        if not isolation.is_test_cell(cell):
            return cell, resources
        return super().preprocess_cell(cell, resources, index)


def feedback_preprocessors() -> list[Any]:
    """nbgrader's feedback steps, hiding the hidden tests' code: hidden checks' verdicts show, their code does not."""
    default = list(GenerateFeedback.class_traits()["preprocessors"].default())
    return [default[0], HideHiddenTests, *default[1:]]


def sanitize_preprocessors() -> list[Any]:
    """nbgrader's sanitising steps with :class:`RepairSubmission` first."""
    return [RepairSubmission, *Autograde.class_traits()["sanitize_preprocessors"].default()]


def autograde_preprocessors() -> list[Any]:
    """nbgrader's autograde steps with :class:`SandboxedExecute` in place of ``Execute``."""
    default = list(Autograde.class_traits()["autograde_preprocessors"].default())
    return [SandboxedExecute if step is Execute else step for step in default]
