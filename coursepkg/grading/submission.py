"""Read a submitted notebook, whatever state it comes in, and repair it from the instructor's version.

nbgrader drops a submission it cannot read (invalid JSON, a wrong file name) and
stops the whole batch on some (metadata of an unknown schema). Here each submission
is read on its own and put back in the shape of the released notebook before
nbgrader sees it:

* the notebook is found by name, or as the only notebook of the folder
  (:func:`find_notebook`); other files are never graded, copied or returned;
* it is parsed leniently (:func:`read_notebook`): nbformat 3 is converted, and a cell
  list that fails validation is rebuilt from what can be read of each cell;
* its cells are matched with the released notebook's by nbgrader ``grade_id``
  (:func:`repair`): the instructor's cells (text, setup, demonstrations, tests) come
  back as released, whatever was edited, re-flagged or deleted; the student's
  answers stay in their answer cells; a duplicated cell is dropped; a cell with an
  unknown ``grade_id`` (a renamed one) and every cell the student added are kept as
  plain cells, so their code still runs; strange metadata is dropped.

What cannot be read at all is a :class:`Unreadable` with a reason: the submission is
graded zero with that reason in the report and the feedback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

__all__ = ["MAX_BYTES", "Unreadable", "find_notebook", "read_notebook", "repair"]

#: The largest notebook file read, in bytes.
MAX_BYTES = 64 << 20


class Unreadable(ValueError):
    """A submission that cannot be graded; the message says why, in words for the student and the instructor."""


def find_notebook(folder: Path, name: str) -> tuple[Path, list[str]]:
    """The notebook to grade in a student's submission folder, and notes on what else was there.

    Args:
        folder: ``submitted/<student>/<lab>``.
        name: the notebook's expected name, without ``.ipynb``.

    Raises:
        Unreadable: no notebook at all, or several and none with the expected name.
    """
    notes = []
    expected = folder / f"{name}.ipynb"
    notebooks = sorted(p for p in folder.glob("*.ipynb") if p.is_file() and not p.is_symlink())
    others = sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p not in notebooks and p.name != "timestamp.txt" and ".ipynb_checkpoints" not in p.parts and p.is_file()
    )
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        notes.append(f"files submitted besides the notebook were ignored: {shown}")
    if expected in notebooks:
        return expected, notes
    if len(notebooks) == 1:
        notes.append(f"the notebook was submitted as {notebooks[0].name}; it was graded as {expected.name}")
        return notebooks[0], notes
    if not notebooks:
        raise Unreadable(f"no notebook was submitted (expected {expected.name})")
    raise Unreadable(
        f"{len(notebooks)} notebooks were submitted and none is named {expected.name}: "
        + ", ".join(p.name for p in notebooks[:5])
    )


def read_notebook(path: Path) -> tuple[NotebookNode, list[str]]:
    """Read a notebook file leniently; return it (nbformat 4) and notes on what had to be fixed.

    Raises:
        Unreadable: the file is too large, empty, not JSON, or not a notebook at all.
    """
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise Unreadable(f"the notebook is {size / 2**20:.0f} MiB; the autograder reads at most {MAX_BYTES >> 20} MiB")
    if size == 0:
        raise Unreadable("the notebook file is empty")
    try:
        data = json.loads(path.read_bytes().decode("utf-8", errors="replace"))
    except json.JSONDecodeError as error:
        raise Unreadable(f"the notebook is not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells", data.get("worksheets")), list):
        raise Unreadable("the file is JSON but not a Jupyter notebook (it has no list of cells)")
    notes = []
    if data.get("nbformat") != 4:
        notes.append(f"the notebook was in nbformat {data.get('nbformat')!r}; it was converted to nbformat 4")
    try:
        notebook = nbformat.reads(json.dumps(data), as_version=4)
        nbformat.validate(notebook)
    except Exception:  # a notebook that nbformat will not take as it is: rebuild it from its cells
        notebook = _rebuilt(data)
        notes.append("the notebook's structure was invalid; it was rebuilt from its cells")
    return notebook, notes


def _rebuilt(data: Mapping[str, Any]) -> NotebookNode:
    """A valid notebook from whatever cells of ``data`` have a type and a source."""
    cells = data.get("cells")
    if not isinstance(cells, list):  # nbformat 3 keeps them in worksheets
        sheets = data.get("worksheets") or [{}]
        cells = sheets[0].get("cells", []) if isinstance(sheets[0], dict) else []
    rebuilt = []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", cell.get("input", ""))
        source = "".join(s for s in source if isinstance(s, str)) if isinstance(source, list) else str(source)
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        kind = cell.get("cell_type")
        if kind == "code":
            rebuilt.append(nbformat.v4.new_code_cell(source, metadata=metadata))
        elif kind in ("markdown", "heading"):
            rebuilt.append(nbformat.v4.new_markdown_cell(source, metadata=metadata))
        elif kind == "raw":
            rebuilt.append(nbformat.v4.new_raw_cell(source, metadata=metadata))
    return nbformat.v4.new_notebook(cells=rebuilt)


def _grade_id(cell: Mapping[str, Any]) -> str | None:
    nbgrader = cell.get("metadata", {}).get("nbgrader")
    grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
    return grade_id if isinstance(grade_id, str) else None


#: What makes an instructor's cell what it is; nbgrader's checksums and the like may differ harmlessly.
_FLAGS = ("grade", "solution", "locked", "task", "points", "grade_id")


def _identity(cell: Mapping[str, Any]) -> tuple[Any, ...]:
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    source = cell.get("source", "")
    return (cell.get("cell_type"), source if isinstance(source, str) else "".join(source)) + tuple(
        nbgrader.get(flag) for flag in _FLAGS
    )


def _plain_cell(cell: NotebookNode) -> NotebookNode:
    """A cell the student added (or one whose nbgrader identity is unknown), with no metadata."""
    source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
    if cell.cell_type == "code":
        return nbformat.v4.new_code_cell(source)
    if cell.cell_type == "raw":
        return nbformat.v4.new_raw_cell(source)
    return nbformat.v4.new_markdown_cell(source)


def repair(notebook: NotebookNode, released: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """Put a submission back in the shape of the released notebook; return it and notes on what changed.

    Args:
        notebook: the student's notebook, as :func:`read_notebook` gives it.
        released: the instructor's released version (``release/<lab>/<lab>.ipynb``).

    Returns:
        A valid notebook: the released notebook's cells, in the student's order, with the
        student's answers in the answer cells, the student's added cells kept, and the
        released notebook's metadata.
    """
    template = {gid: cell for cell in released.cells if (gid := _grade_id(cell))}
    order = [gid for cell in released.cells if (gid := _grade_id(cell))]
    seen: set[str] = set()
    notes: list[str] = []
    cells: list[NotebookNode] = []
    changed = 0
    for cell in notebook.cells:
        grade_id = _grade_id(cell)
        if grade_id in template and grade_id not in seen:
            seen.add(grade_id)
            original = template[grade_id]
            restored = nbformat.from_dict(original)
            if original.metadata["nbgrader"].get("solution"):
                restored.source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
            elif _identity(cell) != _identity(original):
                changed += 1
            cells.append(restored)
        elif grade_id in template:
            notes.append(f"a second copy of cell {grade_id} was dropped")
        else:
            if grade_id is not None:
                notes.append(f"cell {grade_id!r} is not a cell of the assignment; it was kept as a cell of yours")
            cells.append(_plain_cell(cell))
    if changed:
        notes.append(f"{changed} of the instructor's cells were edited; they were restored")
    for position, grade_id in enumerate(order):
        if grade_id in seen:
            continue
        before = {order[i] for i in range(position)}
        at = max((i + 1 for i, cell in enumerate(cells) if _grade_id(cell) in before), default=0)
        cells.insert(at, nbformat.from_dict(template[grade_id]))
        notes.append(f"cell {grade_id} was missing; it was put back as released")
    repaired = nbformat.v4.new_notebook(cells=cells, metadata=nbformat.from_dict(released.metadata))
    nbformat.validate(repaired)
    return repaired, notes
