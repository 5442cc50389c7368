"""The book's pages agree with each other, without building it: titles, points, citations, quizzes, paths.

The built pages are checked in a browser by tests/test_book.py.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from tests.conftest import ROOT

TOC = re.findall(r"file: (book/\w+)", (ROOT / "_toc.yml").read_text())
CHAPTERS = [page for page in TOC if (ROOT / f"{page}.ipynb").exists()]
INTRO = (ROOT / "book" / "intro.md").read_text()


def _text(page: str) -> str:
    """A page's Markdown: the file, or the notebook's Markdown cells."""
    if (ROOT / f"{page}.md").exists():
        return (ROOT / f"{page}.md").read_text()
    notebook = nbformat.read(ROOT / f"{page}.ipynb", as_version=4)
    return "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def _title(page: str) -> str:
    return next(line[2:] for line in _text(page).splitlines() if line.startswith("# "))


def _points(lab: str) -> float:
    notebook = nbformat.read(ROOT / "solutions" / lab / f"{lab}.ipynb", as_version=4)
    return sum(float(cell.metadata.get("nbgrader", {}).get("points", 0)) for cell in notebook.cells)


@pytest.mark.parametrize("page", CHAPTERS)
def test_the_intro_names_each_chapter_as_its_page_does(page):
    link = re.search(rf"\[([^\]]+)\]\({page.removeprefix('book/')}\.ipynb\)", INTRO)
    assert link, f"the intro's table has no row for {page}"
    assert link.group(1) == _title(page)


@pytest.mark.parametrize("lab", sorted(path.name for path in (ROOT / "solutions").iterdir() if path.is_dir()))
def test_every_graded_chapter_is_a_lab_with_its_points(lab):
    assert _title(f"book/{lab}").startswith("Lab: ")
    points = _points(lab)
    in_intro = re.search(rf"\]\({lab}\.ipynb\) \({points:g} points\)", INTRO)
    assert in_intro, f"the intro should give {lab} {points:g} points"
    assert f"{points:g} points" in _text(f"book/{lab}").split("\n## ")[0], "the lab's introduction states its points"


@pytest.mark.parametrize("page", CHAPTERS)
def test_every_chapter_ends_with_a_quiz_whose_answers_are_hidden(page):
    text = _text(page)
    assert re.search(r"```\{admonition\} Answers\n:class: dropdown", text), f"{page} has no self-check quiz"


def test_every_citation_is_in_the_bibliography_and_every_entry_is_cited():
    keys = set(re.findall(r"^@\w+\{(\w+),", (ROOT / "book" / "references.bib").read_text(), re.M))
    cited = set()
    for page in TOC:
        for group in re.findall(r"\{cite(?::[tp])?\}`([^`]+)`", _text(page)):
            cited.update(key.strip() for key in group.split(","))
    assert cited - keys == set()
    assert keys - cited == set()


@pytest.mark.parametrize("page", CHAPTERS)
def test_no_machine_path_in_a_pages_outputs(page):
    notebook = nbformat.read(ROOT / f"{page}.ipynb", as_version=4)
    outputs = str([cell.get("outputs", []) for cell in notebook.cells])
    assert re.findall(r"/(?:tmp|root|home|work)/[\w./-]+", outputs) == []
