"""Grade a whole class: ``python -m coursepkg grade LAB``, in parallel, nothing lost.

For every submission in ``submitted/<student>/LAB/`` of an nbgrader course this does
what ``nbgrader autograde`` followed by ``nbgrader generate_feedback`` would, with
the course's walls (:mod:`coursepkg.grading.autograde`) and none of its single
points of failure:

1. **Prepare** (this process, one submission at a time, fast): find and read the
   notebook, repair it from the released version (:mod:`coursepkg.grading.submission`),
   stage the repaired copy (never the student's other files) and apply nbgrader's
   sanitising steps, which restore the instructor's cells from the gradebook.
2. **Grade** (Dask workers, in parallel, each submission in sandboxes of its own):
   :func:`grade_job` runs the notebook and its checks; the judges were imported by
   the worker before its first job (:class:`ImportJudges`). ``--workers N`` starts a
   local cluster of N worker processes; ``--scheduler ADDRESS`` uses a running Dask
   cluster (``dask-jobqueue`` on SLURM, ``dask-kubernetes``: see the README).
3. **Record** (this process, the only one that writes the gradebook): each result, as
   it arrives, goes through nbgrader's own autograde steps (``SaveAutoGrades``, late
   penalties) with :class:`Replay` in place of the execution, which writes the
   gradebook and ``autograded/``; a state file per submission makes a rerun skip what
   is done (``--force`` regrades), so an interrupted batch resumes where it stopped.
4. **Feedback**: nbgrader's ``generate_feedback`` for every submission recorded.

A submission that cannot be read, or whose grading fails, is recorded with zero
points and the reason, in the summary and in its feedback; the others are graded
exactly as if alone.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import shutil
import statistics
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import nbformat
from distributed import Client, LocalCluster, WorkerPlugin, as_completed
from nbconvert.exporters.exporter import ResourcesDict
from nbformat import NotebookNode
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps.api import NbGraderAPI
from nbgrader.converters.autograde import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from nbgrader.utils import parse_utc
from sqlalchemy.exc import SAWarning
from tqdm import tqdm
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from coursepkg.grading import autograde, isolation, sandbox
from coursepkg.grading.submission import Unreadable, find_notebook, read_notebook, repair

__all__ = ["ImportJudges", "Replay", "Result", "Summary", "grade", "grade_job"]

log = logging.getLogger(__name__)

#: Where the grader keeps its own files in the course directory: staged submissions and state.
WORK_DIR = ".coursepkg-grading"
#: The lab modules every worker imports before its first job.
JUDGES = (
    "coursepkg.grading.lab_2d_gan",
    "coursepkg.grading.lab_js_divergence",
    "coursepkg.grading.lab_mnist_gan",
    "coursepkg.grading.lab_lsi",
)


# ---------------------------------------------------------------- on a worker


@dataclass
class Result:
    """What grading one submission gives back to the process that records it.

    Attributes:
        student: the student's id.
        notebook: the graded notebook (nbformat dict), ``None`` when grading failed.
        report: :meth:`coursepkg.grading.autograde.Report.as_dict`, or the reason grading failed.
        seconds: wall-clock seconds of the job.
    """

    student: str
    notebook: dict[str, Any] | None
    report: dict[str, Any]
    seconds: float


def grade_job(student: str, notebook: dict[str, Any], settings: autograde.Settings, unsafe: bool = False) -> Result:
    """Grade one sanitised submission in sandboxes (runs on a Dask worker).

    Args:
        student: the student's id, for the result.
        notebook: the sanitised notebook (nbformat dict, hidden tests restored).
        settings: limits and timeouts.
        unsafe: run without the sandbox (``--unsafe-no-sandbox``, one trusted notebook only).
    """
    started = time.monotonic()
    with sandbox.unsandboxed() if unsafe else contextlib.nullcontext():
        graded, report = autograde.grade_notebook(nbformat.from_dict(notebook), settings=settings)
    return Result(student, dict(graded), report.as_dict(), time.monotonic() - started)


class ImportJudges(WorkerPlugin):
    """A Dask worker plugin: import the judges and check the sandbox before the worker takes a job.

    The judges then come from the installed package, read before any student code ran
    anywhere on the worker, and a worker that cannot sandbox refuses at once, saying why.
    """

    name = "coursepkg-judges"

    def __init__(self, unsafe: bool = False) -> None:
        self.unsafe = unsafe

    def setup(self, worker: Any) -> None:
        isolation.loaded_checks(JUDGES)
        if not self.unsafe:
            sandbox.check_available()


# ---------------------------------------------------------------- nbgrader's steps, replayed


class Replay(NbGraderPreprocessor):
    """nbgrader's ``Execute`` step, replaced by the graded notebook a worker sent back.

    The batch puts each result in :attr:`results` under the student's id before it asks
    nbgrader to autograde that student; nbgrader's other steps then score and save it.
    """

    results: ClassVar[dict[str, NotebookNode]] = {}

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        graded = self.results.pop(resources["nbgrader"]["student"])
        ours = [(c.cell_type, c.source) for c in graded.cells if not autograde.is_note(c)]
        if ours != [(c.cell_type, c.source) for c in nb.cells]:
            raise RuntimeError("the graded notebook does not match the sanitised submission; grade again with --force")
        return graded, resources


def _replaying(steps_in: Iterable[type]) -> list[type]:
    """nbgrader's autograde steps with :class:`Replay` where the notebook would run."""
    steps = [Replay if issubclass(step, Execute) or step.__name__ == "SandboxedExecute" else step for step in steps_in]
    if Replay not in steps:
        raise RuntimeError("the course's autograde steps have no Execute step for the grader to replace")
    return steps


