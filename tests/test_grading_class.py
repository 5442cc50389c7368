"""Grading a whole class: honest work, broken files and attacks on the grader, in one batch (tests/hostile_js.py).

One scratch course of the Jensen-Shannon lab, graded by ``python -m coursepkg grade``'s
engine on a Dask ``LocalCluster`` of two workers. Asserted: the batch finishes; every
exercise gets exactly its points (nothing unearned, nothing lost to another exercise's
mistake or to another student); nothing outside a sandbox's scratch changed; no
feedback holds a hidden test, a solution, the gradebook or another student's work;
the network was never reached; no process outlived its sandbox.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import psutil
import pytest
import torch
from nbgrader.api import Gradebook

from coursepkg.grading import autograde, batch, isolation, sandbox
from coursepkg.grading.lab_js_divergence import CHECKS
from coursepkg.grading.sandbox import GiB
from tests.conftest import ROOT
from tests.grading_helpers import run_program, solution
from tests.hostile_js import SUBMISSIONS, TESTS, Submission

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grading-class")]

LAB = "lab_js_divergence"
#: Limits just above what an honest notebook of the lab needs, so that the attacks stay small.
SETTINGS = autograde.Settings(
    limits=sandbox.Limits(memory=2 * GiB, deadline=180),
    cell_timeout=15,
    timeouts=isolation.Timeouts(cell=10, probe=60, total=180),
)
_MARKERS = re.compile(r"[ \t]*### (BEGIN|END) SOLUTION\n")


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True, text=True, check=True
    )


def new_course(root: Path) -> Path:
    """A scratch nbgrader course with the lab generated."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions" / LAB, root / "solutions" / LAB)
    nbgrader(root, "generate_assignment", LAB, "--force")
    return root


def honest_answers() -> dict[str, str]:
    """The solution's answers as a student would hand them in: the code without nbgrader's markers, a text of theirs."""
    answers = {
        c.metadata["nbgrader"]["grade_id"]: _MARKERS.sub("", c.source)
        for c in solution(LAB).cells
        if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"
    }
    return {**answers, "derivation": "For a fixed G, V is maximised pointwise: D*(x) = p_data / (p_data + p_G)."}


def _recorded_kl_observations() -> str:
    """What the KL probe records for the right answer, as a student could record it at home (base64)."""
    namespace, _ = run_program(["import math, torch", honest_answers()["kl_solution"]])
    buffer = io.BytesIO()
    torch.save(CHECKS["kl_divergence"].observe(namespace), buffer)
    return base64.b64encode(buffer.getvalue()).decode()


def write_submission(course: Path, student: str, submission: Submission, *, port: int) -> None:
    folder = course / "submitted" / student / LAB
    folder.mkdir(parents=True)
    (folder / "timestamp.txt").write_text("2026-12-01 10:00:00.000000 UTC")
    for name, data in submission.files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    target = folder / (submission.filename or f"{LAB}.ipynb")
    if submission.raw is not None:
        target.write_bytes(submission.raw)
        return
    notebook = nbformat.read(course / "release" / LAB / f"{LAB}.ipynb", as_version=4)
    answers = {**honest_answers(), **submission.answers}
    fills = {"course": str(course), "port": str(port), "marker": f"MARKER-{student}", "recorded": ""}
    if "{recorded}" in "".join(source for _, source in submission.added):
        fills["recorded"] = _recorded_kl_observations()
    cells = [nbformat.v4.new_markdown_cell(f"Handed in by MARKER-{student}")]
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        cells += [nbformat.v4.new_code_cell(_fill(s, fills)) for before, s in submission.added if before == grade_id]
        if grade_id in answers and cell.metadata["nbgrader"].get("solution"):
            cell.source = answers[grade_id]
        cells.append(cell)
    notebook.cells = cells
    data = json.loads(nbformat.writes(notebook))
    if submission.edit:
        submission.edit(data)
    target.write_text(json.dumps(data))


def _fill(source: str, fills: dict[str, str]) -> str:
    for name, value in fills.items():
        source = source.replace("{" + name + "}", value)
    return source


