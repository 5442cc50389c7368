"""LSI benchmark: the seed tutorial's search beside the course's, on the shipped models, in one run.

Each configuration searches for eights in the latent space of the shipped MNIST
generator for the same number of evaluations (4.5 M, the tutorial's 30,000
iterations of 150), one after the other in one process, from the same seed:

* ``seed``: the tutorial as it is: CMA-ME, pyribs' ``Scheduler``, the plain
  :func:`~coursepkg.lsi.measures.evaluate` on the plain LeNet-5, torch on every core;
* ``ours``: :data:`~coursepkg.lsi.search.OURS` through :func:`~coursepkg.lsi.search.run_lsi`
  (CMA-MAE with bounded latents, lean CMA-ES decomposing its covariance a quarter as
  often, two groups of emitters taking turns with a worker process that leaves a
  quarter of the solutions to the search's process, the networks in bfloat16 on a
  CPU that multiplies it natively, float32 elsewhere);
* ``float32``: the same with float32 networks, to measure what bfloat16 changes
  in the archive (:func:`precision_check`); on a CPU without bfloat16 units this
  is ``ours`` again, and is not run twice;
* ``diagonal`` (on request): ours with a diagonal CMA-ES.

Around the runs it measures the machine's limits in the same process: the
GEMM throughput of a plain large matrix product (:func:`gemm_peak`), in float32 and
in the runs' other precisions, on one thread and on all, which the networks' FLOP/s
are compared with.
With ``--competing-job`` a second process multiplies matrices on one core for the
whole run: the benchmark on a machine shared with another job.

Run ``python -m coursepkg benchmark lsi --help``; the LSI chapter (section 7) shows
the tables of ``python -m coursepkg benchmark lsi --threads 2 --out book/data/lsi_benchmark.json``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from multiprocessing.synchronize import Event
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from ribs.archives import ArchiveBase
from torch import nn

from coursepkg.lsi.evaluator import PRECISIONS, Evaluator, resolve_precision
from coursepkg.lsi.measures import evaluate
from coursepkg.lsi.search import (
    OURS,
    OURS_DIAGONAL,
    OURS_FLOAT32,
    SEED_CONFIG,
    LSIConfig,
    illuminate,
    make_scheduler,
    run_lsi,
)
from coursepkg.mnist import pretrained
from coursepkg.util.cli import names, positive_int
from coursepkg.util.runtime import torch_threads, use_available_cores

__all__ = [
    "CONFIGS",
    "DEFAULT_CONFIGS",
    "MARKS",
    "SEED_FIGURES",
    "Contender",
    "add_arguments",
    "breakdown_rows",
    "coverage_rows",
    "flop_per_evaluation",
    "format_table",
    "gemm_peak",
    "precision_check",
    "run",
    "run_benchmark",
    "run_config",
    "speed_rows",
]


class Contender(NamedTuple):
    """A search configuration and the loop that runs it."""

    config: LSIConfig
    #: ``"tutorial"``: pyribs' Scheduler and the plain evaluation, as the tutorial runs;
    #: ``"course"``: :func:`~coursepkg.lsi.search.run_lsi`.
    engine: str


CONFIGS: dict[str, Contender] = {
    "seed": Contender(SEED_CONFIG, "tutorial"),
    "ours": Contender(OURS, "course"),
    "float32": Contender(OURS_FLOAT32, "course"),
    "diagonal": Contender(OURS_DIAGONAL, "course"),
}
#: What ``python -m coursepkg benchmark lsi`` runs unless told otherwise.
DEFAULT_CONFIGS = ("seed", "ours", "float32")
#: Evaluation counts at which the table reports cells and QD score.
MARKS = (500_000, 1_500_000, 4_500_000)
#: Evaluations between two checkpoints of a run.
CHECKPOINT_EVALUATIONS = 15_000
#: What the seed tutorial reported for 30,000 iterations (4.5 M evaluations) of its CMA-ME.
SEED_FIGURES = {
    "source": "pyribs tutorial 'Illuminating the Latent Space of an MNIST GAN' (lsi_mnist.ipynb)",
    "seconds_on_gpu": 451,
    "cells": 21083,
    "cells_current_tutorial": 21264,
    "evaluations": 4_500_000,
}


def gemm_peak(*, dtype: torch.dtype, threads: int, size: int = 2048, seconds: float = 1.0) -> float:
    """GFLOP/s of a plain ``size x size`` matrix product on ``threads`` threads: the ceiling the networks meet.

    Args:
        dtype: ``torch.float32`` or ``torch.bfloat16``.
        threads: torch threads for the measurement (restored afterwards).
        size: side of the square matrices.
        seconds: how long to keep multiplying; the best of five such rounds counts.

    Returns:
        Billions of floating-point operations per second (``2 size^3`` per product).
    """
    with torch_threads(threads):
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        a @ b  # warm-up: packing, thread start
        best = 0.0
        for _ in range(5):
            start, products = time.perf_counter(), 0
            while time.perf_counter() - start < seconds / 5:
                a @ b
                products += 1
            best = max(best, 2 * size**3 * products / (time.perf_counter() - start) / 1e9)
        return best


def flop_per_evaluation(generator: nn.Module, classifier: nn.Module) -> int:
    """Floating-point operations of one evaluation: ``2 x`` the multiply-adds of every linear and convolution layer.

    Counted on one latent vector with forward hooks, so the count follows the models
    (about 3.0 M in the generator and 0.56 M in LeNet-5 for the shipped ones).
    """
    total = [0]

    def count(module: nn.Module, _: tuple, output: torch.Tensor) -> None:
        if isinstance(module, nn.Linear):
            total[0] += 2 * module.in_features * module.out_features
        elif isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total[0] += 2 * per_output * output[0].numel()

    modules = [m for model in (generator, classifier) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    handles = [module.register_forward_hook(count) for module in modules]
    try:
        evaluate(np.zeros((1, getattr(generator, "latent_dim", 128)), np.float32), generator, classifier)
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def run_config(
    contender: Contender, *, evaluations: int, seed: int, progress: bool = False
) -> tuple[dict, ArchiveBase]:
    """Search for eights with one configuration for ``evaluations`` evaluations, and time it.

    Args:
        contender: the configuration and its engine.
        evaluations: rounded down to whole iterations of the configuration.
        seed: seeds the search.
        progress: show a progress bar on stderr.

    Returns:
        The run as JSON-ready ``{"name", "config", "engine", "seconds", "breakdown", "history"}``
        and its result archive. ``breakdown`` is in
        seconds: ``networks`` (generator, LeNet-5 and measures), ``ask``, ``archive`` and ``tell``
        (pyribs), and ``wait`` (the search waiting for the networks; for the tutorial's loop,
        which waits for all of them, it equals ``networks``).
    """
    config, engine = _resolved(contender)  # recorded as it runs
    iterations = max(1, evaluations // config.evaluations_per_iteration)
    log_every = max(1, CHECKPOINT_EVALUATIONS // config.evaluations_per_iteration)
    generator, classifier = pretrained.load("generator"), pretrained.load("lenet5")
    if engine == "tutorial":
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
        breakdown = {"networks": spent[0], "search": seconds - spent[0], "wait": spent[0]}
        archive = scheduler.result_archive
    else:
        result = run_lsi(
            generator,
            classifier,
            iterations=iterations,
            config=config,
            seed=seed,
            progress=progress,
            log_every=log_every,
        )
        timings, history, archive = result.timings, result.history, result.archive
        seconds = timings.total
        breakdown = {
            "networks": timings.evaluate + timings.here,
            "networks_here": timings.here,
            "ask": timings.ask,
            "archive": timings.archive,
            "tell": timings.tell,
            "wait": timings.wait,
        }
    run = {
        "name": config.name,
        "config": asdict(config),
        "engine": engine,
        "seconds": seconds,
        "breakdown": breakdown,
        "history": [checkpoint._asdict() for checkpoint in history],
    }
    return run, archive


def precision_check(low: ArchiveBase, *, precision: str = "bfloat16") -> dict:
    """What a lower-precision generator did to an archive: its elites scored again in float32.

    Args:
        low: the result archive of a search whose generator ran in ``precision``.
        precision: that precision.

    Returns:
        ``{"precision", "elites", "same_cell", "objective_error_mean", "objective_error_max"}``:
        the precision, how many elites, the fraction whose float32 measures fall in the same
        cell, and the mean and largest absolute difference between the objective the search
        recorded and the float32 one.
    """
    generator, classifier = pretrained.load("generator"), pretrained.load("lenet5")
    data = low.data()
    objectives, found = Evaluator(generator, classifier)(data["solution"])
    same_cell = low.index_of(found) == data["index"]
    error = np.abs(objectives - data["objective"])
    return {
        "precision": precision,
        "elites": int(len(error)),
        "same_cell": float(same_cell.mean()),
        "objective_error_mean": float(error.mean()),
        "objective_error_max": float(error.max()),
    }


def _competing_job(stop: Event) -> None:
    """Another job on the machine: float32 matrix products on one core until told to stop."""
    torch.set_num_threads(1)
    a = torch.randn(1024, 1024)
    while not stop.is_set():
        a @ a


def run_benchmark(
    configs: Sequence[str] = DEFAULT_CONFIGS,
    *,
    evaluations: int = 4_500_000,
    seed: int = 0,
    threads: int | None = None,
    competing_job: bool = False,
    progress: bool = False,
) -> dict:
    """Run each named configuration of :data:`CONFIGS` in turn, in this process, between two GEMM measurements.

    Args:
        configs: keys of :data:`CONFIGS`.
        evaluations: evaluations of each run (the tutorial's 30,000 iterations of 150: 4.5 M).
        seed: seed of every run.
        threads: torch threads (default: every core this process may use).
        competing_job: run :func:`_competing_job` in another process for the whole benchmark.
        progress: progress bars on stderr.

    Returns:
        ``{"runs", "evaluations", "seed", "seed_figures", "flop_per_evaluation", "gemm",
        "competing_job", "precision_check", "not_run"}``; ``gemm`` holds :func:`gemm_peak` before and
        after the runs (and each run its own at its start, ``"gemm_at_start"``),
        ``precision_check`` (when both ``ours`` and ``float32`` ran) what
        :func:`precision_check` says of ours, with the float32 run's cells as ``"float32_cells"``;
        ``not_run`` maps each configuration that would have repeated an earlier one's search
        on this CPU (``float32`` where ``ours`` runs in float32) to that one.

    Raises:
        ValueError: for an unknown configuration, ``evaluations < 1`` or ``threads < 1``.
    """
    unknown = [name for name in configs if name not in CONFIGS]
    if unknown or not configs:
        raise ValueError(f"Unknown or missing configurations {unknown}; choose from {list(CONFIGS)}.")
    if evaluations < 1:
        raise ValueError(f"evaluations must be at least 1, got {evaluations}.")
    cores = use_available_cores(max_threads=threads)
    # Each configuration as it will run here; one that would repeat an earlier one's search is not run.
    contenders = {name: _resolved(CONFIGS[name]) for name in configs}
    repeats = _repeats(contenders)
    precisions = ["float32", *sorted({contender.config.precision for contender in contenders.values()} - {"float32"})]

    def peaks() -> dict:  # only the precisions the runs use: bfloat16 on a CPU without its units takes minutes
        return {
            _gemm_key(name, count): round(gemm_peak(dtype=PRECISIONS[name], threads=count), 1)
            for name in precisions
            for count in sorted({1, cores})
        }

    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    job = context.Process(target=_competing_job, args=(stop,), daemon=True) if competing_job else None
    if job is not None:
        job.start()
    try:
        gemm = {"before": peaks()}
        runs, archives = [], {}
        for name in configs:
            if name in repeats:
                continue
            ceiling = peaks()  # this machine's speed changes from minute to minute: record it at each start
            run, archives[name] = run_config(CONFIGS[name], evaluations=evaluations, seed=seed, progress=progress)
            runs.append({**run, "gemm_at_start": ceiling})
        gemm["after"] = peaks()
    finally:
        if job is not None:
            stop.set()
            job.join(timeout=30)
            if job.is_alive():
                job.kill()
                job.join()
    checked = None
    if "ours" in archives and "float32" in archives:
        checked = precision_check(archives["ours"], precision=contenders["ours"].config.precision)
        checked["float32_cells"] = len(archives["float32"])
    models = pretrained.load("generator"), pretrained.load("lenet5")
    return {
        "runs": runs,
        "evaluations": evaluations,
        "seed": seed,
        "seed_figures": SEED_FIGURES,
        "flop_per_evaluation": flop_per_evaluation(*models),
        "gemm": gemm,
        "competing_job": "float32 1024 x 1024 matrix products on one core" if competing_job else None,
        "precision_check": checked,
        "not_run": repeats,
    }


def _resolved(contender: Contender) -> Contender:
    """The contender with its precision as it runs on this CPU (``"auto"`` made concrete)."""
    return contender._replace(config=replace(contender.config, precision=resolve_precision(contender.config.precision)))


def _repeats(contenders: dict[str, Contender]) -> dict[str, str]:
    """Each contender that runs the same search as an earlier one (names aside), mapped to that one."""
    firsts: dict[tuple, str] = {}
    repeats = {}
    for name, (config, engine) in contenders.items():
        first = firsts.setdefault((replace(config, name=""), engine), name)
        if first != name:
            repeats[name] = first
    return repeats


def _at(history: list[dict], evaluations: int) -> dict | None:
    """The last checkpoint with at most ``evaluations`` evaluations, if the run got that far."""
    reached = [row for row in history if row["evaluations"] <= evaluations]
    return reached[-1] if reached and history[-1]["evaluations"] >= evaluations else None


def _reached(history: list[dict], cells: int) -> int | None:
    """The evaluations after which a run first held ``cells`` cells, or ``None`` if it never did."""
    return next((checkpoint["evaluations"] for checkpoint in history if checkpoint["cells"] >= cells), None)


def _baseline(results: dict) -> dict:
    """The tutorial's run (the first ``"tutorial"`` engine), or the first run."""
    return next((run for run in results["runs"] if run.get("engine") == "tutorial"), results["runs"][0])


def _gemm_key(precision: str, threads: int) -> str:
    """How the results name one GEMM measurement: ``"bfloat16 1 thread"``, ``"float32 2 threads"``."""
    return f"{precision} {threads} thread{'s' if threads > 1 else ''}"


def _gemm(results: dict, precision: str, threads: int) -> float:
    """The best GEMM GFLOP/s measured before or after the runs, for one precision and thread count."""
    return max(results["gemm"][when][_gemm_key(precision, threads)] for when in ("before", "after"))


def speed_rows(results: dict) -> list[dict]:
    """The speed of each run, one row each: a table narrow enough for a phone.

    Args:
        results: what :func:`run_benchmark` returned (or the command saved).

    Returns:
        ``[{"search", "total s", "× tutorial", "ms / 150"}, ...]``: the run's name, its
        wall-clock seconds (whole), their ratio to the tutorial's run (2 decimals), and the
        milliseconds per 150 evaluations, the tutorial's iteration (1 decimal).
    """
    baseline = _baseline(results)["seconds"]
    return [
        {
            "search": run["name"],
            "total s": round(run["seconds"]),
            "× tutorial": round(run["seconds"] / baseline, 2),
            "ms / 150": round(run["seconds"] / run["history"][-1]["evaluations"] * 150 * 1000, 1),
        }
        for run in results["runs"]
    ]


def breakdown_rows(results: dict) -> list[dict]:
    """Where each run's time went, and how close its networks came to the machine's GEMM ceiling.

    Args:
        results: what :func:`run_benchmark` returned.

    Returns:
        ``[{"search", "networks", "pyribs", "waiting", "GFLOP/s", "% of GEMM"}, ...]``:
        whole seconds in the networks (for ours the worker's CPU seconds, overlapping the rest,
        and the search process's share), in pyribs (ask, archive insertion, tell), and waiting
        for the networks; the networks' FLOP/s
        and their share of :func:`gemm_peak` for the precision and threads they ran with
        (the tutorial's: float32 on every core; ours: the worker's one thread).
    """
    threads = results["provenance"]["machine"]["torch_threads"] if "provenance" in results else 1
    rows = []
    for run in results["runs"]:
        breakdown = run["breakdown"]
        flops = results["flop_per_evaluation"] * run["history"][-1]["evaluations"] / breakdown["networks"] / 1e9
        tutorial = run["engine"] == "tutorial"
        peak = _gemm(results, run["config"]["precision"], threads if tutorial else 1)
        search = breakdown["search"] if tutorial else breakdown["ask"] + breakdown["archive"] + breakdown["tell"]
        rows.append(
            {
                "search": run["name"],
                "networks": round(breakdown["networks"]),
                "pyribs": round(search),
                "waiting": round(breakdown["wait"]),
                "GFLOP/s": round(flops),
                "% of GEMM": round(flops / peak, 2),
            }
        )
    return rows


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
    """The benchmark as text: speed, where the time went, cells at each of :data:`MARKS`, the precision check.

    Printed by ``python -m coursepkg benchmark lsi``; the LSI chapter (section 7) shows the
    same results as tables (:func:`speed_rows`, :func:`breakdown_rows`, :func:`coverage_rows`).
    """
    title = f"LSI of the shipped MNIST GAN, digit 8, seed {results['seed']}, {results['evaluations']:,} evaluations"
    lines = [title]
    if results["competing_job"]:
        lines.append(f"beside another job: {results['competing_job']}")
    for rows in (speed_rows(results), breakdown_rows(results)):
        lines += ["", *_text_table(rows)]
    lines += ["", *_text_table(coverage_rows(results))]
    gemm = results["gemm"]["before"]
    lines += ["", "GEMM ceiling (GFLOP/s, before the runs): " + ", ".join(f"{k} {v:.0f}" for k, v in gemm.items())]
    for run in results["runs"]:
        if "gemm_at_start" in run:  # files saved before it was recorded lack it
            ceiling = ", ".join(f"{k} {v:.0f}" for k, v in run["gemm_at_start"].items())
            lines.append(f"  at the start of {run['name']}: {ceiling}")
    for name, same in results.get("not_run", {}).items():  # older files lack it
        lines.append(f"{name}: not run, the same search as {same} on this CPU")
    checked = results["precision_check"]
    if checked:
        lines += [
            f"{checked['precision']} archive scored again in float32: {checked['same_cell']:.1%} of its "
            f"{checked['elites']:,} elites in the same cell, objectives within {checked['objective_error_mean']:.4f} "
            f"on average ({checked['objective_error_max']:.3f} at most); the float32 run filled "
            f"{checked['float32_cells']:,} cells",
        ]
    seed = results["seed_figures"]
    lines.append(
        f"seed tutorial, on a GPU: {seed['seconds_on_gpu']} s for 4.5 M evaluations, {seed['cells']:,} cells "
        f"({seed['cells_current_tutorial']:,} in the current tutorial)"
    )
    return "\n".join(lines)


def _text_table(rows: list[dict]) -> list[str]:
    """Rows of dicts as aligned text lines (``-`` for ``None``), by pandas."""
    return pd.DataFrame(rows).to_string(index=False, na_rep="-").splitlines()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``python -m coursepkg benchmark lsi`` (the LSI chapter's tables) to its ``parser``."""
    parser.add_argument(
        "--evaluations",
        type=positive_int,
        default=4_500_000,
        help="evaluations per configuration (default: 4500000, the tutorial's 30000 iterations of 150)",
    )
    parser.add_argument(
        "--configs",
        type=names("configuration", list(CONFIGS)),
        default=list(DEFAULT_CONFIGS),
        help=f"comma-separated, from {','.join(CONFIGS)} (default: {','.join(DEFAULT_CONFIGS)})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: all cores)")
    parser.add_argument(
        "--competing-job",
        action="store_true",
        help="run float32 matrix products on one core in another process throughout (a shared machine)",
    )
    parser.add_argument("--progress", action="store_true", help="progress bars on stderr")


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark of the LSI chapter as ``python -m coursepkg benchmark lsi`` was told to.

    Args:
        args: the parsed options of :func:`add_arguments`.

    Returns:
        What :func:`run_benchmark` returns.
    """
    return run_benchmark(
        args.configs,
        evaluations=args.evaluations,
        seed=args.seed,
        threads=args.threads,
        competing_job=args.competing_job,
        progress=args.progress,
    )
