"""The README's chapter and layout tables say where everything is, and stay true to the tree."""

from __future__ import annotations

import ast
import re

import nbformat
import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
NONE = "-"


def _table(heading: str) -> list[list[str]]:
    """The rows of the first table under ``## heading``, cells stripped of backticks."""
    section = README.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip().strip("`") for cell in line.strip("|").split("|")] for line in lines[2:]]


CHAPTERS = _table("Chapters")
LAYOUT = [row for row in _table("Layout") if row[0].startswith(("coursepkg/", "tools/")) and row[0].endswith("/")]


def _title(page: str) -> str:
    notebook = nbformat.read(ROOT / page, as_version=4)
    return next(
        line[2:]
        for c in notebook.cells
        if c.cell_type == "markdown"
        for line in c.source.splitlines()
        if line.startswith("# ")
    )


def _docstring(path) -> str:
    return ast.get_docstring(ast.parse(path.read_text())) or ""


def test_every_chapter_of_the_table_of_contents_has_one_row_in_order():
    """Every notebook of the table of contents is a chapter; the Markdown pages (notation, references) are not."""
    toc = re.findall(r"file: (book/\w+)", (ROOT / "_toc.yml").read_text())
    notebooks = [page for page in toc if (ROOT / f"{page}.ipynb").exists()]
    assert [row[1] for row in CHAPTERS] == [f"{page}.ipynb" for page in notebooks]
    assert {page for page in toc if page not in notebooks} == {"book/next", "book/notation", "book/references"}
    labs = sorted(path.name for path in (ROOT / "solutions").iterdir() if path.is_dir())
    assert sorted(row[2].split("/")[1] for row in CHAPTERS if row[2] != NONE) == labs


@pytest.mark.parametrize("chapter, page, solution, folder, grader", CHAPTERS, ids=[row[1] for row in CHAPTERS])
def test_a_chapters_row_names_its_files_and_they_name_it(chapter, page, solution, folder, grader):
    assert _title(page) == chapter
    package = _docstring(ROOT / folder / "__init__.py")
    assert page.removeprefix("book/") in package or solution.split("/")[1] in package, package
    if solution == NONE:
        assert grader == NONE
        return
    assert (ROOT / solution).is_file() and _title(solution) == chapter
    assert f"``{solution.rsplit('/', 1)[0]}``" in _docstring(ROOT / grader)


def test_the_layout_table_lists_every_module_of_every_folder():
    listed = {row[0]: {name.strip().strip("`") for name in row[1].split(",")} for row in LAYOUT}
    folders = {"tools/"} | {
        f"{init.parent.relative_to(ROOT)}/"
        for init in (ROOT / "coursepkg").rglob("__init__.py")
        if init.parent.name != "coursepkg"
    }
    assert set(listed) == folders
    for folder, modules in listed.items():
        assert modules == {path.stem for path in (ROOT / folder).glob("*.py") if path.stem != "__init__"}, folder


def test_every_command_in_the_readme_names_a_real_module_or_subcommand():
    from coursepkg.__main__ import _parser

    commands = _parser()._subparsers._group_actions[0].choices
    code = "\n".join(re.findall(r"```bash\n(.*?)```", README, re.S))
    for module, rest in re.findall(r"python -m ([\w.]+)( [\w-]+)?", code):
        if module == "coursepkg":
            assert rest.strip() in commands, rest
        else:
            assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module
