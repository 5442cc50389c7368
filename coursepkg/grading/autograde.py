"""Grade one submitted notebook: run it for the feedback, then observe and judge its checks, in sandboxes.

:func:`grade_notebook` is what the course's autograder does with one submission, for
``python -m coursepkg grade`` (:mod:`coursepkg.grading.batch`) and for plain ``nbgrader
autograde`` (:mod:`coursepkg.grading.nbgrader_plugin`) alike:

1. the notebook runs in a Jupyter kernel in one sandbox (:mod:`coursepkg.grading.execute`)
   with its test cells blank, so that the feedback shows what every other cell printed; its
   ``coursepkg`` holds no judge (:func:`~coursepkg.grading.isolation.sandbox_modules`);
2. its checks are observed in another sandbox and judged here
   (:mod:`coursepkg.grading.isolation`);
3. each test cell's outputs are replaced by the verdicts of its checks: a pass line
   per check, and an error output when one failed, which is what nbgrader scores. No
   output the student's code made can reach a test cell.

The notebook comes in as nbgrader's sanitising steps leave it: read-only and test
cells restored from the gradebook, hidden tests included.
"""

from __future__ import annotations

import copy
import json
import secrets
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell, new_output

from coursepkg.grading import isolation, sandbox
from coursepkg.grading.records import read_records
from coursepkg.grading.similarity import Flag, copied_code

__all__ = ["Report", "Settings", "grade_notebook", "is_note", "note_cell", "run_notebook", "verdict_outputs"]

#: The name of the error output that marks a failed test cell.
FAILED = "CheckFailed"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """How the autograder runs a submission.

    Attributes:
        limits: each sandbox's limits; its ``deadline`` bounds the notebook's run.
        cell_timeout: seconds a cell may run in the kernel before it is interrupted.
        timeouts: the isolated re-run's timeouts (per cell, per probe, in all).
    """

    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    cell_timeout: float = 120.0
    timeouts: isolation.Timeouts = field(default_factory=isolation.Timeouts)


