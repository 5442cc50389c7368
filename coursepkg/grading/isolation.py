"""Re-run a notebook's checks out of reach of the student's kernel, in a sandbox, and judge them here.

A test cell's verdict in the notebook cannot be trusted on its own: the cells
before it ran in the same kernel and may have replaced ``torch.allclose`` or a
``coursepkg`` function. Here the checks run again in two halves:

1. the *probes* (:mod:`coursepkg.grading.probe`) run in a sandbox
   (:mod:`coursepkg.grading.sandbox`) whose copy of ``coursepkg`` holds neither the
   lab's answer keys, nor any module that imports one (:func:`blocked_modules`), nor
   any judge (:func:`sandbox_view`). They run the setup cells and every cell the
   student wrote or added, in notebook order, and observe each check where its
   test cell stands (:func:`probe_plan`). A probe that calls the reference of an
   earlier exercise gets it handed in, by value, for its run alone (:func:`runs`);
2. the *judges* run in this process, which never runs student code: the checks
   are imported from the installed package before any submission is looked at.
   What crosses back are plain data, checked on the way (sizes, types,
   ``torch.load(weights_only=True)``); anything else is a failed check with a message.

Which checks a test cell stands for is read from its own source (restored by
nbgrader from the gradebook, hidden tests included): every call
``<alias>.check("name", ...)`` where ``<alias>`` is a module imported from
``coursepkg.grading``.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import hashlib
import importlib
import io
import json
import os
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import cloudpickle
import torch

from coursepkg.grading import sandbox
from coursepkg.grading.checks import Check, CheckFailed
from coursepkg.grading.observe import reference, salted
from coursepkg.grading.records import read_records

__all__ = [
    "PACKAGE",
    "SETUP_TAG",
    "Plan",
    "Timeouts",
    "Verdict",
    "answer_keys",
    "blocked_modules",
    "import_graph",
    "judge",
    "observe",
    "probe_plan",
    "requested_checks",
    "sandbox_view",
    "student_program",
]

#: Tag of the notebook's read-only setup cells (imports, constants), which the
#: probe runs before the student's cells.
SETUP_TAG = "setup"
#: The modules of :mod:`coursepkg.grading` that the checks' sandbox holds (and every lab's probes): no judge.
PROBE_GRADING = (
    "coursepkg.grading",
    "coursepkg.grading.observe",
    "coursepkg.grading.probe",
    "coursepkg.grading.records",
    "coursepkg.grading.sandbox",
)
#: The modules of :mod:`coursepkg.grading` that the notebook's sandbox holds: what runs the notebook, no judge.
KERNEL_GRADING = (
    "coursepkg.grading",
    "coursepkg.grading.execute",
    "coursepkg.grading.records",
    "coursepkg.grading.sandbox",
)

CheckId = tuple[str, str]  # (module, check name)
PACKAGE = Path(__file__).resolve().parents[1]


@cache
def _module_files() -> dict[str, Path]:
    """Every module of the package by name, ``coursepkg.grading.probes`` included."""
    return {
        ".".join(("coursepkg", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__"): path
        for path in PACKAGE.rglob("*.py")
    }


@cache
def import_graph() -> dict[str, frozenset[str]]:
    """Which ``coursepkg`` modules each module of the package imports, read from the source.

    Returns:
        ``{module: modules it imports}`` for every module of the package, counting
        ``import a.b``, ``from a import b`` (``a.b`` when it is a module) and imports inside functions.
    """
    names = _module_files()
    graph = {}
    for name, path in names.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[name] = frozenset(imported & names.keys())
    return graph


def blocked_modules(answer_keys: Iterable[str]) -> frozenset[str]:
    """The modules a lab's sandbox must not hold.

    Args:
        answer_keys: the lab's ``ANSWER_KEYS``, e.g. ``("coursepkg.theory.divergences",)``.

    Returns:
        The answer keys and every module of the package that imports one of them, directly
        or through other modules: none of what is left can hand a student a reference function.
    """
    graph = import_graph()
    blocked = set(answer_keys)
    unknown = blocked - graph.keys()
    if unknown:
        raise ValueError(f"answer keys {sorted(unknown)} are not modules of coursepkg; fix the lab's ANSWER_KEYS.")
    while True:
        more = {module for module, imports in graph.items() if imports & blocked} - blocked
        if not more:
            return frozenset(blocked)
        blocked |= more


def sandbox_modules(answer_keys: Iterable[str] | None) -> frozenset[str]:
    """The modules of the package that a sandbox holds: never a judge, nor the command line (which grades).

    Args:
        answer_keys: the lab's, for the checks' sandbox, which holds neither them nor any module that
            imports one; ``None`` for the notebook's sandbox, which holds them (the notebook's own
            demonstrations may use them: nothing it prints is scored).
    """
    blocked = blocked_modules(answer_keys) if answer_keys is not None else frozenset()
    grading = KERNEL_GRADING if answer_keys is None else PROBE_GRADING
    return frozenset(
        name
        for name in _module_files()
        if name not in blocked
        and name != "coursepkg.__main__"
        and (
            not name.startswith("coursepkg.grading")
            or name in grading
            or (answer_keys is not None and name.startswith("coursepkg.grading.probes"))
        )
    )


def sandbox_view(answer_keys: Iterable[str] | None) -> sandbox.Mount:
    """A read-only copy of ``coursepkg`` with :func:`sandbox_modules` only, mounted where the package is.

    Data files (the shipped digits and weights) come along; the copy is made once per set of
    modules and version of the package, by hard links where the file system allows.
    """
    keep = sandbox_modules(answer_keys)
    files = _module_files()
    signature = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            signature.update(f"{path.relative_to(PACKAGE)}:{path.stat().st_mtime_ns}:{path.stat().st_size}".encode())
    signature.update(json.dumps(sorted(keep)).encode())
    view = sandbox.staging_root() / f"coursepkg-view-{signature.hexdigest()[:16]}"
    if not view.exists():
        dropped = {files[name] for name in files.keys() - keep}
        building = view.with_name(f"{view.name}.partial-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        for path in sorted(PACKAGE.rglob("*")):
            if "__pycache__" in path.parts or path in dropped or not path.is_file():
                continue
            target = building / path.relative_to(PACKAGE)
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            sandbox.link_or_copy(path, target)
        with contextlib.suppress(OSError):  # another worker may have made it meanwhile
            building.rename(view)
        shutil.rmtree(building, ignore_errors=True)
    return sandbox.Mount(view, PACKAGE)


def requested_checks(source: str) -> list[CheckId]:
    """List the checks a test cell runs, in source order.

    Args:
        source: Python source of a test cell.

    Returns:
        ``(module, name)`` pairs, e.g.
        ``("coursepkg.grading.lab_2d_gan", "discriminator_step")``.
    """
    tree = ast.parse(source)
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "coursepkg.grading":
            aliases.update({a.asname or a.name: f"coursepkg.grading.{a.name}" for a in node.names})
        elif isinstance(node, ast.Import):
            aliases.update(
                {a.asname: a.name for a in node.names if a.asname and a.name.startswith("coursepkg.grading.")}
            )
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "check"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in aliases
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ]
    calls.sort(key=lambda node: (node.lineno, node.col_offset))
    return [(aliases[node.func.value.id], node.args[0].value) for node in calls]


def is_test_cell(cell: Mapping[str, Any]) -> bool:
    """Whether ``cell`` is an autograded test cell (nbgrader's ``grade`` without ``solution``)."""
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(nbgrader.get("grade")) and not nbgrader.get("solution", False)


def is_setup(cell: Mapping[str, Any]) -> bool:
    """Whether ``cell`` is one of the notebook's read-only setup cells (tagged :data:`SETUP_TAG`)."""
    return cell.get("cell_type") == "code" and SETUP_TAG in cell.get("metadata", {}).get("tags", [])


def _is_students(cell: Mapping[str, Any]) -> bool:
    """Whether a code cell holds the student's code: a solution cell or a cell the student added.

    The instructor's other code cells (setup, demonstrations, training runs, test
    cells) are nbgrader read-only cells, ``locked`` in their metadata; a cell the
    student inserted has no nbgrader metadata at all.
    """
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return nbgrader.get("solution", False) or not (nbgrader.get("locked", False) or is_test_cell(cell))


@dataclass(frozen=True)
class Plan:
    """What the probes do with a notebook, in notebook order.

    Attributes:
        setup: sources of the setup cells, run once before everything else.
        cells: ``(position, source)`` of every cell the student wrote or added.
        checks: ``(position, (module, name))`` of every check a test cell requests, at the test cell's position.
    """

    setup: list[str] = field(default_factory=list)
    cells: list[tuple[int, str]] = field(default_factory=list)
    checks: list[tuple[int, CheckId]] = field(default_factory=list)


def probe_plan(cells: Iterable[Mapping[str, Any]]) -> Plan:
    """What the probes run and observe in a notebook's cells (nbformat dicts).

    A test cell's checks are observed where the test cell stands, after the cells
    above it and before the ones below, as the notebook's own run sees them. The
    instructor's read-only cells (demonstrations, training runs, plots) are left out,
    which keeps the re-run short.
    """
    plan = Plan()
    for position, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        if is_setup(cell):
            plan.setup.append(cell["source"])
        elif is_test_cell(cell):
            with contextlib.suppress(SyntaxError):  # a test cell is the instructor's: it parses
                plan.checks.extend((position, check) for check in requested_checks(cell["source"]))
        elif _is_students(cell):
            plan.cells.append((position, cell["source"]))
    return plan


def student_program(cells: Iterable[Mapping[str, Any]]) -> list[str]:
    """Sources the probes run, in notebook order: the setup cells, then the student's cells."""
    plan = probe_plan(cells)
    return plan.setup + [source for _, source in plan.cells]


def _check(check_id: CheckId) -> Check:
    module, name = check_id
    return importlib.import_module(module).CHECKS[name]


def answer_keys(check_ids: Iterable[CheckId]) -> tuple[str, ...]:
    """The answer keys of the labs whose checks are named."""
    return tuple(sorted({key for module, _ in check_ids for key in importlib.import_module(module).ANSWER_KEYS}))


@contextlib.contextmanager
def _by_value(modules: Iterable[str]) -> Iterator[None]:
    """Let cloudpickle copy the objects of ``modules`` by value (the sandbox cannot import them)."""
    registered = [importlib.import_module(name) for name in modules]
    for module in registered:
        cloudpickle.register_pickle_by_value(module)
    try:
        yield
    finally:
        for module in registered:
            cloudpickle.unregister_pickle_by_value(module)


def runs(plan: Plan) -> list[tuple[list[dict[str, Any]], bytes | None]]:
    """Group the plan's probes into runs, one per set of references they use, and build each run's payload.

    Returns:
        ``(steps, payload)`` per run: the probes it observes (``{"at", "module", "probe"}``) and the
        references it may use, cloudpickled by value (``None`` when it uses none). The run of the
        probes that use no reference comes first, the others in the order of their first test cell.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for position, check_id in plan.checks:
        probe = _check(check_id).probe
        step = {"at": position, "module": probe.module, "probe": probe.name}
        group = groups.setdefault(tuple(sorted(probe.uses)), [])
        if step not in group:
            group.append(step)
    judges = {module for _, (module, _) in plan.checks}
    result = []
    with _by_value([*answer_keys(c for _, c in plan.checks), *judges]):
        for uses in sorted(groups, key=lambda u: (bool(u), min(s["at"] for s in groups[u]))):
            payload = cloudpickle.dumps({key: reference(key) for key in uses}) if uses else None
            result.append((groups[uses], payload))
    return result


@dataclass(frozen=True)
class Timeouts:
    """Seconds the probes may take: per student cell, per probe, and in all (the sandbox's deadline)."""

    cell: float = 30.0
    probe: float = 120.0
    total: float = 300.0


def observe(
    cells: list[Mapping[str, Any]],
    *,
    limits: sandbox.Limits,
    salt: int,
    timeouts: Timeouts = Timeouts(),
    usage: dict[str, float] | None = None,
) -> tuple[dict[tuple[int, CheckId], dict[str, Any]], list[str]]:
    """Observe every check of a notebook's test cells in the sandbox.

    Args:
        cells: the notebook's cells (nbformat dicts), hidden tests restored.
        limits: the sandbox's limits; its deadline is ``timeouts.total``.
        salt: the salt of each probe's second look (:func:`coursepkg.grading.observe.salted`);
            draw it anew for each submission and keep it from the student.
        timeouts: per cell, per probe, in all.
        usage: if given, gets ``"peak_memory"``: the most memory a sandbox of the re-run held, in bytes.

    Returns:
        ``{(test cell position, check): {"fixed": observations, "salted": observations}}`` for every
        check of the plan (a check whose probe could not run gets ``{"error": "..."}`` in both,
        saying why), and notes on what stopped on the way ("cell 7 was skipped in the re-run: it
        ran for more than 30 s").
    """
    plan = probe_plan(cells)
    wanted = {(at, check_id): _check(check_id).probe for at, check_id in plan.checks}
    if not wanted:
        return {}, []
    run_list = runs(plan)
    view = sandbox_view(answer_keys(c for _, c in plan.checks))
    modules = sorted({step["module"] for steps, _ in run_list for step in steps})
    observed: dict[tuple[int, str], Any] = {}
    notes: list[str] = []
    skip: list[int] = []
    pending = list(range(len(run_list)))
    for _attempt in range(3):  # a sandbox that stopped mid-way starts again for what is left
        requested, sent = [], []
        for index in pending:
            steps, payload = run_list[index]
            requested.append({"observe": steps, "pipe": None if payload is None else len(sent)})
            if payload is not None:
                sent.append(payload)
        request = {
            "probes": modules,
            "setup": plan.setup,
            "cells": [{"at": at, "source": source} for at, source in plan.cells],
            "runs": requested,
            "skip": skip,
            "salt": salt,
            "cell_timeout": timeouts.cell,
            "probe_timeout": timeouts.probe,
        }
        outcome = sandbox.run(
            [sys.executable, "-m", "coursepkg.grading.probe"],
            limits=dataclasses.replace(limits, deadline=timeouts.total),
            mounts=[view],
            env={"NBGRADER_EXECUTION": "autograde", "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"},
            stdin=json.dumps(request).encode(),
            pipes=sent,
        )
        if usage is not None:
            usage["peak_memory"] = max(usage.get("peak_memory", 0), outcome.peak_memory)
        finished, last = _read(outcome.results, observed, notes, skip)
        if not finished and last is not None:  # the whole sandbox stopped in this step
            kind, at, name = last
            why = f"the re-run {outcome.ended()}"
            if kind == "probe":
                observed.setdefault((at, name), {"error": f"The autograder's re-run of this check stopped: {why}."})
            else:
                notes.append(f"cell {at} was skipped in the re-run: {why}")
                skip.append(at)
        elif not finished:
            notes.append(f"the re-run {outcome.ended()} before it started: {outcome.stderr.strip()[-300:]}")
            break
        pending = [i for i in pending if any((s["at"], s["probe"]) not in observed for s in run_list[i][0])]
        if not pending:
            break
    reason = "; ".join(notes) or "it recorded nothing"
    missing = {"error": f"The autograder's re-run of your code could not observe this check: {reason}."}
    return {key: _looks(observed.get((key[0], probe.name), missing)) for key, probe in wanted.items()}, notes


def _looks(observed: Any) -> dict[str, Any]:
    """The two looks of a probe, each a dict of observations; an error observation stands for both."""
    if isinstance(observed, dict) and set(observed) == {"fixed", "salted"}:
        if all(isinstance(look, dict) for look in observed.values()):
            return observed
    if isinstance(observed, dict) and "error" in observed:
        return {"fixed": observed, "salted": observed}
    unreadable = {"error": "The autograder's probe recorded something that is not a pair of observations."}
    return {"fixed": unreadable, "salted": unreadable}


def _read(
    results: bytes, observed: dict[tuple[int, str], Any], notes: list[str], skip: list[int]
) -> tuple[bool, tuple[str, int, str] | None]:
    """Take the probe runner's records into ``observed``, ``notes`` and ``skip``.

    Returns:
        Whether it finished, and the last step it started (``("cell", 7, "")``, ``("probe", 9, "gan")``).
    """
    finished, last = False, None
    for header, body in read_records(results):
        kind, at, probe = header.get("kind"), header.get("at"), header.get("probe", "")
        if not isinstance(at, int) or not isinstance(probe, str):
            at, probe = -1, ""
        if kind == "step" and header.get("what") in ("cell", "probe"):
            last = (header["what"], at, probe)
        elif kind == "observation" and (at, probe) not in observed:
            observed[at, probe] = _load(body)
        elif kind == "stopped":
            why = str(header.get("reason", ""))[:500]
            if header.get("what") == "probe":
                observed.setdefault((at, probe), {"error": f"The autograder's re-run of this check stopped: {why}."})
            else:
                notes.append(f"cell {at} was skipped in the re-run: {why}")
                if at >= 0 and at not in skip:
                    skip.append(at)
        elif kind == "finished":
            finished = True
    return finished, last


def _load(body: bytes) -> dict[str, Any]:
    """A probe's observations from the sandbox: plain data only, else an error observation."""
    try:
        value = torch.load(io.BytesIO(body), weights_only=True)
    except Exception as error:  # anything the sandbox sent that is not plain data
        return {"error": f"The autograder could not read what your code's probe recorded ({type(error).__name__})."}
    if not isinstance(value, dict):
        return {"error": "The autograder's probe recorded something that is not a dict of observations."}
    return value


class Verdict(NamedTuple):
    """A check's verdict: ``failure`` is ``None`` when it passed; ``message`` says what was found."""

    failure: str | None
    message: str


def judge(check_id: CheckId, looks: dict[str, Any], salt: int) -> Verdict:
    """Judge one check's two looks (:func:`observe`) with the untouched references.

    The first look is judged as in the notebook, with its messages; the second, on the
    salted fixtures, must pass too. A judge that fails on observations it did not expect
    (a crafted or damaged record) gives a failed check, with a message, never an error of
    the grader.
    """
    verdict = _judged(check_id, looks["fixed"])
    if verdict.failure is not None:
        return verdict
    with salted(salt):
        second = _judged(check_id, looks["salted"])
    if second.failure is not None:
        message = f"on the autograder's own inputs (other seeds than the notebook's): {second.failure}"
        return Verdict(message, message)
    return verdict


def _judged(check_id: CheckId, observations: dict[str, Any]) -> Verdict:
    try:
        return Verdict(None, _check(check_id).evaluate(observations))
    except CheckFailed as failure:
        return Verdict(str(failure), str(failure))
    except Exception as error:  # the observations came from the student's sandbox: anything may be in them
        message = f"the autograder could not judge what your code produced ({type(error).__name__}: {error})"[:2000]
        return Verdict(message, message)


def loaded_checks(modules: Iterable[str]) -> list[ModuleType]:
    """Import the judges before any submission is looked at, from the installed package."""
    return [importlib.import_module(name) for name in modules]