# ---------------------------------------------------------------- the course


@dataclass
class Course:
    """An nbgrader course directory, with its ``nbgrader_config.py``."""

    root: Path
    lab: str
    config: Config = field(init=False)
    coursedir: CourseDirectory = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        config = Config()
        if (self.root / "nbgrader_config.py").exists():
            config = PyFileConfigLoader("nbgrader_config.py", path=str(self.root)).load_config()
        config.CourseDirectory.root = str(self.root)
        self.config = config
        self.coursedir = CourseDirectory(config=config)

    @property
    def work(self) -> Path:
        return self.root / WORK_DIR / self.lab

    def released(self) -> NotebookNode:
        """The released notebook of the lab (``nbgrader generate_assignment`` makes it)."""
        path = Path(self.coursedir.format_path(self.coursedir.release_directory, ".", self.lab)) / f"{self.lab}.ipynb"
        if not path.exists():
            raise SystemExit(f"{path} does not exist: run `nbgrader generate_assignment {self.lab}` first.")
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            try:
                gb.find_assignment(self.lab)
            except MissingEntry:
                message = f"{self.lab} is not in the gradebook: run `nbgrader generate_assignment {self.lab}`."
                raise SystemExit(message) from None
        return nbformat.read(path, as_version=4)

    def submissions(self, students: Iterable[str] = ()) -> list[tuple[str, Path]]:
        """``(student, folder)`` of every submission of the lab, or of the named students only."""
        root = Path(self.coursedir.format_path(self.coursedir.submitted_directory, ".", "."))
        wanted = set(students)
        found = sorted(
            (folder.parent.name, folder)
            for folder in root.glob(f"*/{self.lab}")
            if folder.is_dir() and (not wanted or folder.parent.name in wanted)
        )
        missing = wanted - {student for student, _ in found}
        if missing:
            raise SystemExit(f"no submission of {self.lab} from {', '.join(sorted(missing))} in {root}.")
        return found

    def api(self) -> NbGraderAPI:
        """nbgrader's API on this course, reading the staged submissions, replaying the graded notebooks."""
        config = copy.deepcopy(self.config)
        config.CourseDirectory.submitted_directory = str(self.work / "submitted")
        default = Autograde.class_traits()["autograde_preprocessors"].default()
        configured = self.config.get("Autograde", {}).get("autograde_preprocessors", default)
        config.Autograde.autograde_preprocessors = _replaying(configured)
        config.Autograde.sanitize_preprocessors = Autograde.class_traits()["sanitize_preprocessors"].default()
        return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


@dataclass
class _Prepared:
    """A submission ready to grade: its sanitised notebook, or the reason it cannot be graded."""

    student: str
    source: str  # sha256 of what was submitted, for resuming
    file: str  # its file name in the submission folder
    notes: list[str]
    notebook: NotebookNode | None = None
    failure: str | None = None


def _stage(course: Course, student: str, folder: Path, released: NotebookNode) -> _Prepared:
    """Read, repair and stage one submission; sanitise it as nbgrader will."""
    staged = course.work / "submitted" / student / course.lab
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    notes: list[str] = []
    timestamp = folder / "timestamp.txt"
    with contextlib.suppress(OSError, ValueError):
        parse_utc(timestamp.read_text().strip())
        shutil.copyfile(timestamp, staged / "timestamp.txt")
    try:
        path, notes = find_notebook(folder, course.lab)
        notebook, read_notes = read_notebook(path)
        notebook, repair_notes = repair(notebook, released)
        prepared = _Prepared(student, _sha256(path), path.name, notes + read_notes + repair_notes, notebook)
    except Unreadable as error:
        # Graded as the released notebook, unanswered, so that nbgrader records zeros and the feedback says why.
        expected = folder / f"{course.lab}.ipynb"
        prepared = _Prepared(student, _sha256(expected), expected.name, notes, failure=str(error))
        notebook = released
    nbformat.write(notebook, staged / f"{course.lab}.ipynb")
    prepared.notebook = _sanitised(course, staged / f"{course.lab}.ipynb", student)
    return prepared


