"""LSI benchmark: the seed tutorial's CMA-ME beside the course's configurations, on the shipped models.

The searches (the seed's, ours, and ours with a diagonal CMA-ES) look for
eights in the latent space of the shipped MNIST generator
(:func:`coursepkg.lsi.measures.evaluate`), one after the other in one process, from the
same seed. For each the table gives the wall-clock seconds per
ask/tell iteration, the share of it spent in the networks (generator, LeNet-5
and the measures), and the cells filled and QD score after 0.5 M, 1.5 M and
4.5 M evaluations (150 per iteration: 30,000 iterations make 4.5 M). The seed
tutorial's own figures are printed below for comparison.

Run ``python -m coursepkg benchmark lsi --help``; the LSI chapter shows the table of
``python -m coursepkg benchmark lsi --threads 2 --out book/data/lsi_benchmark.json``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import NamedTuple

import numpy as np

from coursepkg.lsi.measures import evaluate
from coursepkg.lsi.pooling import fast_pooling
from coursepkg.lsi.search import OURS, OURS_DIAGONAL, SEED_CONFIG, LSIConfig, illuminate, make_scheduler
from coursepkg.mnist import pretrained
from coursepkg.util.cli import names, positive_int
from coursepkg.util.runtime import use_available_cores

__all__ = [
    "CONFIGS",
    "MARKS",
    "SEED_FIGURES",
    "Contender",
    "add_arguments",
    "coverage_rows",
    "format_table",
    "run",
    "run_benchmark",
    "run_config",
    "speed_rows",
]


class Contender(NamedTuple):
    """A search configuration and how its images are evaluated."""

    config: LSIConfig
    #: LeNet-5 with :func:`coursepkg.lsi.pooling.fast_pooling` (same outputs, faster);
    #: the tutorial's plain model if False.
    fast_pooling: bool


CONFIGS: dict[str, Contender] = {
    "seed": Contender(SEED_CONFIG, False),
    "ours": Contender(OURS, True),
    "diagonal": Contender(OURS_DIAGONAL, True),
}
#: Evaluation counts at which the table reports cells and QD score.
MARKS = (500_000, 1_500_000, 4_500_000)
#: What the seed tutorial reported for 30,000 iterations (4.5 M evaluations) of its CMA-ME.
SEED_FIGURES = {
    "source": "pyribs tutorial 'Illuminating the Latent Space of an MNIST GAN' (lsi_mnist.ipynb)",
    "seconds_on_gpu": 451,
    "cells": 21083,
    "cells_current_tutorial": 21264,
    "evaluations": 4_500_000,
}


def run_config(
    config: LSIConfig, *, iterations: int, seed: int, fast: bool = False, log_every: int = 100, progress: bool = False
) -> dict:
    """Search for eights with one configuration and time it.

    Args:
        config: the search's settings.
        fast: evaluate with :func:`coursepkg.lsi.pooling.fast_pooling` applied to LeNet-5.
        iterations: ask/tell iterations.
        seed: seeds the search.
        log_every: iterations between checkpoints.
        progress: show a progress bar on stderr.

    Returns:
        ``{"name", "config", "fast_pooling", "seconds", "evaluate_seconds", "seconds_per_iteration",
        "history"}``; ``evaluate_seconds`` is the time spent in :func:`coursepkg.lsi.measures.evaluate`
        (the networks and measures), the rest is pyribs' ask and tell.
    """
    generator, classifier = pretrained.load("generator"), pretrained.load("lenet5")
    classifier = fast_pooling(classifier) if fast else classifier
    spent = [0.0]

    def timed_evaluate(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        start = time.perf_counter()
        try:
            return evaluate(latents, generator, classifier)
        finally:
            spent[0] += time.perf_counter() - start

    scheduler = make_scheduler(config, seed=seed)
    history = illuminate(
        scheduler,
        timed_evaluate,
        iterations=iterations,
        progress=progress,
        log_every=log_every,
        description=config.name,
    )
    seconds = history[-1].seconds
    return {
        "name": config.name,
        "config": asdict(config),
        "fast_pooling": fast,
        "seconds": seconds,
        "evaluate_seconds": spent[0],
        "seconds_per_iteration": seconds / iterations,
        "history": [checkpoint._asdict() for checkpoint in history],
    }


def run_benchmark(
    configs: Sequence[str],
    *,
    iterations: int = 30_000,
    seed: int = 0,
    threads: int | None = None,
    progress: bool = False,
) -> dict:
    """Run each named configuration of :data:`CONFIGS` in turn, in this process (the LSI chapter's section 7).

    Args:
        configs: keys of :data:`CONFIGS`.
        iterations: ask/tell iterations of each run.
        seed: seed of every run.
        threads: torch threads (default: every core this process may use).
        progress: progress bars on stderr.

    Returns:
        ``{"runs": [...], "iterations", "seed", "seed_figures"}``; the torch threads
        are the provenance record's (:func:`coursepkg.util.provenance.provenance`).

    Raises:
        ValueError: for an unknown configuration, ``iterations < 1`` or ``threads < 1``.
    """
    unknown = [name for name in configs if name not in CONFIGS]
    if unknown or not configs:
        raise ValueError(f"Unknown or missing configurations {unknown}; choose from {list(CONFIGS)}.")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}.")
    use_available_cores(max_threads=threads)
    runs = [
        run_config(
            CONFIGS[name].config, fast=CONFIGS[name].fast_pooling, iterations=iterations, seed=seed, progress=progress
        )
        for name in configs
    ]
    return {"runs": runs, "iterations": iterations, "seed": seed, "seed_figures": SEED_FIGURES}


def _at(history: list[dict], evaluations: int) -> dict | None:
    """The last checkpoint with at most ``evaluations`` evaluations, if the run got that far."""
    reached = [row for row in history if row["evaluations"] <= evaluations]
    return reached[-1] if reached and history[-1]["evaluations"] >= evaluations else None


def _reached(history: list[dict], cells: int) -> int | None:
    """The evaluations after which a run first held ``cells`` cells, or ``None`` if it never did."""
    return next((checkpoint["evaluations"] for checkpoint in history if checkpoint["cells"] >= cells), None)


def speed_rows(results: dict) -> list[dict]:
    """The speed of each run, one row each: a table narrow enough for a phone.

    Args:
        results: what :func:`run_benchmark` returned (or the command saved).

    Returns:
        ``[{"search", "ms/it", "total s", "networks"}, ...]``: the run's name, milliseconds
        per iteration (1 decimal), wall-clock seconds (whole) and the share of them spent in
        the generator, LeNet-5 and the measures (a fraction, 2 decimals).
    """
    return [
        {
            "search": run["name"],
            "ms/it": round(run["seconds_per_iteration"] * 1000, 1),
            "total s": round(run["seconds"]),
            "networks": round(run["evaluate_seconds"] / run["seconds"], 2),
        }
        for run in results["runs"]
    ]


def coverage_rows(results: dict) -> list[dict]:
    """Each run's cells filled at each of :data:`MARKS`, and when it reached the tutorial's cells.

    Args:
        results: what :func:`run_benchmark` returned (or the command saved).

    Returns:
        ``[{"search", "0.5 M", "1.5 M", "4.5 M", "to 21,083"}, ...]``: the cells filled after
        each mark the runs got to (``None`` where a run stopped earlier), then the millions of
        evaluations after which the run first held the seed tutorial's cells
        (``SEED_FIGURES["cells"]``, 2 decimals; ``None`` if never).
    """
    target = results["seed_figures"]["cells"]
    last = max(run["history"][-1]["evaluations"] for run in results["runs"])
    marks = [mark for mark in MARKS if mark <= last] or [last]
    rows = []
    for run in results["runs"]:
        row: dict = {"search": run["name"]}
        for mark in marks:
            checkpoint = _at(run["history"], mark)
            row[f"{mark / 1e6:g} M"] = None if checkpoint is None else checkpoint["cells"]
        reached = _reached(run["history"], target)
        row[f"to {target:,}"] = None if reached is None else round(reached / 1e6, 2)
        rows.append(row)
    return rows


def format_table(results: dict) -> str:
    """The benchmark as text: speed per configuration, then cells and QD score at each of :data:`MARKS`.

    Printed by ``python -m coursepkg benchmark lsi``; the LSI chapter (section 7) shows the
    same results as tables (:func:`speed_rows`, :func:`coverage_rows`).
    """
    header = f"{'config':<16} {'ms/it':>6} {'it/s':>6} {'total s':>8} {'networks':>9}"
    title = f"LSI of the shipped MNIST GAN, digit 8, seed {results['seed']}, {results['iterations']:,} iterations"
    lines = [title, "", header, "-" * len(header)]
    for run in results["runs"]:
        lines.append(
            f"{run['name']:<16} {run['seconds_per_iteration'] * 1000:>6.1f} "
            f"{1 / run['seconds_per_iteration']:>6.1f} {run['seconds']:>8.1f} "
            f"{run['evaluate_seconds'] / run['seconds']:>9.0%}"
        )
    last = max(run["history"][-1]["evaluations"] for run in results["runs"])
    marks = [mark for mark in MARKS if mark <= last]
    marks = marks if last in marks else [*marks, last]
    header = f"{'evaluations':>11}  {'config':<16} {'cells':>7} {'QD score':>9}"
    lines += ["", header, "-" * len(header)]
    for mark in marks:
        for run in results["runs"]:
            row = _at(run["history"], mark)
            if row:
                lines.append(
                    f"{f'{mark / 1e6:g} M':>11}  {run['name']:<16} {row['cells']:>7,} {row['qd_score']:>9,.0f}"
                )
    seed = results["seed_figures"]
    lines += [
        "",
        f"seed tutorial, on a GPU: {seed['seconds_on_gpu']} s for 4.5 M evaluations,",
        f"{seed['cells']:,} cells ({seed['cells_current_tutorial']:,} in the current tutorial)",
        f"evaluations to reach the tutorial's {seed['cells']:,} cells:",
    ]
    for run in results["runs"]:
        reached = _reached(run["history"], seed["cells"])
        lines.append(f"  {run['name']:<16} " + ("not reached" if reached is None else f"{reached / 1e6:.2f} M"))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``python -m coursepkg benchmark lsi`` (the LSI chapter's table) to its ``parser``."""
    parser.add_argument(
        "--iterations",
        type=positive_int,
        default=30_000,
        help="ask/tell iterations per configuration, 150 evaluations each (default: 30000)",
    )
    parser.add_argument(
        "--configs",
        type=names("configuration", list(CONFIGS)),
        default=list(CONFIGS),
        help=f"comma-separated, from {','.join(CONFIGS)} (default: all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--progress", action="store_true", help="progress bars on stderr")


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark of the LSI chapter as ``python -m coursepkg benchmark lsi`` was told to.

    Args:
        args: the parsed options of :func:`add_arguments`.

    Returns:
        What :func:`run_benchmark` returns.
    """
    return run_benchmark(
        args.configs, iterations=args.iterations, seed=args.seed, threads=args.threads, progress=args.progress
    )
