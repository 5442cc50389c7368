"""The probe process: run a student's cells and record what the checks observe.

Started by :func:`coursepkg.grading.isolation.probe_in_subprocess` as::

    python -m coursepkg.grading.probe REQUEST.json OUTPUT.pt

``REQUEST.json`` holds ``{"plan": steps}``, the steps of
:func:`~coursepkg.grading.isolation.probe_plan`: cells to run, and test cells
whose checks to observe at that point.
The check modules are imported first (they hold the fixtures and the
references the probes need); then their ``ANSWER_KEYS``, and every module that
imports one (:func:`~coursepkg.grading.isolation.blocked_modules`), are made
unimportable, and the plan is carried out. A cell that
raises is reported and skipped, as in a notebook run with errors allowed.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import torch
from IPython.core.inputtransformer2 import TransformerManager

from coursepkg.grading.checks import describe_error
from coursepkg.grading.isolation import blocked_modules, check_key
from coursepkg.util.runtime import use_available_cores


class _NoMagic:
    """Stands in for IPython in the probe: magics and shell escapes do nothing."""

    def run_line_magic(self, *args: object, **kwargs: object) -> None:
        return None

    run_cell_magic = run_line_magic
    system = run_line_magic
    getoutput = run_line_magic


def _block(module_name: str) -> None:
    """Make ``import module_name`` and ``from parent import child`` fail."""
    sys.modules[module_name] = None  # type: ignore[assignment]
    parent, _, child = module_name.rpartition(".")
    if parent in sys.modules and hasattr(sys.modules[parent], child):
        delattr(sys.modules[parent], child)


def _run_cell(source: str, index: int, namespace: dict[str, object], blocked: frozenset[str]) -> str | None:
    """Run one cell's source in ``namespace``; return a message if it failed."""
    try:
        exec(compile(TransformerManager().transform_cell(source), f"<cell {index}>", "exec"), namespace)
    except ImportError as error:
        if error.name in blocked:
            return (
                f"cell {index} imports {error.name}, which holds the course's reference solutions: "
                "graded answers must be your own code"
            )
        return f"cell {index}: {describe_error(error)}"
    except BaseException as error:  # noqa: BLE001 - a student's cell may even call exit()
        return f"cell {index}: {describe_error(error)}"
    return None


def _fresh_namespace() -> dict[str, object]:
    return {"__name__": "__main__", "get_ipython": _NoMagic}


def _run_program(program: list[str], blocked: frozenset[str] = frozenset()) -> tuple[dict[str, object], list[str]]:
    """Run cell sources in one fresh namespace; return it and one message per failed cell."""
    namespace = _fresh_namespace()
    errors = [error for index, source in enumerate(program) if (error := _run_cell(source, index, namespace, blocked))]
    return namespace, errors


def main(argv: list[str]) -> int:
    """Carry out the request's plan; write ``{check key: observations}`` with torch.save."""
    request_path, output_path = argv
    plan = json.loads(Path(request_path).read_text())["plan"]
    use_available_cores()
    names = {module for step in plan for module, _ in step.get("observe", [])}
    modules: dict[str, ModuleType] = {m: importlib.import_module(m) for m in sorted(names)}
    blocked = blocked_modules(key for module in modules.values() for key in module.ANSWER_KEYS)
    for reference in blocked:
        _block(reference)

    namespace, errors, observations = _fresh_namespace(), [], {}
    for step in plan:
        if "run" in step:
            error = _run_cell(step["run"], step["at"], namespace, blocked)
            if error:
                errors.append(error)
            continue
        for module_name, name in step["observe"]:
            observed = modules[module_name].CHECKS[name].observe(namespace)
            if "error" in observed and errors:
                observed["error"] += " (Cells that failed when re-run: " + "; ".join(errors) + ")"
            observations[check_key(step["at"], (module_name, name))] = observed
    torch.save(observations, output_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
