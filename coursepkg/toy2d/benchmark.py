"""Mode-coverage benchmark: train each GAN variant on the ring and the grid, print a table.

Protocol of PacGAN (Lin et al., 2018, section 5.1), as :mod:`coursepkg.toy2d.modes`
computes it: each run trains one variant from one seed, draws 2,500 samples and
counts the modes captured, the share of high-quality samples (within 3 std of
their nearest mode) and the reverse KL divergence of the mode histogram. The
table gives mean ± standard error over the seeds, the CPU seconds per run (one
torch thread per run), how many runs hit the target (every mode, with at least
98 % high-quality samples on the ring and 95 % on the grid), and the published
rows beside ours.

Run ``python -m coursepkg benchmark modes --help``, which prints the table as text
(:func:`format_table`); the recap chapter shows the saved results of
``python -m coursepkg benchmark modes --jobs 2 --out book/data/mode_benchmark.json``
as one narrow table per data set (:func:`table_rows`).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import get_context

import numpy as np
import torch

from coursepkg.toy2d.data import mixture_means, mixture_std, sample_data
from coursepkg.toy2d.infogan import InfoGAN
from coursepkg.toy2d.modes import mode_coverage
from coursepkg.toy2d.training import train
from coursepkg.toy2d.variants import StandardGAN, Variant
from coursepkg.toy2d.wgan import WGAN
from coursepkg.util.cli import names, positive_int

__all__ = [
    "DATASETS",
    "PUBLISHED",
    "TARGETS",
    "VARIANTS",
    "Setting",
    "add_arguments",
    "format_table",
    "run",
    "run_benchmark",
    "run_one",
    "table_rows",
]

DATASETS = ("ring", "grid")
#: The issue's target: (every mode captured and) at least this share of high-quality samples.
TARGETS = {"ring": 0.98, "grid": 0.95}
SAMPLES = 2500


@dataclass(frozen=True)
class Setting:
    """How the benchmark builds and trains one variant.

    Attributes:
        build: ``build(modes)`` returns a fresh model for a data set with that many modes.
        steps: generator steps per data set.
        options: further keyword arguments of :func:`coursepkg.toy2d.training.train`.
    """

    build: Callable[[int], Variant]
    steps: dict[str, int]
    options: dict = field(default_factory=dict)


# Every setting decays its learning rate to 0: on modes of std 0.01 the samples
# must stop moving to land within 3 std. The step counts keep each run under a
# minute of one CPU core.
_STEPS = {"ring": 3000, "grid": 6000}
VARIANTS: dict[str, Setting] = {
    "gan": Setting(lambda modes: StandardGAN(), _STEPS, {"lr_decay": True}),
    "dropout": Setting(lambda modes: StandardGAN(dropout=0.1), _STEPS, {"lr_decay": True}),
    "pacgan2": Setting(lambda modes: StandardGAN(pack=2), _STEPS, {"lr_decay": True}),
    # Five critic steps per generator step cost about three plain steps. The
    # paper's clip 0.01 and learning rate 5e-5 learn too slowly for this budget
    # (seed 0 on the ring: 5 modes, 0.7 % high quality), hence 0.05 and 5e-4.
    "wgan": Setting(
        lambda modes: WGAN(clip=0.05),
        {"ring": 1000, "grid": 2000},
        {"lr_decay": True, "d_steps": 5, "optimizer": "rmsprop", "lr": 5e-4},
    ),
    # One code value per mode: the codes can split the latent space between the modes.
    "infogan": Setting(lambda modes: InfoGAN(codes=modes), _STEPS, {"lr_decay": True}),
}

#: Published results (modes captured, % high-quality samples), mean over 10 runs.
PUBLISHED = [
    {"name": "GAN [PacGAN, Table 1]", "ring": (6.3, 98.2), "grid": (17.3, 94.8)},
    {"name": "best PacGAN [PacGAN, Table 1]", "ring": (7.9, 95.6), "grid": (24.8, 93.6)},
    {"name": "VEEGAN [VEEGAN, Table 1]", "ring": (8.0, 52.9), "grid": (24.6, 40.0)},
]


def run_one(variant: str, dataset: str, seed: int, *, steps: int | None = None) -> dict:
    """Train one variant from one seed and score 2,500 of its samples.

    Args:
        variant: a key of :data:`VARIANTS`.
        dataset: ``"ring"`` or ``"grid"``.
        seed: seeds the model, the training batches and the scored samples.
        steps: generator steps; the setting's own count by default.

    Returns:
        ``{"seed", "modes", "high_quality", "reverse_kl", "cpu_seconds"}``.
    """
    torch.set_num_threads(1)  # the CPU seconds below are one core's
    setting = VARIANTS[variant]
    means = mixture_means(dataset)
    torch.manual_seed(seed)
    model = setting.build(len(means))
    run = train(model, lambda n: sample_data(n, dataset), n_steps=steps or setting.steps[dataset], **setting.options)
    samples = model.sample(SAMPLES, generator=torch.Generator().manual_seed(seed))
    score = mode_coverage(samples, means, mixture_std(dataset))
    return {
        "seed": seed,
        "modes": score.modes_captured,
        "high_quality": score.high_quality,
        "reverse_kl": score.reverse_kl,
        "cpu_seconds": run.cpu_seconds,
    }


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    if len(array) < 2 or not np.isfinite(array).all():  # reverse KL is inf without a good sample
        return float(array.mean()), math.nan
    return float(array.mean()), float(array.std(ddof=1) / math.sqrt(len(array)))


def _summary(variant: str, dataset: str, runs: list[dict]) -> dict:
    row = {"variant": variant, "dataset": dataset, "seeds": len(runs), "runs": runs}
    for key in ("modes", "high_quality", "reverse_kl", "cpu_seconds"):
        row[key], row[f"{key}_se"] = _mean_se([run[key] for run in runs])
    modes = len(mixture_means(dataset))
    row["on_target"] = sum(r["modes"] == modes and r["high_quality"] >= TARGETS[dataset] for r in runs)
    return row


def run_benchmark(
    variants: Sequence[str],
    datasets: Sequence[str],
    *,
    seeds: int = 10,
    steps: int | None = None,
    jobs: int = 1,
    progress: bool = False,
) -> dict:
    """Run every (variant, data set, seed) and summarise; the recap chapter shows the full run's table.

    Args:
        variants: keys of :data:`VARIANTS`.
        datasets: names in :data:`DATASETS`.
        seeds: runs per (variant, data set), seeded 0, 1, ...
        steps: generator steps of every run; each setting's own by default.
        jobs: worker processes (one torch thread each).
        progress: print a line to stderr as each run finishes.

    Returns:
        ``{"rows": [...], "published": PUBLISHED, "settings": ..., "samples": SAMPLES}``,
        one row per (variant, data set) with means, standard errors
        (``nan`` for one seed), the runs and how many were on target.

    Raises:
        ValueError: for an unknown variant or data set, or a count below 1.
    """
    unknown = [v for v in variants if v not in VARIANTS] + [d for d in datasets if d not in DATASETS]
    if unknown or not variants or not datasets:
        raise ValueError(
            f"Unknown or missing variants/data sets {unknown}; variants are {list(VARIANTS)}, "
            f"data sets {list(DATASETS)}."
        )
    if seeds < 1 or jobs < 1 or (steps is not None and steps < 1):
        raise ValueError(f"seeds, jobs and steps must be at least 1, got {seeds}, {jobs} and {steps}.")
    tasks = [(v, d, s) for d in datasets for v in variants for s in range(seeds)]
    run = partial(run_one, steps=steps)
    # spawn: fresh workers, no torch thread pool inherited through fork.
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) if jobs > 1 else nullcontext() as pool:
        results = []
        for (v, d, _), result in zip(tasks, pool.map(run, *zip(*tasks)) if pool else map(run, *zip(*tasks))):
            results.append(result)
            if progress:
                print(
                    f"[{len(results)}/{len(tasks)}] {d} {v} seed {result['seed']}: {result['modes']} modes, "
                    f"{result['high_quality']:.1%} high quality, {result['cpu_seconds']:.0f} CPU s",
                    file=sys.stderr,
                )
    rows = [
        _summary(v, d, [r for (tv, td, _), r in zip(tasks, results) if (tv, td) == (v, d)])
        for d in datasets
        for v in variants
    ]
    settings = {v: {"steps": steps or VARIANTS[v].steps, **VARIANTS[v].options} for v in variants}
    return {"rows": rows, "published": PUBLISHED, "settings": settings, "samples": SAMPLES}


def _pm(mean: float, se: float, scale: float = 1.0, digits: int = 1) -> str:
    if math.isinf(mean):
        return "inf"
    se_text = "n/a" if math.isnan(se) else f"{se * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {se_text}"


def format_table(results: dict) -> str:
    """The benchmark table as text: our rows (mean ± s.e.), then the published ones; printed by the command."""
    title = f"Mode coverage, {results['samples']} samples per run, mean ± standard error over seeds"
    header = (
        f"{'data':<5} {'variant':<30} {'seeds':>5} {'modes':>12} {'high quality %':>14} "
        f"{'reverse KL':>13} {'CPU s/run':>9} {'on target':>9}"
    )
    lines = [title, "", header, "-" * len(header)]
    for row in results["rows"]:
        lines.append(
            f"{row['dataset']:<5} {row['variant']:<30} {row['seeds']:>5} "
            f"{_pm(row['modes'], row['modes_se']):>12} {_pm(row['high_quality'], row['high_quality_se'], 100):>14} "
            f"{_pm(row['reverse_kl'], row['reverse_kl_se'], digits=3):>13} {row['cpu_seconds']:>9.1f} "
            f"{str(row['on_target']) + '/' + str(row['seeds']):>9}"
        )
    datasets = dict.fromkeys(row["dataset"] for row in results["rows"])
    for dataset in datasets:
        for published in results["published"]:
            modes, quality = published[dataset]
            lines.append(
                f"{dataset:<5} {published['name']:<30} {10:>5} {modes:>12.1f} {quality:>14.1f} "
                f"{'-':>13} {'-':>9} {'-':>9}"
            )
    return "\n".join(lines)


#: The variants' names in the book's tables.
LABELS = {"gan": "GAN", "dropout": "dropout", "pacgan2": "PacGAN2", "wgan": "WGAN", "infogan": "InfoGAN"}


def table_rows(results: dict, dataset: str, *, separator: str = " ± ") -> list[dict[str, str]]:
    """One data set's rows of the benchmark, ours then the published ones, short enough for a phone's page.

    The recap chapter shows them as a pandas ``DataFrame``, with
    ``separator="<br>±&nbsp;"`` so that each standard error sits under its mean.

    Args:
        results: what :func:`run_benchmark` returned (or its saved JSON).
        dataset: ``"ring"`` or ``"grid"``.
        separator: what joins a mean and its standard error.

    Returns:
        One dict per row, every value a string: ``variant``; ``modes``
        captured and ``HQ %`` (high-quality samples), as mean, separator and
        standard error over the seeds (the published rows: their mean);
        ``rev. KL``, ``CPU s`` per run and ``on target`` (runs on target of
        runs), ``"-"`` for the published rows.

    Raises:
        ValueError: if ``results`` has no row for ``dataset``.
    """
    ours = [row for row in results["rows"] if row["dataset"] == dataset]
    if not ours:
        raise ValueError(
            f"no results for the data set {dataset!r}; they hold {sorted({r['dataset'] for r in results['rows']})}."
        )

    def pm(mean: float, se: float, *, scale: float = 1.0, digits: int = 1) -> str:
        return _pm(mean, se, scale, digits).replace(" ± ", separator)

    rows = [
        {
            "variant": LABELS.get(row["variant"], row["variant"]),
            "modes": pm(row["modes"], row["modes_se"]),
            "HQ %": pm(row["high_quality"], row["high_quality_se"], scale=100),
            "rev. KL": pm(row["reverse_kl"], row["reverse_kl_se"], digits=3),
            "CPU s": f"{row['cpu_seconds']:.0f}",
            "on target": f"{row['on_target']}/{row['seeds']}",
        }
        for row in ours
    ]
    for published in results["published"]:
        modes, quality = published[dataset]
        name = published["name"].replace(", Table 1", "")
        rows.append(
            {
                "variant": name,
                "modes": f"{modes:.1f}",
                "HQ %": f"{quality:.1f}",
                "rev. KL": "-",
                "CPU s": "-",
                "on target": "-",
            }
        )
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``python -m coursepkg benchmark modes`` (the recap chapter's table) to its ``parser``."""
    parser.add_argument(
        "--variants",
        type=names("variant", list(VARIANTS)),
        default=list(VARIANTS),
        help=f"comma-separated, from {','.join(VARIANTS)} (default: all)",
    )
    parser.add_argument(
        "--datasets",
        type=names("data set", DATASETS),
        default=list(DATASETS),
        help="comma-separated, from ring,grid (default: both)",
    )
    parser.add_argument("--seeds", type=positive_int, default=10, help="runs per variant and data set (default: 10)")
    parser.add_argument(
        "--steps", type=positive_int, default=None, help="generator steps of every run (default: per setting)"
    )
    parser.add_argument("--quick", action="store_true", help="one seed and a tenth of the steps: a smoke test")
    parser.add_argument(
        "--jobs", type=positive_int, default=1, help="worker processes, one torch thread each (default: 1)"
    )


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark of the recap chapter as ``python -m coursepkg benchmark modes`` was told to.

    Args:
        args: the parsed options of :func:`add_arguments`.

    Returns:
        What :func:`run_benchmark` returns.
    """
    seeds, steps = args.seeds, args.steps
    if args.quick:
        seeds, steps = 1, steps or max(1, min(s for v in args.variants for s in VARIANTS[v].steps.values()) // 10)
    # Every run uses one torch thread, in this process too: the provenance record says so.
    torch.set_num_threads(1)
    return run_benchmark(args.variants, args.datasets, seeds=seeds, steps=steps, jobs=args.jobs, progress=True)