def _hashes(*folders: Path) -> dict[str, str]:
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


class _Listener:
    """A server on the host's loopback that counts the connections it gets."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self.socket.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.socket.close()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded once: the course, the batch's summary, the listener, the files before grading."""
    course = new_course(tmp_path_factory.mktemp("class") / "course")
    listener = _Listener()
    for student, submission in SUBMISSIONS.items():
        write_submission(course, student, submission, port=listener.port)
    package = ROOT / "coursepkg"
    before = _hashes(course / "solutions", course / "submitted", course / "release", package)
    before[str(course / "nbgrader_config.py")] = hashlib.sha256(
        (course / "nbgrader_config.py").read_bytes()
    ).hexdigest()
    summary = batch.grade(course, LAB, workers=2, settings=SETTINGS, progress=False)
    listener.close()
    yield course, summary, listener, before


def _scores(course: Path, student: str) -> dict[str, float]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook(LAB, LAB, student)
        return {grade.name: grade.score for grade in notebook.grades if grade.name in TESTS}


def _feedback(course: Path, student: str) -> str:
    return (course / "feedback" / student / LAB / f"{LAB}.html").read_text()


def test_the_batch_finishes_and_only_unreadable_files_fail_with_their_reason(graded):
    course, summary, _, _ = graded
    assert set(summary.graded) | set(summary.failed) == set(SUBMISSIONS)
    assert summary.failed == {
        "invalid_json": "the notebook is not valid JSON (Expecting value at line 1)",
        "empty_file": "the notebook file is empty",
    }


@pytest.mark.parametrize("student", SUBMISSIONS)
def test_every_exercise_gets_exactly_its_points(graded, student):
    course, _, _, _ = graded
    lost = SUBMISSIONS[student].lost
    assert _scores(course, student) == {test: 0.0 if test in lost else 2.0 for test in TESTS}


@pytest.mark.parametrize("student", [s for s, sub in SUBMISSIONS.items() if sub.feedback])
def test_the_feedback_says_what_happened(graded, student):
    course, _, _, _ = graded
    assert SUBMISSIONS[student].feedback.lower() in _feedback(course, student).lower()


def test_nothing_outside_a_sandbox_changed(graded):
    course, _, _, before = graded
    package = ROOT / "coursepkg"
    after = _hashes(course / "solutions", course / "submitted", course / "release", package)
    after[str(course / "nbgrader_config.py")] = hashlib.sha256((course / "nbgrader_config.py").read_bytes()).hexdigest()
    assert after == before
    assert not Path("/tmp/hijacked").exists()
    allowed = {"nbgrader_config.py", "solutions", "release", "submitted", "autograded", "feedback", "gradebook.db"}
    assert {path.name for path in course.iterdir()} <= allowed | {batch.WORK_DIR}


def _databases_shown(text: str) -> list[str | None]:
    """Each SQLite file a page shows as Python prints bytes (``/path b'SQLite format 3...``): its path, or None.

    Linear in the page's length: a pattern that backtracks over a page's long base64 blobs took minutes.
    """
    paths: list[str | None] = []
    for shown in re.finditer("SQLite format 3", text):
        if not text.endswith(" b'", 0, shown.start()):
            paths.append(None)
            continue
        start = end = shown.start() - len(" b'")
        while start > 0 and not text[start - 1].isspace() and text[start - 1] != "'":
            start -= 1
        token = text[start:end]  # the word before " b'", from its first slash on
        paths.append(token[token.index("/") :] if "/" in token else None)
    return paths


def test_a_shown_database_is_found_with_its_path_between_long_blobs():
    blob = base64.b64encode(bytes(range(256)) * 2_000).decode()  # 680 kB, slashes and no spaces
    page = f"{blob} x /srv/gradebook.db b'SQLite format 3\\x00' {blob}\nb'SQLite format 3' {blob}"
    assert _databases_shown(page) == ["/srv/gradebook.db", None]


