"""Run a submitted notebook's cells in a Jupyter kernel, inside the autograder's sandbox.

:func:`coursepkg.grading.autograde.run_notebook` starts it in a sandbox
(:mod:`coursepkg.grading.sandbox`) as ``python -m coursepkg.grading.execute`` and sends,
JSON on standard input, ``{"notebook": ..., "cell_timeout": s, "cell_output": bytes}``.
The notebook's test cells come blank: their verdicts come from the isolated re-run
of the checks, never from this kernel, which runs only what the feedback shows.

The kernel talks to this process over IPC sockets in the sandbox's ``/tmp``, not
TCP: the sandbox has no network. Each cell's outputs go back as soon as the cell
ends, as a record (:mod:`coursepkg.grading.records`): ``{"kind": "cell",
"index": i}`` with the outputs as JSON, at most ``cell_output`` bytes of them (the rest
is cut, with a note). A cell that runs past ``cell_timeout`` is interrupted and the run
goes on; a kernel that dies ends the run with a record saying in which cell and how.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from coursepkg.grading.records import write_record
from coursepkg.grading.sandbox import HOME

__all__ = ["cap_outputs", "main"]

_NOTE = "\n[The autograder kept the first {kept} of this cell's {total} bytes of output.]\n"


def cap_outputs(outputs: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """``outputs`` cut to about ``limit`` bytes of JSON: text is shortened, other outputs past the limit dropped.

    A note saying how much was kept ends the last output kept.
    """
    total = len(json.dumps(outputs))
    if total <= limit:
        return outputs
    kept: list[dict[str, Any]] = []
    room = limit
    for output in outputs:
        size = len(json.dumps(output))
        if size <= room:
            kept.append(output)
            room -= size
        elif output.get("output_type") == "stream" and room > 200:
            kept.append({**output, "text": str(output.get("text", ""))[: room - 200]})
            room = 0
        else:
            break
    note = _NOTE.format(kept=f"{limit - room:,}", total=f"{total:,}")
    kept.append({"output_type": "stream", "name": "stdout", "text": note})
    return kept


class _Streaming(NotebookClient):
    """A notebook client that sends each cell's outputs back as soon as the cell ends."""

    def __init__(self, *args: Any, results: Any, cell_output: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.results = results
        self.cell_output = cell_output

    async def async_execute_cell(self, cell: Any, cell_index: int, *args: Any, **kwargs: Any) -> Any:
        if cell.cell_type == "code" and cell.source.strip():
            write_record(self.results, {"kind": "start", "index": cell_index})
        started = time.monotonic()
        cell = await super().async_execute_cell(cell, cell_index, *args, **kwargs)
        if cell.cell_type == "code" and cell.source.strip():
            outputs = cap_outputs(json.loads(json.dumps(cell.outputs)), self.cell_output)
            if time.monotonic() - started >= self.timeout:
                note = f"\n[The autograder interrupted this cell after {self.timeout:g} s, its limit per cell.]\n"
                outputs.append({"output_type": "stream", "name": "stdout", "text": note})
                write_record(self.results, {"kind": "interrupted", "index": cell_index})
            body = json.dumps({"outputs": outputs, "execution_count": cell.get("execution_count")}).encode()
            write_record(self.results, {"kind": "cell", "index": cell_index}, body)
        return cell


def _ended(manager: AsyncKernelManager) -> str:
    """How the kernel's process ended, as the rest of a sentence ("was killed by SIGSEGV")."""
    process = getattr(manager.provisioner, "process", None)
    code = process.poll() if process is not None else None
    if code is None:
        return "stopped responding"
    if code < 0:
        import signal

        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def main() -> int:
    """Execute the notebook of the request on standard input; write records on the results pipe."""
    request = json.loads(sys.stdin.buffer.read())
    results = os.fdopen(int(os.environ["COURSEPKG_RESULTS"]), "wb")
    notebook = nbformat.from_dict(request["notebook"])
    runtime = os.environ.get("JUPYTER_RUNTIME_DIR", "/tmp/jupyter")
    os.makedirs(runtime, exist_ok=True)
    manager = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(runtime, "kernel"))
    client = _Streaming(
        notebook,
        km=manager,
        timeout=request["cell_timeout"],
        startup_timeout=120,
        allow_errors=True,
        interrupt_on_timeout=True,
        record_timing=False,
        resources={"metadata": {"path": os.environ.get("COURSEPKG_SCRATCH", HOME)}},
        results=results,
        cell_output=request["cell_output"],
    )
    try:
        client.execute()
    except DeadKernelError:
        write_record(results, {"kind": "died", "reason": f"the kernel {_ended(manager)}"})
    except Exception as error:  # the kernel could not start, or nbclient gave up: say so, the grader goes on
        write_record(results, {"kind": "died", "reason": f"{type(error).__name__}: {error}"[:500]})
    write_record(results, {"kind": "finished"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