@dataclass
class Report:
    """What happened to a submission, beside its scores: for the feedback and the instructor.

    Attributes:
        events: what stopped or was cut, in words ("stopped in cell 7: the memory limit of 4 GiB").
        flags: solution cells that are near copies of the course's reference (for review, not a grade).
        failed: each failing test cell's ``grade_id`` and the messages of its failing checks.
        seconds: time taken by the notebook's run and by the checks.
        peak_memory: the most memory, in bytes, each of them held (all its sandbox's processes together).
    """

    events: list[str] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    failed: dict[str, list[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    peak_memory: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for the notebook's metadata and the batch's summary."""
        return {
            "events": self.events,
            "flags": [flag.as_dict() for flag in self.flags],
            "failed": self.failed,
            "seconds": self.seconds,
            "peak_memory": self.peak_memory,
        }


def run_notebook(notebook: NotebookNode, *, settings: Settings) -> tuple[dict[int, dict[str, Any]], list[str], Any]:
    """Run ``notebook`` in a kernel in a sandbox.

    Returns:
        ``{cell index: {"outputs", "execution_count"}}`` of the cells that ran to their end;
        what went wrong, in order ("cell 5 was interrupted after 120 s", and last what stopped
        the run early: "stopped in cell 7: the memory limit of 4 GiB"); and how the sandbox
        ended (:class:`~coursepkg.grading.sandbox.Outcome`: its seconds, its peak memory).
    """
    request = {
        "notebook": notebook,
        "cell_timeout": settings.cell_timeout,
        "cell_output": settings.limits.cell_output,
    }
    outcome = sandbox.run(
        [sys.executable, "-m", "coursepkg.grading.execute"],
        limits=settings.limits,
        mounts=[isolation.sandbox_view(None)],
        env={"NBGRADER_EXECUTION": "autograde"},
        stdin=json.dumps(request).encode(),
    )
    ran: dict[int, dict[str, Any]] = {}
    started, stopped, finished, events = None, None, False, []
    for header, body in read_records(outcome.results):
        kind, index = header.get("kind"), header.get("index")
        if kind == "start" and isinstance(index, int):
            started = index
        elif kind == "cell" and isinstance(index, int) and 0 <= index < len(notebook.cells):
            ran[index] = _cell_outputs(body, settings.limits.cell_output)
        elif kind == "interrupted" and isinstance(index, int):
            events.append(f"cell {index} was interrupted after {settings.cell_timeout:g} s")
        elif kind == "died":
            stopped = f"stopped in cell {started}: {str(header.get('reason', ''))[:300]}"
        elif kind == "finished":
            finished = True
    if not finished and stopped is None:
        where = f"in cell {started}" if started is not None else "before its first cell"
        stopped = f"stopped {where}: {outcome.stopped or 'the notebook ' + outcome.ended()}"
    return ran, [*events, *([stopped] if stopped else [])], outcome


def _cell_outputs(body: bytes, limit: int) -> dict[str, Any]:
    """One cell's outputs from the sandbox, checked: valid nbformat outputs within ``limit`` bytes, else a note."""
    note = {"outputs": [_note("The autograder could not read this cell's outputs.")], "execution_count": None}
    if len(body) > 2 * limit + 4096:
        return note
    try:
        data = json.loads(body)
        outputs = [nbformat.from_dict(output) for output in data["outputs"]]
        count = data.get("execution_count")
        cell = nbformat.v4.new_code_cell(outputs=outputs, execution_count=count if isinstance(count, int) else None)
        nbformat.validate(nbformat.v4.new_notebook(cells=[cell]))
    except Exception:  # anything the sandbox sent that is not a list of outputs
        return note
    return {"outputs": outputs, "execution_count": cell.execution_count}


def _timed(function: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """What ``function`` returns, and the seconds it took."""
    started = time.monotonic()
    return function(*args, **kwargs), time.monotonic() - started


def _note(text: str) -> NotebookNode:
    return new_output("stream", name="stdout", text=f"[autograder] {text}\n")


def note_cell(text: str) -> NotebookNode:
    """The markdown cell the autograder puts first in a graded notebook to say what happened."""
    return new_markdown_cell(f"**Autograder notes.** {text}", metadata={"coursepkg": {"autograder_note": True}})


def is_note(cell: Mapping[str, Any]) -> bool:
    """Whether ``cell`` is the autograder's :func:`note_cell`."""
    return bool(cell.get("metadata", {}).get("coursepkg", {}).get("autograder_note"))


def verdict_outputs(verdicts: list[tuple[str, str | None, str]]) -> list[NotebookNode]:
    """A test cell's outputs: a line per check that passed, an error output with every failure.

    Args:
        verdicts: ``(check name, failure message or None, success message)`` per check, in order.
    """
    passed = "".join(f"✔ {name}: {ok}\n" for name, failure, ok in verdicts if failure is None)
    outputs = [new_output("stream", name="stdout", text=passed)] if passed else []
    failures = [f"{name}: {failure}" for name, failure, _ in verdicts if failure is not None]
    if failures:
        message = " | ".join(failures)
        outputs.append(new_output("error", ename=FAILED, evalue=message, traceback=[f"{FAILED}: {message}"]))
    return outputs


def grade_notebook(notebook: NotebookNode, *, settings: Settings = Settings()) -> tuple[NotebookNode, Report]:
    """Run a sanitised submission, observe and judge its checks; return it graded, and a report.

    Args:
        notebook: the submission after nbgrader's sanitising steps (hidden tests restored).
        settings: limits and timeouts.

    Returns:
        The notebook with every cell's outputs (the kernel's, the verdicts in the test cells) and
        the report. nbgrader's ``SaveAutoGrades`` then scores its test cells.
    """
    report = Report()
    graded = copy.deepcopy(notebook)
    shown = copy.deepcopy(notebook)
    for cell in shown.cells:
        if isolation.is_test_cell(cell):
            cell.source = ""  # the verdicts come from the isolated checks
    # The two sandboxes run side by side: a submission's wall-clock time is the longer of the two.
    salt = 1 + secrets.randbelow(2**31)  # the checks' second look: drawn here, never shown to the student
    usage: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=1) as pool:
        limits, timeouts = settings.limits, settings.timeouts
        checks = pool.submit(
            _timed, isolation.observe, graded.cells, limits=limits, salt=salt, timeouts=timeouts, usage=usage
        )
        ran, problems, run = run_notebook(shown, settings=settings)
        (observed, notes), report.seconds["checks"] = checks.result()
    report.seconds["notebook"], report.peak_memory["notebook"] = run.seconds, run.peak_memory
    report.peak_memory["checks"] = usage.get("peak_memory", 0)
    report.events.extend(problems)
    stopped = next((problem for problem in problems if problem.startswith("stopped")), None)
    for index, cell in enumerate(graded.cells):
        if cell.cell_type != "code":
            continue
        if index in ran:
            cell.outputs, cell.execution_count = ran[index]["outputs"], ran[index]["execution_count"]
        elif not isolation.is_test_cell(cell) and cell.source.strip():
            cell.outputs, cell.execution_count = [_note(f"Not run: the notebook {stopped}.")], None
    report.events.extend(notes)
    for index, cell in enumerate(graded.cells):
        if not isolation.is_test_cell(cell):
            continue
        verdicts = []
        for check_id in isolation.requested_checks(cell.source):
            verdict = isolation.judge(check_id, observed[index, check_id], salt)
            verdicts.append((check_id[1], verdict.failure, verdict.message))
        cell.outputs, cell.execution_count = verdict_outputs(verdicts), None
        failures = [f"{name}: {failure}" for name, failure, _ in verdicts if failure]
        if failures:
            report.failed[cell.metadata["nbgrader"]["grade_id"]] = failures
    report.flags = copied_code(graded.cells, isolation.answer_keys(check_id for _, check_id in observed))
    if report.events:
        graded.cells.insert(0, note_cell(" ".join(f"{event[0].upper()}{event[1:]}." for event in report.events)))
    graded.metadata["coursepkg"] = {"grading": report.as_dict()}
    return graded, report