def _sanitised(course: Course, path: Path, student: str) -> NotebookNode:
    """The notebook as nbgrader's sanitising steps leave it (instructor's cells restored from the gradebook)."""
    notebook = nbformat.read(path, as_version=4)
    resources = ResourcesDict(
        nbgrader={
            "student": student,
            "assignment": course.lab,
            "notebook": course.lab,
            "db_url": course.coursedir.db_url,
        }
    )
    for step in Autograde.class_traits()["sanitize_preprocessors"].default():
        notebook, resources = step(config=course.config)(notebook, resources)
    return notebook


def _failed(prepared: _Prepared, reason: str) -> NotebookNode:
    """The graded notebook of a submission that could not be graded: every test cell failed with the reason."""
    notebook = copy.deepcopy(prepared.notebook)
    for cell in notebook.cells:
        if isolation.is_test_cell(cell):
            cell.outputs = autograde.verdict_outputs([("not graded", reason, "")])
    notebook.cells.insert(0, autograde.note_cell(f"This notebook could not be graded: {reason}."))
    return notebook


# ---------------------------------------------------------------- the batch


@dataclass
class Summary:
    """What a batch did, for the instructor.

    Attributes:
        graded: students whose submission was graded in this run.
        skipped: students already graded from the same file (``--force`` regrades them).
        failed: students whose submission could not be graded, with the reason (graded zero).
        events: per student, what stopped or was cut while grading.
        flags: per student, solution cells that are near copies of the reference.
        means: per test cell, the mean score over the submissions graded, and its maximum.
        seconds: wall-clock seconds of the batch.
    """

    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    events: dict[str, list[str]] = field(default_factory=dict)
    flags: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    means: dict[str, tuple[float, float]] = field(default_factory=dict)
    seconds: float = 0.0

    def format(self) -> str:
        """The summary as lines of text."""
        lines = [
            f"graded {len(self.graded)}, skipped {len(self.skipped)} (already graded), "
            f"failed {len(self.failed)}, in {self.seconds:.0f} s"
        ]
        lines += [f"  failed  {student}: {reason}" for student, reason in sorted(self.failed.items())]
        lines += [
            f"  note    {student}: {event}" for student, events in sorted(self.events.items()) for event in events
        ]
        lines += [
            f"  copy?   {student}: {flag['cell']} is {flag['similarity']:.0%} like {flag['reference']}"
            for student, flags in sorted(self.flags.items())
            for flag in flags
        ]
        if self.means:
            lines.append("  mean score per test cell:")
            lines += [f"    {cell:<32} {mean:5.2f} / {top:g}" for cell, (mean, top) in self.means.items()]
        return "\n".join(lines)


@contextlib.contextmanager
def _client(workers: int, scheduler: str | None, unsafe: bool) -> Iterator[Any]:
    """A Dask client: on the cluster at ``scheduler``, else on a local cluster of ``workers`` processes."""
    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(Client(scheduler))
        else:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    memory_limit=0,  # a worker only waits for its sandboxes, which have limits of their own
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(Client(cluster))
        client.register_plugin(ImportJudges(unsafe))
        yield client