def test_no_feedback_holds_a_hidden_test_a_solution_the_gradebook_or_another_students_work(graded):
    course, _, _, _ = graded
    hidden = re.findall(r'grader\.check\("(\w+_details)"', "".join(cell.source for cell in solution(LAB).cells))
    assert hidden
    for student in SUBMISSIONS:
        page = _feedback(course, student)
        # (The marker itself may be in a page: the intruder prints nbgrader's own tests, public files that hold it,
        # and the test gradebook nbgrader's package ships. No other database may show.)
        databases = _databases_shown(html.unescape(page))
        assert None not in databases, student
        assert [path for path in databases if "/site-packages/nbgrader/tests/" not in path] == [], student
        assert not [name for name in hidden if f"grader.check(&quot;{name}" in page or f'"{name}", globals' in page]
        assert "Rubric for the grader" not in page, student  # the instructor's model answer and rubric
        others = {m for m in re.findall(r"MARKER-(\w+)", page) if m != student}
        assert others == set(), student


def test_the_network_was_never_reached(graded):
    _, _, listener, _ = graded
    assert listener.connections == 0


def test_no_process_outlives_its_sandbox(graded):
    """The class started hundreds of ``sleep 600`` (tests/hostile_js.py, ``_PROCESSES``): none is left."""
    left = []
    for process in psutil.process_iter(["cmdline"]):
        if process.info["cmdline"] == ["sleep", "600"]:
            left.append(process.pid)
    assert left == []


def test_a_near_copy_of_the_reference_is_flagged_for_review_not_graded_down(graded):
    _, summary, _, _ = graded
    assert set(summary.flags) == {"copied_reference"}
    (flag,) = summary.flags["copied_reference"]
    assert flag["cell"] == "kl_solution" and flag["similarity"] >= 0.8


def test_the_summary_gives_the_mean_of_every_exercise(graded):
    _, summary, _, _ = graded
    lost = {test: sum(test in s.lost for s in SUBMISSIONS.values()) for test in TESTS}
    for test in TESTS:
        mean, top = summary.means[test]
        assert (mean, top) == (pytest.approx(2.0 * (len(SUBMISSIONS) - lost[test]) / len(SUBMISSIONS)), 2.0)
    assert "mean score per test cell" in summary.format()


def test_manual_grading_export_and_feedback_work_on_the_graded_class(graded):
    course, _, _, _ = graded
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade = gb.find_grade("derivation", LAB, LAB, "honest_a")
        assert grade.needs_manual_grade
        grade.manual_score = 3.0
        gb.db.commit()
    nbgrader(course, "export", "--to", str(course / "grades.csv"))
    rows = {row["student_id"]: row for row in csv.DictReader((course / "grades.csv").open())}
    assert float(rows["honest_a"]["score"]) == float(rows["honest_a"]["max_score"]) == 13.0
    assert float(rows["blank"]["score"]) == 0.0
    nbgrader(course, "generate_feedback", LAB, "--student", "honest_a", "--force")
    feedback = _feedback(course, "honest_a")
    assert "derivation" in feedback and "### BEGIN HIDDEN TESTS" not in feedback


def test_grading_again_skips_what_is_done_and_resumes_what_is_not(graded):
    course, _, _, _ = graded
    scores = {student: _scores(course, student) for student in ("honest_a", "blank")}
    (course / batch.WORK_DIR / LAB / "state" / "blank.json").unlink()  # as if the batch stopped before it
    again = batch.grade(course, LAB, workers=1, settings=SETTINGS, progress=False)
    assert again.graded == ["blank"]
    assert set(again.skipped) == set(SUBMISSIONS) - {"blank"}  # the unreadable files too: the same file, the same zero
    assert {student: _scores(course, student) for student in scores} == scores


def test_the_walls_hold_for_plain_nbgrader_autograde_too(tmp_path):
    course = new_course(tmp_path / "course")
    students = ("forged_scores", "tampered")
    for student in students:
        write_submission(course, student, SUBMISSIONS[student], port=9)
    nbgrader(course, "autograde", LAB, "--create", "--force")
    for student in students:
        lost = SUBMISSIONS[student].lost
        assert _scores(course, student) == {test: 0.0 if test in lost else 2.0 for test in TESTS}, student
