"""Flag solution cells that are near copies of the course's reference code, for the instructor to review.

The reference implementations ship with ``coursepkg`` (students install it), so a
student can copy one into a solution cell. The autograder cannot tell a copy from
work done alone, and does not grade it: it flags the cell in the batch's summary and
the notebook's metadata, and the instructor decides.

A cell is compared with every function and class of the lab's answer keys after
both are reduced to their tokens with names, strings and numbers kept and
comments, docstrings and layout dropped; the similarity is difflib's ratio of the
two token sequences (1 for the same code). Renaming a few variables keeps a copy
above :data:`THRESHOLD`; writing the function anew does not (the correct
alternatives in ``tests/`` stay below 0.6).
"""

from __future__ import annotations

import ast
import difflib
import importlib
import inspect
import io
import tokenize
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

__all__ = ["THRESHOLD", "Flag", "copied_code", "similarity"]

#: Similarity from which a solution cell is flagged as a near copy.
THRESHOLD = 0.8
#: Definitions shorter than this many tokens are too short to call a copy.
_MIN_TOKENS = 80


@dataclass(frozen=True)
class Flag:
    """A solution cell that looks copied: its ``grade_id``, the reference it matches and how closely."""

    cell: str
    reference: str
    similarity: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tokens(source: str) -> list[str]:
    """The code's tokens, without comments, docstrings, indentation and line breaks."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                body.pop(0)  # a docstring
                if not body:
                    body.append(ast.Pass())
    skipped = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    code = ast.unparse(tree)
    return [t.string for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type not in skipped]


def similarity(a: str, b: str) -> float:
    """How alike two pieces of code are, from 0 to 1 (see the module's docstring)."""
    return difflib.SequenceMatcher(None, _tokens(a), _tokens(b), autojunk=False).ratio()


@cache
def _references(answer_keys: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Every top-level function and class of the answer keys: its name and tokens."""
    found = {}
    for name in answer_keys:
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == name:
                tokens = _tokens(inspect.getsource(value))
                if len(tokens) >= _MIN_TOKENS:
                    found[f"{name}.{attribute}"] = tuple(tokens)
    return found


def _definitions(source: str) -> list[list[str]]:
    """The tokens of each top-level function and class of a cell."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [
        _tokens(ast.unparse(node))
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]


def copied_code(cells: Iterable[Mapping[str, Any]], answer_keys: Iterable[str]) -> list[Flag]:
    """The solution cells with a definition that is a near copy of a reference (similarity >= :data:`THRESHOLD`).

    Args:
        cells: the notebook's cells (nbformat dicts).
        answer_keys: the modules of the lab's references.

    Returns:
        One flag per flagged cell, naming the closest reference.
    """
    references = _references(tuple(sorted(answer_keys)))
    flags = []
    for cell in cells:
        nbgrader = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or not nbgrader.get("solution"):
            continue
        scores = [
            (difflib.SequenceMatcher(None, mine, tokens, autojunk=False).ratio(), name)
            for mine in _definitions(cell.get("source", ""))
            if len(mine) >= _MIN_TOKENS
            for name, tokens in references.items()
        ]
        score, name = max(scores, default=(0.0, ""))
        if score >= THRESHOLD:
            flags.append(Flag(nbgrader.get("grade_id", "?"), name, round(score, 3)))
    return flags
