"""Process-wide PyTorch settings for the course's notebooks and commands."""

from __future__ import annotations

import os

import torch

__all__ = ["use_available_cores"]


def use_available_cores() -> int:
    """Give torch one thread per CPU core this process may use, and return that count.

    PyTorch's default can exceed the cores a container or a CI job really has;
    oversubscribed threads make small CPU workloads 5-10 times slower.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(cores)
    return cores
