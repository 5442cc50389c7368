"""Generate the book's lab pages from the instructor notebooks in ``solutions/``.

A lab page is the *student* version of a lab, made by ``nbgrader
generate_assignment`` (solutions replaced by ``raise NotImplementedError()``,
hidden tests removed), showing what a correct submission gives: the student
version runs with the solution's answers in its answer cells, so every figure a
reader sees is what a correct submission draws, and each check cell shows what
its visible checks print when they pass. Answer cells keep no output, and the
hidden tests are not in the student version, so nothing of the solution or of
the hidden tests reaches the book. The page's cells are tagged ``exercise``
(code to write), ``answer`` (a written answer) and ``check`` (a test cell), which
the book's style sheet (``book/_static/course.css``) labels for a reader.

Usage, from the repository root::

    python -m tools.release            # regenerate every lab page in book/
    python -m tools.release lab_2d_gan # just one
    python -m tools.release --check    # fail if book/ is out of date
    python -m tools.release --student-branch  # commit the student-facing tree

The launch buttons and the notebooks' Colab install line point at the branch
named in ``_config.yml`` (``student``): a copy of the committed ``HEAD``
without what only instructors may see (:data:`INSTRUCTOR_ONLY`), so that
Binder, which opens the whole repository, shows no solution.

Each page records the SHA-256 of the solution notebook it came from, so
``--check`` (and the test suite) notices a solution edited without regenerating.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient
from nbformat import NotebookNode

__all__ = [
    "answered",
    "book_page",
    "check_in_sync",
    "lab_names",
    "merge_outputs",
    "publish_student_branch",
    "repository_spec",
    "solution_digest",
    "squash_progress",
    "student_version",
    "sync_repository",
]

SOLUTIONS = "solutions"
BOOK = "book"
#: Paths left out of the student branch: solutions with hidden tests, the tests
#: (which hold wrong and right submissions), and the grading setup.
INSTRUCTOR_ONLY: tuple[str, ...] = (SOLUTIONS, "tests", "nbgrader_config.py", ".ci")
#: The setup-cell line that tells Colab where to install coursepkg from.
_REPOSITORY_LINE = re.compile(r'^COURSE_REPOSITORY = ".*"$', re.MULTILINE)


def lab_names(root: Path) -> list[str]:
    """Labs in ``solutions/``: folders ``NAME`` holding ``NAME.ipynb``."""
    return sorted(p.parent.name for p in (root / SOLUTIONS).glob("*/*.ipynb") if p.stem == p.parent.name)


def _solution_path(root: Path, lab: str) -> Path:
    path = root / SOLUTIONS / lab / f"{lab}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"No lab {lab!r}: expected {path}. Labs here: {lab_names(root)}.")
    return path


def repository_spec(root: Path) -> str:
    """``URL@BRANCH`` of the course repository, from ``_config.yml``'s ``repository`` section."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    repository = config.get("repository") or {}
    if not repository.get("url") or not repository.get("branch"):
        raise ValueError("_config.yml needs repository.url and repository.branch (see the README, 'For authors').")
    return f"{repository['url'].rstrip('/')}@{repository['branch']}"


def sync_repository(notebook: NotebookNode, spec: str) -> bool:
    """Point the setup cell's ``COURSE_REPOSITORY`` at ``spec``; return whether it changed."""
    for cell in notebook.cells:
        if cell.cell_type == "code" and _REPOSITORY_LINE.search(cell.source):
            updated = _REPOSITORY_LINE.sub(f'COURSE_REPOSITORY = "{spec}"', cell.source)
            changed = updated != cell.source
            cell.source = updated
            return changed
    return False


def solution_digest(notebook: NotebookNode) -> str:
    """SHA-256 of a notebook's cell types, sources and nbgrader metadata (outputs ignored)."""
    content = [(c.cell_type, c.source, c.metadata.get("nbgrader", {})) for c in notebook.cells]
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _tool_env() -> dict[str, str]:
    # nbgrader runs alembic from PATH: make this interpreter's scripts visible.
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}