def grade(
    root: Path,
    lab: str,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    students: Iterable[str] = (),
    force: bool = False,
    settings: autograde.Settings | None = None,
    unsafe: bool = False,
    progress: bool = True,
) -> Summary:
    """Grade every submission of ``lab`` in the nbgrader course at ``root``; see the module's docstring.

    Args:
        root: the course directory (with ``nbgrader_config.py``, ``release/``, ``submitted/``, the gradebook).
        lab: the assignment, e.g. ``"lab_2d_gan"``.
        workers: submissions graded at once on a local cluster.
        scheduler: the address of a Dask scheduler to use instead.
        students: grade only these students.
        force: regrade submissions already graded from the same file.
        settings: the sandboxes' limits and the timeouts (:class:`~coursepkg.grading.autograde.Settings`'s defaults).
        unsafe: run without the sandbox (one trusted notebook only: ``students`` must name one).
        progress: show a progress bar.

    Returns:
        What was graded, skipped and failed, with the mean per test cell.
    """

    started = time.monotonic()
    warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader's gradebook, harmless, on every submission
    settings = settings or autograde.Settings()
    students = list(students)
    if unsafe and len(students) != 1:
        raise SystemExit("--unsafe-no-sandbox grades one trusted notebook only: name its student with --student.")
    if not unsafe:
        sandbox.check_available()
    course = Course(root, lab)
    released = course.released()
    summary = Summary()
    todo = []
    for student, folder in course.submissions(students):
        state = course.work / "state" / f"{student}.json"
        if not force and state.exists():
            recorded = json.loads(state.read_text())
            current = _sha256(folder / recorded.get("file", f"{lab}.ipynb"))
            if recorded.get("source") == current and recorded.get("source"):
                summary.skipped.append(student)
                continue
        todo.append((student, folder))
    api = course.api()
    bar = tqdm(total=len(todo), desc=f"grading {lab}", unit="submission", disable=not progress, file=sys.stderr)
    recorded: list[str] = []
    with _client(workers, scheduler, unsafe) if todo else contextlib.nullcontext() as client:
        futures = {}
        for student, folder in todo:
            prepared = _stage(course, student, folder, released)
            if prepared.failure:
                _record(course, api, prepared, Result(student, None, {"failure": prepared.failure}, 0.0), summary)
                recorded.append(student)
                bar.update()
                continue
            job = client.submit(grade_job, student, dict(prepared.notebook), settings, unsafe, pure=False)
            futures[job] = prepared
        for job in as_completed(futures):
            prepared = futures[job]
            try:
                result = job.result()
            except Exception as error:  # the grader's own failure on this submission: recorded, the batch goes on
                reason = f"the autograder failed on this submission ({type(error).__name__}: {error})"[:1000]
                result = Result(prepared.student, None, {"failure": reason}, 0.0)
            _record(course, api, prepared, result, summary)
            recorded.append(prepared.student)
            bar.update()
    bar.close()
    for student in recorded:
        outcome = api.generate_feedback(lab, student, force=True)
        if not outcome["success"]:
            summary.failed.setdefault(student, "nbgrader could not generate the feedback: " + outcome["error"][-300:])
    summary.means = _means(course, recorded)
    summary.seconds = time.monotonic() - started
    return summary


def _record(course: Course, api: NbGraderAPI, prepared: _Prepared, result: Result, summary: Summary) -> None:
    """Write one result into the gradebook and ``autograded/`` through nbgrader; note it in the summary."""
    failure = prepared.failure or result.report.get("failure")
    if failure or result.notebook is None:
        graded = _failed(prepared, failure or "the autograder returned nothing")
        summary.failed[prepared.student] = failure or "the autograder returned nothing"
    else:
        graded = nbformat.from_dict(result.notebook)
        events = prepared.notes + result.report.get("events", [])
        if prepared.notes:
            _add_notes(graded, prepared.notes)
        if events:
            summary.events[prepared.student] = events
        if result.report.get("flags"):
            summary.flags[prepared.student] = result.report["flags"]
    Replay.results[prepared.student] = graded
    outcome = api.autograde(course.lab, prepared.student, force=True, create=True)
    Replay.results.pop(prepared.student, None)
    if not outcome["success"]:
        summary.failed[prepared.student] = "nbgrader could not record the grades: " + outcome["error"][-500:]
        return
    if not failure:
        summary.graded.append(prepared.student)
    state = course.work / "state" / f"{prepared.student}.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    record = {"source": prepared.source, "file": prepared.file, "failure": failure, "report": result.report}
    state.write_text(json.dumps(record, indent=1))


def _add_notes(graded: NotebookNode, notes: list[str]) -> None:
    """Put what the repair changed in the notebook's note cell, making one if there is none."""
    text = " ".join(f"{note[0].upper()}{note[1:]}." for note in notes)
    first = graded.cells[0] if graded.cells else None
    if first is not None and autograde.is_note(first):
        first.source += " " + text
    else:
        note = nbformat.v4.new_markdown_cell(
            f"**Autograder notes.** {text}", metadata={"coursepkg": {"autograder_note": True}}
        )
        graded.cells.insert(0, note)


def _means(course: Course, students: list[str]) -> dict[str, tuple[float, float]]:
    """Mean score and maximum of every autograded test cell over ``students``, from the gradebook."""
    scores: dict[str, list[float]] = {}
    top: dict[str, float] = {}
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb:
        for student in students:
            with contextlib.suppress(MissingEntry):
                for grade in gb.find_submission_notebook(course.lab, course.lab, student).grades:
                    if grade.auto_score is not None and grade.cell_type == "code":
                        scores.setdefault(grade.name, []).append(grade.score)
                        top[grade.name] = grade.max_score
    return {cell: (statistics.fmean(values), top[cell]) for cell, values in scores.items()}
