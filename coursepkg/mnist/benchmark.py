"""Benchmark of the MNIST models: our GAN recipe against a tutorial's at equal CPU time, with every metric.

Both GAN recipes of :data:`coursepkg.mnist.train.RECIPES` train from the same
seed on the same digits, each in a process of its own on one thread, side by
side on the same machine. Each run is measured with the shipped LeNet-5 on the
held-out digits at every CPU budget it passes (a copy of its generator is kept
then), beside the shipped generator and the floor: real fit digits measured
like a generator's samples.

Run ``python -m coursepkg benchmark mnist --help``; the MNIST lab shows the table of
``python -m coursepkg benchmark mnist --out book/data/mnist_benchmark.json``
(budgets of 600 and 1,300 CPU s, about 22 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from dataclasses import asdict

import pandas as pd
import torch

from coursepkg.mnist import data as mnist_data
from coursepkg.mnist import pretrained
from coursepkg.mnist.metrics import GeneratorReport, accuracy, evaluate_generator, evaluate_images
from coursepkg.mnist.results import table_formats, table_frame
from coursepkg.mnist.train import RECIPES, GANRecipe, recipe_name, train_gan
from coursepkg.util.cli import positive_int

__all__ = [
    "FLOOR",
    "METRICS",
    "add_arguments",
    "comparison_rows",
    "format_table",
    "run",
    "run_benchmark",
]

#: The ``generator`` of the row that measures real fit digits as if a generator had drawn them.
FLOOR = "real fit digits (floor)"

#: The measured columns of every row, in the table's order.
METRICS = ("digits", "class_kl", "frechet", "precision", "recall", "density", "coverage")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``python -m coursepkg benchmark mnist`` (the MNIST lab's table) to its ``parser``."""
    parser.add_argument(
        "--cpu-budgets",
        type=float,
        nargs="+",
        default=[600.0, 1300.0],
        help="CPU seconds of training at which each recipe is measured (default: 600 1300)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of both runs (default: 0)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads of each run (default: 1)")
    parser.add_argument(
        "--jobs", type=positive_int, default=None, help="recipes trained at once (default: as many as the cores allow)"
    )


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark of the MNIST lab as ``python -m coursepkg benchmark mnist`` was told to.

    Args:
        args: the parsed options of :func:`add_arguments`.

    Returns:
        What :func:`run_benchmark` returns.
    """
    torch.set_num_threads(args.threads)  # the provenance records the threads of one run
    jobs = args.jobs or max(1, min(2, (os.cpu_count() or 1) // args.threads))
    return run_benchmark(cpu_budgets_s=args.cpu_budgets, seed=args.seed, threads=args.threads, jobs=jobs)


def _row(generator: str, recipe: str | None, report: GeneratorReport, **training: float | int | None) -> dict:
    """One row of the table: how a generator was trained, then what LeNet-5 measured on its samples."""
    manifold = asdict(report.manifold)
    return {
        "generator": generator,
        "recipe": recipe,
        **training,
        "digits": report.coverage.digits_present,
        "class_kl": report.coverage.kl_to_uniform,
        "frechet": report.frechet,
        **{name: manifold[name] for name in METRICS[3:]},
    }


def _train_and_measure(task: tuple[str, tuple[float, ...], int, int, bool]) -> list[dict]:
    """Train one recipe up to the largest budget and measure it at each budget (one process)."""
    name, budgets, seed, threads, progress = task
    torch.set_num_threads(threads)
    fit, _ = mnist_data.course_split("fit", quiet=True)
    heldout, _ = mnist_data.course_split("heldout", quiet=True)
    lenet = pretrained.load("lenet5")
    recipe = RECIPES[name]
    result = train_gan(
        fit,
        recipe=recipe,
        epochs=None,
        seed=seed,
        cpu_budget_s=budgets[-1],
        snapshot_cpu_s=budgets[:-1],
        device="cpu",
        progress=progress,
    )
    taken = [
        (budget, snapshot.generator, snapshot.cpu_seconds, snapshot.images_seen)
        for budget, snapshot in result.snapshots.items()
    ]
    taken.append((budgets[-1], result.gan.generator, result.cpu_seconds, result.images_seen))
    return [
        _row(
            name,
            name,
            evaluate_generator(generator, lenet, heldout, latent_dim=recipe.latent_dim),
            cpu_budget_s=budget,
            cpu_seconds=cpu_seconds,
            epochs=images_seen / len(fit),
            images_per_cpu_second=images_seen / cpu_seconds,
        )
        for budget, generator, cpu_seconds, images_seen in taken
    ]


def run_benchmark(
    *, cpu_budgets_s: list[float], seed: int = 0, threads: int = 1, jobs: int = 2, progress: bool = True
) -> dict:
    """Train both recipes up to the largest budget and measure them at every budget, beside the shipped generator.

    Used by ``python -m coursepkg benchmark mnist``, whose results the MNIST lab shows.

    Args:
        cpu_budgets_s: CPU times (all threads of a run) at which each recipe is measured.
        seed: seed of both runs.
        threads: torch threads of each run.
        jobs: runs at once, each in a process of its own (2: both recipes side by side).
        progress: show the training progress bars (with ``jobs=1`` only).

    Returns:
        ``{"rows", "comparison", "lenet_heldout_accuracy", "cpu_budgets_s", "seed",
        "threads", "training_digits", "heldout_digits", "recipes"}``. ``rows`` are
        ``{"generator", "recipe", "cpu_budget_s", "cpu_seconds", "epochs",
        "images_per_cpu_second", *METRICS}``: ``ours`` and ``peer`` at each budget
        (``epochs`` of the fit digits, fractional; images per CPU second, which,
        unlike a wall-clock speed, does not depend on what else the machine runs),
        ``shipped`` as its manifest says it was trained (no speed), and the
        :data:`FLOOR` row (no training).
        ``class_kl`` is KL(digit histogram || uniform) in nats; ``frechet`` and
        the manifold scores compare LeNet-5 features with the first half of the
        held-out digits. ``comparison`` is :func:`comparison_rows`.

    Raises:
        ValueError: for a budget that is not positive.
    """
    budgets = tuple(sorted(set(cpu_budgets_s)))
    if not budgets or budgets[0] <= 0:
        raise ValueError(f"CPU budgets must be positive, got {list(cpu_budgets_s)}.")
    tasks = [(name, budgets, seed, threads, progress and jobs == 1) for name in ("ours", "peer")]
    if jobs == 1:
        measured = [_train_and_measure(task) for task in tasks]
    else:  # spawn: a fresh interpreter per run, nothing inherited from this one's torch state
        with multiprocessing.get_context("spawn").Pool(min(jobs, len(tasks))) as pool:
            measured = pool.map(_train_and_measure, tasks)
    rows = [row for budget in budgets for runs in measured for row in runs if row["cpu_budget_s"] == budget]

    fit, _ = mnist_data.course_split("fit")
    heldout, labels = mnist_data.course_split("heldout")
    lenet = pretrained.load("lenet5")
    shipped = pretrained.manifest()["models"]["generator"]
    training = shipped["training"]
    report = evaluate_generator(
        pretrained.load("generator"), lenet, heldout, latent_dim=shipped["config"]["latent_dim"]
    )
    recipe = recipe_name(GANRecipe.from_dict(training["recipe"]))  # as its manifest says
    blank = dict.fromkeys(["cpu_budget_s", "cpu_seconds", "epochs", "images_per_cpu_second"])
    rows.append(
        _row(
            "shipped",
            recipe,
            report,
            **blank | {"cpu_seconds": training["cpu_seconds"], "epochs": training["epochs"]},
        )
    )
    shuffled = fit[torch.randperm(len(fit), generator=torch.Generator().manual_seed(seed))]
    rows.append(_row(FLOOR, None, evaluate_images(shuffled, lenet, heldout, n_coverage=len(fit)), **blank))
    results = {
        "rows": rows,
        "lenet_heldout_accuracy": accuracy(lenet, mnist_data.lenet_input(heldout), labels),
        "cpu_budgets_s": list(budgets),
        "seed": seed,
        "threads": threads,
        "training_digits": len(fit),
        "heldout_digits": len(heldout),
        "recipes": {name: asdict(RECIPES[name]) for name in ("ours", "peer")},
    }
    results["comparison"] = comparison_rows(results)
    return results


def comparison_rows(results: dict) -> list[dict]:
    """Ours against the tutorial's recipe at each budget: ``{"cpu_budget_s", "frechet_ours", "frechet_peer",
    "frechet_reduction", "class_kl_ours", "class_kl_peer"}``; ``frechet_reduction`` is ``1 - ours / peer``."""
    rows = []
    for budget in results["cpu_budgets_s"]:
        ours, peer = (
            next(r for r in results["rows"] if r["generator"] == name and r["cpu_budget_s"] == budget)
            for name in ("ours", "peer")
        )
        rows.append(
            {
                "cpu_budget_s": budget,
                "frechet_ours": ours["frechet"],
                "frechet_peer": peer["frechet"],
                "frechet_reduction": 1 - ours["frechet"] / peer["frechet"],
                "class_kl_ours": ours["class_kl"],
                "class_kl_peer": peer["class_kl"],
            }
        )
    return rows


def format_table(results: dict) -> str:
    """The results of :func:`run_benchmark` as text (printed by the command; the MNIST lab shows them as a table)."""
    frame = table_frame(results)
    for header, number in table_formats().items():
        frame[header] = [number.format(value) if pd.notna(value) else "-" for value in frame[header]]
    lines = [
        f"MNIST GANs, seed {results['seed']}, {results['threads']} thread(s) per run; "
        f"training digits: {results['training_digits']}; held-out digits: {results['heldout_digits']}",
        f"LeNet-5 held-out accuracy: {100 * results['lenet_heldout_accuracy']:.2f} %",
        "",
        frame.to_string(index=False),
        "",
    ]
    for row in results["comparison"]:
        reduction = row["frechet_reduction"]
        lines.append(
            f"at {row['cpu_budget_s']:g} CPU s: Fréchet ours {row['frechet_ours']:.1f}, tutorial "
            f"{row['frechet_peer']:.1f} (ours {abs(reduction):.0%} {'lower' if reduction >= 0 else 'higher'}); "
            f"KL(classes‖uniform) ours {row['class_kl_ours']:.3f}, tutorial {row['class_kl_peer']:.3f}"
        )
    return "\n".join(lines)