def student_version(root: Path, lab: str) -> NotebookNode:
    """Run ``nbgrader generate_assignment`` on a lab in a scratch course; return the release.

    Args:
        root: repository root (holds ``nbgrader_config.py`` and ``solutions/``).
        lab: the lab's name.

    Returns:
        The student notebook, as nbgrader writes it to ``release/``.
    """
    source = _solution_path(root, lab)
    with tempfile.TemporaryDirectory(prefix="coursepkg-release-") as tmp:
        course = Path(tmp)
        shutil.copy(root / "nbgrader_config.py", course)
        shutil.copytree(source.parent, course / SOLUTIONS / lab)
        result = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", lab, "--force"],
            cwd=course,
            env=_tool_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        release = course / "release" / lab / f"{lab}.ipynb"
        if result.returncode != 0 or not release.exists():
            raise RuntimeError(f"nbgrader generate_assignment {lab} failed:\n{result.stdout}\n{result.stderr}")
        return nbformat.read(release, as_version=4)


def _execute(notebook: NotebookNode, cwd: Path, timeout: int) -> NotebookNode:
    executed = copy.deepcopy(notebook)
    NotebookClient(
        executed, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    return executed


def squash_progress(outputs: list[NotebookNode]) -> list[NotebookNode]:
    """Merge consecutive stream outputs and keep what a terminal would show.

    A progress bar redraws its line with carriage returns and arrives in many
    stream messages; the book should show its final state once, as Jupyter does.
    """
    merged: list[NotebookNode] = []
    for output in outputs:
        if (
            output.output_type == "stream"
            and merged
            and merged[-1].output_type == "stream"
            and merged[-1].name == output.name
        ):
            merged[-1].text += output.text
        else:
            merged.append(copy.deepcopy(output))
    for output in merged:
        if output.output_type == "stream":
            lines = output.text.split("\n")
            output.text = "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in lines)
    return [o for o in merged if o.output_type != "stream" or o.text.strip()]


def answered(student: NotebookNode, solution: NotebookNode) -> NotebookNode:
    """The student version with the solution's answers in its answer cells (its test cells as released).

    Raises:
        ValueError: if the two notebooks do not have the same answer cells.
    """
    answers = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in solution.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    filled = copy.deepcopy(student)
    for cell in filled.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            if grade_id not in answers:
                raise ValueError(f"The student version has an answer cell {grade_id!r} that the solution lacks.")
            cell.source = answers[grade_id]
    return filled


def _tag(cell: NotebookNode) -> str | None:
    """The tag a book page gives each kind of nbgrader cell, for the style sheet to label."""
    nbgrader = cell.metadata.get("nbgrader", {})
    if nbgrader.get("solution"):
        return "exercise" if cell.cell_type == "code" else "answer"
    if nbgrader.get("grade") and cell.cell_type == "code":
        return "check"
    return None


def merge_outputs(student: NotebookNode, executed: NotebookNode) -> NotebookNode:
    """Copy the outputs of the answered student version onto the student version, cell by cell.

    Answer cells get none (their output could show the solution); check cells get what
    their visible checks print when the answers are right; every cell of nbgrader's
    gets its tag (:func:`_tag`).

    Raises:
        ValueError: if the two notebooks do not have the same cells.
    """
    ids = [c.get("id") for c in student.cells]
    if ids != [c.get("id") for c in executed.cells]:
        raise ValueError("The student version and the executed solution have different cells.")
    page = copy.deepcopy(student)
    for cell, source in zip(page.cells, executed.cells, strict=True):
        tag = _tag(cell)
        if tag:
            cell.metadata["tags"] = sorted({*cell.metadata.get("tags", []), tag})
        if cell.cell_type != "code":
            continue
        if tag == "exercise":
            cell.outputs, cell.execution_count = [], None
        else:
            cell.outputs, cell.execution_count = squash_progress(source.outputs), source.execution_count
    return page


def book_page(root: Path, lab: str, *, timeout: int = 600) -> NotebookNode:
    """Build the book page of a lab: the student version with the solution's outputs.

    Also points the solution's setup cell at the repository of ``_config.yml``
    (rewriting the solution notebook if that changed).
    """
    path = _solution_path(root, lab)
    solution = nbformat.read(path, as_version=4)
    if sync_repository(solution, repository_spec(root)):
        nbformat.write(solution, path)
    student = student_version(root, lab)
    page = merge_outputs(student, _execute(answered(student, solution), path.parent, timeout))
    page.metadata["coursepkg"] = {
        "generated_from": f"{SOLUTIONS}/{lab}/{lab}.ipynb",
        "solution_sha256": solution_digest(solution),
    }
    return page


def check_in_sync(root: Path, lab: str) -> list[str]:
    """Say how ``book/LAB.ipynb`` differs from what regenerating it would give (sources only).

    Returns:
        Problems, one sentence each; empty when the page is up to date.
    """
    solution = nbformat.read(_solution_path(root, lab), as_version=4)
    page_path = root / BOOK / f"{lab}.ipynb"
    if not page_path.exists():
        return [f"{page_path} is missing."]
    page = nbformat.read(page_path, as_version=4)
    problems = []
    if page.metadata.get("coursepkg", {}).get("solution_sha256") != solution_digest(solution):
        problems.append(f"{page_path} was generated from another version of {SOLUTIONS}/{lab}/{lab}.ipynb.")
    if sync_repository(copy.deepcopy(solution), repository_spec(root)):
        problems.append(f"{SOLUTIONS}/{lab}/{lab}.ipynb installs coursepkg from another repository than _config.yml's.")
    expected = [(c.cell_type, c.source, c.metadata.get("nbgrader")) for c in student_version(root, lab).cells]
    actual = [(c.cell_type, c.source, c.metadata.get("nbgrader")) for c in page.cells]
    if expected != actual:
        problems.append(f"{page_path} differs from the student version nbgrader generates now.")
    return problems


def _git(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def publish_student_branch(root: Path) -> str:
    """Commit ``HEAD`` minus :data:`INSTRUCTOR_ONLY` onto the branch of ``_config.yml``.

    Works on git objects only: the working tree and the index stay as they are.

    Returns:
        The new commit's hash.
    """
    branch = repository_spec(root).rsplit("@", 1)[1]
    head = _git(root, "rev-parse", "HEAD")
    if branch == _git(root, "rev-parse", "--abbrev-ref", "HEAD"):
        raise ValueError(f"_config.yml's repository.branch is {branch!r}, the branch checked out: name another one.")
    with tempfile.TemporaryDirectory(prefix="coursepkg-student-") as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp, "index"))}
        _git(root, "read-tree", head, env=env)
        _git(root, "rm", "-r", "--cached", "--quiet", "--ignore-unmatch", *INSTRUCTOR_ONLY, env=env)
        tree = _git(root, "write-tree", env=env)
    parent = subprocess.run(
        ["git", "rev-parse", "--quiet", "--verify", f"refs/heads/{branch}"], cwd=root, capture_output=True, text=True
    ).stdout.strip()
    commit = _git(
        root, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", f"Student version of {head[:12]}"
    )
    _git(root, "update-ref", f"refs/heads/{branch}", commit)
    return commit


