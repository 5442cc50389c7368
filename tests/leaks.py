"""Find solution code and hidden tests in what students and readers can see."""

from __future__ import annotations

import functools
import re

import nbformat

from tests.conftest import ROOT
from tools.release import lab_names, student_version

MARKERS = (
    "BEGIN SOLUTION",
    "END SOLUTION",
    "BEGIN HIDDEN TESTS",
    "END HIDDEN TESTS",
    "BEGIN MARK SCHEME",
    "Rubric for the grader",
)
BLOCK = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.DOTALL)


@functools.cache
def secret_lines() -> frozenset[str]:
    """Lines of solutions and hidden tests that the student versions do not contain."""
    # Whatever a student version shows, even inside a longer line, is public.
    public = "\n".join(cell.source for lab in lab_names(ROOT) for cell in student_version(ROOT, lab).cells)
    secrets: set[str] = set()
    for lab in lab_names(ROOT):
        solution = nbformat.read(ROOT / "solutions" / lab / f"{lab}.ipynb", as_version=4)
        for cell in solution.cells:
            for block in BLOCK.finditer(cell.source):
                lines = {line.strip() for line in block.group(2).splitlines() if len(line.strip()) >= 12}
                secrets |= {line for line in lines if line not in public}
    return frozenset(secrets)


def leaks(text: str, secrets: frozenset[str], *, markers: bool = True) -> list[str]:
    """The secret lines found in ``text``, and nbgrader's solution markers unless ``markers=False``."""
    found = [marker for marker in MARKERS if marker in text] if markers else []
    return found + sorted(s for s in secrets if s in text)
