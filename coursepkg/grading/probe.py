"""The probe runner: what the autograder's sandbox runs to observe a student's code.

:func:`coursepkg.grading.isolation.observe` starts it in a sandbox
(:mod:`coursepkg.grading.sandbox`) as ``python -m coursepkg.grading.probe`` and sends
its request, JSON, on standard input::

    {"probes": [module, ...],          # the lab's probes modules
     "setup": [source, ...],           # the notebook's setup cells (the instructor's, read-only)
     "cells": [{"at": 4, "source": "..."}, ...],   # every cell the student wrote or added, in order
     "runs": [{"observe": [{"at": 9, "module": ..., "probe": "gan"}, ...], "pipe": 0}, ...],
     "skip": [7],                      # cells an earlier attempt could not get past
     "salt": 8191,                     # the second look's salt (coursepkg.grading.observe.salted)
     "cell_timeout": 30, "probe_timeout": 120}

The sandbox holds the probes but neither the lab's answer keys nor any judge. This
process imports the probes, runs the setup cells, makes itself non-dumpable (its
memory and descriptors out of reach of its children) and then forks one child per
*run*. A run observes the probes that use the same references; a child runs the
student's cells in order and observes each of its probes where its test cell
stands, twice: as the notebook does, and with the request's salt. The references
a run may use (:attr:`~coursepkg.grading.observe.Probe.uses`:
earlier exercises' answers, fixture models) come on a pipe of the run's own,
cloudpickled by value, and a child closes every other run's pipe before it runs a
line of student code: the answer to an exercise never reaches the run that checks it.

Between runs every process the child left behind is killed. A cell or a probe that
runs past its timeout, or kills its process (``os._exit``, a segfault), costs that
step only: the run starts again without it. Every result goes back to the grader
as records (:mod:`coursepkg.grading.records`) on the results pipe.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import io
import json
import numbers
import os
import select
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

import numpy as np
import torch
from IPython.core.inputtransformer2 import TransformerManager

from coursepkg.grading import observe
from coursepkg.grading.observe import Probe, describe_error
from coursepkg.grading.records import write_record

__all__ = ["main", "plain"]

#: Largest nesting of lists and dicts an observation may have.
_DEPTH = 12


# ---------------------------------------------------------------- observations as plain data


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as plain data the grader can load safely: tensors, numbers, strings, lists, tuples and dicts of them.

    A numpy number becomes a Python number, a numeric numpy array a tensor, a tensor a detached
    contiguous copy; anything else becomes a short description, so that an honest solution
    that stores, say, an ``np.int64`` is never lost to the format.
    """
    if value is None or isinstance(value, (bool, str)):
        return value if not isinstance(value, str) else value[:100_000]
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().contiguous().clone()
    if depth < _DEPTH and isinstance(value, Mapping):
        return {str(key): plain(item, depth + 1) for key, item in value.items()}
    if depth < _DEPTH and isinstance(value, (list, tuple)):
        items = [plain(item, depth + 1) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    return f"{type(value).__name__} {value!r}"[:200]


# ---------------------------------------------------------------- one run, in a child


def _run_cell(source: str, at: int, namespace: dict[str, Any]) -> str | None:
    """Run one cell's source in ``namespace``; return a message if it raised."""
    try:
        code = compile(TransformerManager().transform_cell(source), f"<cell {at}>", "exec")
    except SyntaxError as error:
        return f"cell {at}: your code has a {type(error).__name__}: {error.msg} (line {error.lineno})"
    try:
        with _silenced():
            exec(code, namespace)
    except ImportError as error:
        if (error.name or "").startswith("coursepkg."):  # not in the sandbox: an answer key or a judge
            return (
                f"cell {at} imports {error.name}, which holds the course's reference solutions and is not "
                "available to graded code: graded answers must be your own code"
            )
        return f"cell {at}: {describe_error(error)}"
    except BaseException as error:  # noqa: BLE001 - a student's cell may even call exit()
        return f"cell {at}: {describe_error(error)}"
    return None


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """Send what student code prints to nowhere (it could print without end)."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


class _NoMagic:
    """Stands in for IPython: magics and shell escapes do nothing."""

    def run_line_magic(self, *args: object, **kwargs: object) -> None:
        return None

    run_cell_magic = system = getoutput = run_line_magic


def _child(
    request: Mapping[str, Any], run: Mapping[str, Any], base: dict[str, Any], done: set[tuple[int, str]]
) -> None:
    """Carry out one run in this (forked) process, then leave with ``os._exit``."""
    results, control = _RESULTS, _CONTROL
    my_pipe = _pipes()[run["pipe"]] if run["pipe"] is not None else None
    for fd in _pipes():
        if fd != my_pipe:
            os.close(fd)
    namespace = dict(base)
    modules = {name: importlib.import_module(name) for name in request["probes"]}
    skip = set(request["skip"])
    last = max(step["at"] for step in run["observe"])
    steps = sorted(
        [("cell", cell["at"], cell) for cell in request["cells"] if cell["at"] < last and cell["at"] not in skip]
        + [("probe", step["at"], step) for step in run["observe"] if (step["at"], step["probe"]) not in done],
        key=lambda step: (step[1], step[0] == "probe"),
    )
    errors: list[str] = []
    loaded = False
    for kind, at, step in steps:
        _mark(control, kind, at, step.get("probe", ""))
        if kind == "cell":
            if error := _run_cell(step["source"], at, namespace):
                errors.append(error)
                write_record(results, {"kind": "cell_error", "at": at, "message": error})
            continue
        if not loaded and my_pipe is not None:
            observe._handed_in = _load_references(my_pipe)
            loaded = True
        probe: Probe = modules[step["module"]].PROBES[step["probe"]]
        looks = {}
        for look, salt in (("fixed", 0), ("salted", request["salt"])):
            try:
                with _silenced(), observe.salted(salt):
                    observed = probe.observe(namespace)
            except observe.ReferenceUnavailable as error:  # the course's mistake: say so, loudly
                observed = {"error": f"The autograder's probe {step['probe']} is misconfigured: {error}"}
            if "error" in observed and errors:
                observed["error"] += " (Cells that failed when re-run: " + "; ".join(errors) + ")"
            looks[look] = plain(observed)
        buffer = io.BytesIO()
        torch.save(looks, buffer)
        write_record(results, {"kind": "observation", "at": at, "probe": step["probe"]}, buffer.getvalue())
    _mark(control, "done", -1, "")
    os._exit(0)


def _load_references(fd: int) -> dict[str, Any]:
    """The references handed in for this run, cloudpickled by value."""
    import cloudpickle  # imported here: only runs that use references need it

    with os.fdopen(fd, "rb") as stream:
        return cloudpickle.loads(stream.read())


def _mark(control: int, kind: str, at: int, probe: str) -> None:
    """Tell the runner, and the grader, which step starts now, so they can time it and skip it."""
    os.write(control, f"{kind} {at} {probe}\n".encode())
    if kind != "done":
        write_record(_RESULTS, {"kind": "step", "what": kind, "at": at, "probe": probe})


# ---------------------------------------------------------------- the runner


_RESULTS: BinaryIO
_CONTROL: int


def _pipes() -> list[int]:
    listed = os.environ.get("COURSEPKG_PIPES", "")
    return [int(fd) for fd in listed.split(",") if fd]


def _kill_the_rest() -> None:
    """Kill every process of the sandbox except its init and this runner: what a child left behind.

    Only in the sandbox, whose PID namespace holds nothing else; unsandboxed (``--unsafe-no-sandbox``),
    the runner cannot tell the child's processes from the machine's, and leaves them.
    """
    if os.environ.get("COURSEPKG_SCRATCH"):
        return
    for _ in range(100):
        others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())]
        if not others:
            return
        for pid in others:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        time.sleep(0.01)


def _supervise(pid: int, control: int, request: Mapping[str, Any]) -> tuple[list[tuple[int, str]], Any]:
    """Wait for the child ``pid`` and time its steps.

    Returns:
        The probes it started, in order, as ``(at, probe)``, and ``None`` when its run finished,
        else ``(kind, at, probe, why)``: the step it stopped in (``"cell"`` or ``"probe"``) and why.
    """
    current: tuple[str, int, str] | None = None
    started, probes, buffer, finished = time.monotonic(), [], b"", False
    while True:
        limit = request["cell_timeout"] if current and current[0] == "cell" else request["probe_timeout"]
        remaining = limit - (time.monotonic() - started)
        if remaining <= 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            kind, at, probe = current or ("cell", -1, "")
            return probes, (kind, at, probe, f"it ran for more than {limit:g} s")
        ready, _, _ = select.select([control], [], [], min(remaining, 1.0))
        if not ready:
            continue
        chunk = os.read(control, 65536)
        if not chunk:  # the child is gone
            break
        *lines, buffer = (buffer + chunk).split(b"\n")
        for line in lines:
            kind, at, probe = (line.decode(errors="replace").split(" ") + ["", "", ""])[:3]
            if kind == "done":
                finished = True
            elif kind in ("cell", "probe") and at.lstrip("-").isdigit():
                current, started = (kind, int(at), probe), time.monotonic()
                if kind == "probe":
                    probes.append((int(at), probe))
    _, status = os.waitpid(pid, 0)
    if finished and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return probes, None
    kind, at, probe = current or ("cell", -1, "")
    if os.WIFSIGNALED(status):
        why = f"its process was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    else:
        why = f"its process exited with status {os.WEXITSTATUS(status)}"
    return probes, (kind, at, probe, why)


def main() -> int:
    """Carry out the request on standard input; write records on the results pipe."""
    global _RESULTS, _CONTROL
    request = json.loads(sys.stdin.buffer.read())
    _RESULTS = os.fdopen(int(os.environ["COURSEPKG_RESULTS"]), "wb")
    torch.set_num_threads(1)
    observe._handed_in = {}  # in the sandbox, references come only from a run's own pipe
    for name in request["probes"]:
        importlib.import_module(name)
    base: dict[str, Any] = {"__name__": "__main__", "get_ipython": _NoMagic}
    for index, source in enumerate(request["setup"]):
        if error := _run_cell(source, index, base):
            write_record(_RESULTS, {"kind": "cell_error", "at": -1, "message": f"setup {error}"})
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0: children cannot read this process
    skip: list[int] = list(request["skip"])
    for run in request["runs"]:
        done: set[tuple[int, str]] = set()
        while True:
            control_r, _CONTROL = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(control_r)
                try:
                    _child({**request, "skip": skip}, run, base, done)
                finally:
                    os._exit(70)
            os.close(_CONTROL)
            started, stopped = _supervise(pid, control_r, request)
            os.close(control_r)
            _kill_the_rest()
            if stopped is None:
                break
            kind, at, probe, why = stopped
            write_record(_RESULTS, {"kind": "stopped", "what": kind, "at": at, "probe": probe, "reason": why})
            done.update(started)  # observed before it stopped, or the probe it stopped in
            if kind == "cell" and at >= 0:
                skip.append(at)
            if run["pipe"] is not None or (kind == "cell" and at < 0):
                # Its references were read (a run cannot read them twice), or it stopped before its first
                # step: the grader starts a new sandbox for what is left.
                break
    write_record(_RESULTS, {"kind": "finished"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
