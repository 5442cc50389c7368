"""Process-wide PyTorch settings for the course's notebooks and commands, and what this machine's CPU has."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

__all__ = ["CPU_FEATURES", "available_cores", "cpu", "torch_threads", "use_available_cores"]


#: The CPU features that set the speed of float32 and bfloat16 matrix products (Linux's names):
#: AVX2 and FMA for float32, AVX-512's bfloat16 instructions and AMX's tiles for bfloat16.
CPU_FEATURES = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu() -> tuple[str, list[str] | None]:
    """This machine's CPU model and which of :data:`CPU_FEATURES` it has.

    Used by every benchmark's provenance record (:mod:`coursepkg.util.provenance`)
    and by the LSI chapter's evaluation, which runs its networks in bfloat16 only on a
    CPU that multiplies bfloat16 natively (:func:`coursepkg.lsi.evaluator.resolve_precision`).

    Returns:
        ``(model, features)``: the model name from ``/proc/cpuinfo`` (e.g. ``"AMD EPYC"``), or
        :func:`platform.processor` where there is none; the features in the order of
        :data:`CPU_FEATURES`, or ``None`` where the system does not list them (not Linux).
    """
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), None
    model = re.search(r"^model name\s*:\s*(.+)$", info, re.MULTILINE)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", info, re.MULTILINE)
    have = set(flags.group(1).split()) if flags else set()
    name = model.group(1).strip() if model else platform.processor() or platform.machine()
    return name, [feature for feature in CPU_FEATURES if feature in have] if flags else None


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity; a container may see more than it may use)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def use_available_cores(*, max_threads: int | None = None) -> int:
    """Give torch one thread per CPU core this process may use, and return that count.

    PyTorch's default can exceed the cores a container or a CI job really has;
    oversubscribed threads make small CPU workloads 5-10 times slower.

    Args:
        max_threads: use at most this many threads. Networks of a few dozen
            units run fastest on one: their parallel regions are too short to
            pay for the threads' synchronisation, and on cores shared with
            other jobs every region waits for its slowest thread (ten times
            slower and worse).

    Returns:
        The number of threads torch now uses: the cores in this process's CPU
        affinity, at most ``$OMP_NUM_THREADS`` when that is set (the test suite
        sets it to 1 when it runs two workers side by side), at most ``max_threads``.

    Raises:
        ValueError: for ``max_threads < 1``, or an ``OMP_NUM_THREADS`` that is not a positive integer.
    """
    cores = min(available_cores(), _omp_limit())
    if max_threads is not None:
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, got {max_threads}.")
        cores = min(cores, max_threads)
    torch.set_num_threads(cores)
    return cores


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the ``with`` block on ``threads`` torch threads, then restore the previous count.

    Used by the LSI search (its own share of the evaluation, beside a worker
    process) and the LSI benchmark's GEMM ceilings.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _omp_limit() -> int | float:
    """The thread limit set in ``$OMP_NUM_THREADS`` (its first level when nested, ``"4,2"``), or infinity."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if not value:
        return float("inf")
    first = value.split(",")[0].strip()
    if not first.isdigit() or int(first) < 1:
        raise ValueError(
            f"OMP_NUM_THREADS={value!r} is not a positive number of threads; set it to e.g. 1, "
            "or unset it to use every core."
        )
    return int(first)
