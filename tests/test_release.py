"""book/ stays in sync with solutions/, and lab pages show outputs only where they may."""

from __future__ import annotations

import shutil
import subprocess

import nbformat
import pytest
from nbformat.v4 import new_output

from tests.conftest import ROOT
from tests.leaks import leaks
from tools.release import (
    INSTRUCTOR_ONLY,
    check_in_sync,
    lab_names,
    main,
    publish_student_branch,
    repository_spec,
    squash_progress,
)


def test_every_lab_is_in_the_book_and_the_table_of_contents():
    labs = lab_names(ROOT)
    assert "lab_2d_gan" in labs
    toc = (ROOT / "_toc.yml").read_text()
    assert all(f"file: book/{lab}" in toc for lab in labs)


@pytest.mark.parametrize("lab", lab_names(ROOT))
def test_book_pages_are_what_regenerating_would_give(lab):
    assert check_in_sync(ROOT, lab) == []


@pytest.fixture
def scratch_root(tmp_path):
    for name in ("_config.yml", "nbgrader_config.py"):
        shutil.copy(ROOT / name, tmp_path)
    for name in ("solutions", "book"):
        shutil.copytree(ROOT / name, tmp_path / name)
    return tmp_path


def test_sync_check_notices_an_edited_solution_and_another_repository(scratch_root, capsys):
    path = scratch_root / "solutions" / "lab_2d_gan" / "lab_2d_gan.ipynb"
    solution = nbformat.read(path, as_version=4)
    solution.cells[0].source += "\nOne more sentence."
    nbformat.write(solution, path)
    config = scratch_root / "_config.yml"
    config.write_text(
        config.read_text().replace("https://github.com/gan-course/gan-course", "https://github.com/me/fork")
    )
    problems = check_in_sync(scratch_root, "lab_2d_gan")
    assert any("generated from another version" in p for p in problems)
    assert any("differs from the student version" in p for p in problems)
    assert any("another repository" in p for p in problems)
    assert repository_spec(scratch_root) == "https://github.com/me/fork@student"
    assert main(["lab_2d_gan", "--check", "--root", str(scratch_root)]) == 1
    assert "make release" in capsys.readouterr().err


def test_unknown_lab_and_missing_repository_say_what_to_do(scratch_root):
    with pytest.raises(FileNotFoundError, match="No lab 'lab_nope'.*Labs here: \\['lab_2d_gan', "):
        check_in_sync(scratch_root, "lab_nope")
    assert main(["lab_nope", "--root", str(scratch_root)]) == 2
    (scratch_root / "_config.yml").write_text("title: x\n")
    with pytest.raises(ValueError, match="repository.url and repository.branch"):
        repository_spec(scratch_root)


@pytest.mark.parametrize("lab", ["lab_2d_gan", "lab_js_divergence", "lab_mnist_gan", "lab_lsi"])
def test_lab_pages_show_what_a_correct_answer_gives_and_no_answer(lab):
    page = nbformat.read(ROOT / "book" / f"{lab}.ipynb", as_version=4)
    figures, passes = 0, 0
    for cell in page.cells:
        nbgrader = cell.metadata.get("nbgrader", {})
        tags = set(cell.metadata.get("tags", []))
        if nbgrader.get("solution"):
            assert tags >= {"exercise" if cell.cell_type == "code" else "answer"}, nbgrader["grade_id"]
        if cell.cell_type != "code":
            continue
        if nbgrader.get("solution"):
            # An answer cell shows nothing: its output could show the solution.
            assert cell.outputs == [] and "NotImplementedError" in cell.source, nbgrader["grade_id"]
        elif nbgrader.get("grade"):
            # A check cell shows what its visible checks print for a right answer, and nothing else.
            assert "check" in tags, nbgrader["grade_id"]
            text = "".join(o.get("text", "") for o in cell.outputs)
            assert [o.output_type for o in cell.outputs] == ["stream"] * len(cell.outputs), nbgrader["grade_id"]
            assert all(line.startswith("✔") for line in text.splitlines()), nbgrader["grade_id"]
            passes += len(text.splitlines())
        figures += sum("image/png" in o.get("data", {}) for o in cell.outputs)
        assert not any(o.output_type == "error" for o in cell.outputs)
    assert figures >= 4 and passes >= 4


def test_squash_progress_keeps_the_last_state_of_a_progress_bar():
    outputs = [
        new_output("stream", name="stderr", text="\rtraining:   0%| 0/3"),
        new_output("stream", name="stderr", text="\rtraining:  50%| 1/3"),
        new_output("stream", name="stderr", text="\rtraining: 100%| 3/3\n"),
        new_output("stream", name="stdout", text="done\n"),
        new_output("display_data", data={"text/plain": "figure"}),
    ]
    squashed = squash_progress(outputs)
    assert [o.output_type for o in squashed] == ["stream", "stream", "display_data"]
    assert squashed[0].text == "training: 100%| 3/3\n"
    assert squashed[1].text == "done\n"


def test_student_branch_holds_the_course_without_solutions_or_tests(tmp_path, secrets):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    commit = publish_student_branch(clone)
    files = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", commit], cwd=clone, capture_output=True, text=True, check=True
    ).stdout.split()
    assert {"book/lab_2d_gan.ipynb", "_config.yml", "requirements.txt", "coursepkg/toy2d/gan.py"} <= set(files)
    assert [f for f in files if f.split("/")[0] in INSTRUCTOR_ONLY] == []
    # coursepkg holds the public reference implementations, whose lines the
    # solutions naturally share; every other file must hold none of them. Only
    # notebooks must be free of nbgrader's markers (the README explains them).
    for name in files:
        text = subprocess.run(["git", "show", f"{commit}:{name}"], cwd=clone, capture_output=True, check=True).stdout
        found = leaks(
            text.decode(errors="replace"),
            frozenset() if name.startswith("coursepkg/") else secrets,
            markers=name.endswith(".ipynb"),
        )
        assert found == [], name
    # Publishing again stacks a new commit on the branch.
    again = publish_student_branch(clone)
    parent = subprocess.run(["git", "rev-parse", f"{again}^"], cwd=clone, capture_output=True, text=True).stdout.strip()
    assert parent == commit
