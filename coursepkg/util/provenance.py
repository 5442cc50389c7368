"""The provenance record every benchmark stores beside its results: what ran, when, where, with what.

``python -m coursepkg benchmark modes|mnist|lsi`` writes one JSON file per run
(the recap chapter's mode coverage, the MNIST lab's recipes at equal CPU time,
the LSI chapter's searches); each holds this record under ``"provenance"``, and
the chapters print it above their tables with :func:`format_provenance`. A
benchmark's numbers only mean something next to the machine that measured them:
CPU seconds depend on the processor, and on its vector and matrix units more
than on its name (on the hosts of the LSI benchmark's runs one core multiplies
bfloat16 matrices at about 1,070 GFLOP/s with AMX, 200 with AVX-512's bfloat16
instructions only, and 1 with neither: hence the CPU features); wall-clock speeds
depend on the other jobs that shared the cores (hence the load average before
and after the run).
"""

from __future__ import annotations

import os
import platform
import textwrap
from collections.abc import Sequence
from datetime import datetime
from importlib import metadata
from typing import Any

import torch

import coursepkg
from coursepkg.util.runtime import CPU_FEATURES, available_cores, cpu

__all__ = ["format_provenance", "provenance"]

#: The packages whose versions the record names, besides Python and coursepkg.
_PACKAGES = ("torch", "numpy", "ribs")


def provenance(command: str, *, load_before: Sequence[float]) -> dict[str, Any]:
    """The record of a benchmark run that ends now; used by every ``python -m coursepkg benchmark``.

    Args:
        command: the command line as typed, e.g. ``"python -m coursepkg benchmark lsi --threads 2"``.
        load_before: :func:`os.getloadavg` when the run started.

    Returns:
        ``{"command", "date", "machine", "versions"}``: ``date`` is the end of the
        run in ISO 8601 with the time zone; ``machine`` is ``{"platform",
        "processor", "cpu_features", "cores", "torch_threads", "load_average"}``, with
        ``processor`` and ``cpu_features`` from :func:`~coursepkg.util.runtime.cpu`, ``cores``
        the cores this process may use and ``load_average`` ``{"before", "after"}``,
        each the 1-, 5- and 15-minute averages; ``versions`` is ``{"python",
        "torch", "numpy", "ribs", "coursepkg"}`` (``None`` for a package not installed).
    """
    versions = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    versions["coursepkg"] = coursepkg.__version__
    processor, features = cpu()
    return {
        "command": command,
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": processor,
            "cpu_features": features,
            "cores": available_cores(),
            "torch_threads": torch.get_num_threads(),
            "load_average": {
                "before": [round(x, 2) for x in load_before],
                "after": [round(x, 2) for x in os.getloadavg()],
            },
        },
        "versions": versions,
    }


def format_provenance(record: dict[str, Any], *, width: int = 76) -> str:
    """A :func:`provenance` record as short lines of text, printed above each benchmark table.

    Used by ``python -m coursepkg benchmark`` and by the chapters that show saved
    results (the recap, the LSI chapter, the MNIST lab). Records converted from
    older result files lack some fields (``None``): they read "not recorded".

    Args:
        record: what :func:`provenance` returned.
        width: the longest line, so that the text fits a phone's page; a long
            command continues on the next lines with a trailing ``\\``.

    Returns:
        The command, the date and machine, the load and the versions, one per line or more.
    """
    machine, versions = record["machine"], record["versions"]

    def known(value: Any) -> str:
        return "not recorded" if value is None else str(value)

    def loads(values: Sequence[float | None]) -> str:
        return ", ".join("n/a" if value is None else f"{value:.2f}" for value in values)

    features = machine["cpu_features"]
    if features is not None:
        features = ", ".join(features) or "none of " + ", ".join(CPU_FEATURES)
    features = known(features)
    load = machine["load_average"]
    if any(value is not None for value in (*load["before"], *load["after"])):
        load_text = f"load average (1, 5, 15 min): {loads(load['before'])} before, {loads(load['after'])} after"
    else:
        load_text = "load average: not recorded"
    facts = [
        f"{'date not recorded' if record['date'] is None else 'measured ' + record['date']}; "
        f"{known(machine['processor'])}, {known(machine['cores'])} cores, "
        f"{known(machine['torch_threads'])} torch thread(s)",
        f"CPU features: {features}",
        f"platform: {known(machine['platform'])}",
        load_text,
        ", ".join(f"{name} {known(version)}" for name, version in versions.items()),
    ]
    command = textwrap.wrap(record["command"], width - 4, break_long_words=False, break_on_hyphens=False)
    lines = ["$ " + " \\\n    ".join(command)]
    lines += [line for fact in facts for line in textwrap.wrap(fact, width, subsequent_indent="  ")]
    return "\n".join(lines)