def main(argv: list[str] | None = None) -> int:
    """Command line: regenerate lab pages, check them, or publish the student branch."""
    parser = argparse.ArgumentParser(prog="python -m tools.release", description=__doc__.split("\n\n")[0])
    parser.add_argument("labs", nargs="*", help="labs to regenerate (default: all in solutions/)")
    parser.add_argument("--check", action="store_true", help="only check that book/ is up to date")
    parser.add_argument(
        "--student-branch",
        action="store_true",
        help="commit HEAD without the instructor-only files to the launch branch",
    )
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: .)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    root = args.root.resolve()
    labs = args.labs or lab_names(root)
    if args.student_branch:
        commit = publish_student_branch(root)
        branch = repository_spec(root).rsplit("@", 1)[1]
        print(f"{branch} is now {commit[:12]}: push it with `git push origin {branch}`.")
        return 0
    if args.check:
        problems = [p for lab in labs for p in check_in_sync(root, lab)]
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("Run `make release` to regenerate the lab pages.", file=sys.stderr)
        return 1 if problems else 0
    for lab in labs:
        print(f"{lab}: executing the solution and generating the student version ...", flush=True)
        nbformat.write(book_page(root, lab), root / BOOK / f"{lab}.ipynb")
        print(f"{lab}: wrote {BOOK}/{lab}.ipynb", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
