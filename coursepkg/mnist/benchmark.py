"""Benchmark of the MNIST models: LeNet-5's accuracy, and our GAN recipe against a tutorial's.

Both GAN recipes of :data:`coursepkg.mnist.train.RECIPES` train from the same
seed on the same digits for the same CPU time (process time, all threads), and
are then measured with the shipped LeNet-5 on the held-out digits; the shipped
generator is measured beside them, and the distance between two halves of the
real held-out digits gives the floor of the Frechet distance.

Run ``python -m coursepkg benchmark mnist --help``; the MNIST lab shows the table of
``python -m coursepkg benchmark mnist --cpu-budget 600 --threads 1 --out book/data/mnist_benchmark.json``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

from coursepkg.mnist import data as mnist_data
from coursepkg.mnist import pretrained
from coursepkg.mnist.metrics import GeneratorReport, accuracy, evaluate_generator
from coursepkg.mnist.train import RECIPES, GANRecipe, train_gan
from coursepkg.util.cli import positive_int
from coursepkg.util.runtime import use_available_cores

__all__ = ["FLOOR", "add_arguments", "format_table", "run", "run_benchmark"]

#: The ``generator`` of the row that holds the Frechet distance between two halves of the real digits.
FLOOR = "real held-out digits (floor)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``python -m coursepkg benchmark mnist`` (the MNIST lab's table) to its ``parser``."""
    parser.add_argument("--cpu-budget", type=float, default=600.0, help="CPU seconds of training per recipe")
    parser.add_argument("--seed", type=int, default=0, help="seed of both runs (default: 0)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: all cores)")


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark of the MNIST lab as ``python -m coursepkg benchmark mnist`` was told to.

    Args:
        args: the parsed options of :func:`add_arguments`.

    Returns:
        What :func:`run_benchmark` returns.
    """
    use_available_cores(max_threads=args.threads)
    return run_benchmark(cpu_budget_s=args.cpu_budget, seed=args.seed)


def _row(generator: str, recipe: str | None, report: GeneratorReport, **training: float | int | None) -> dict:
    """One row of the table: how a generator was trained, then what LeNet-5 measured on its samples."""
    return {
        "generator": generator,
        "recipe": recipe,
        **training,
        "digits": report.coverage.digits_present,
        "class_kl": report.coverage.kl_to_uniform,
        "frechet": report.frechet,
    }


def run_benchmark(*, cpu_budget_s: float, seed: int = 0, progress: bool = True) -> dict:
    """Train both recipes for ``cpu_budget_s`` CPU seconds each and measure them beside the shipped generator.

    Used by ``python -m coursepkg benchmark mnist``, whose results the MNIST lab shows.

    Args:
        cpu_budget_s: CPU time (all threads) each recipe may train for.
        seed: seed of both runs.
        progress: show the training progress bars.

    Returns:
        ``{"rows", "lenet_heldout_accuracy", "cpu_budget_s", "seed", "training_digits",
        "heldout_digits", "recipes"}``. ``rows`` are ``{"generator", "recipe",
        "cpu_seconds", "epochs", "images_seen", "images_per_second", "digits",
        "class_kl", "frechet"}``: ``ours`` and ``peer`` trained here (``epochs``
        completed, then part of one; ``images_per_second`` per wall-clock second),
        ``shipped`` as its manifest says it was trained (no speed), and the
        :data:`FLOOR` row, which has only ``frechet``. ``class_kl`` is
        KL(digit histogram || uniform) in nats, ``frechet`` the Frechet distance
        of LeNet-5 features to the first half of the held-out digits.

    Raises:
        ValueError: for ``cpu_budget_s <= 0``.
    """
    if cpu_budget_s <= 0:
        raise ValueError(f"cpu_budget_s must be positive, got {cpu_budget_s}.")
    fit, _ = mnist_data.course_split("fit")
    heldout, labels = mnist_data.course_split("heldout")
    lenet = pretrained.load("lenet5")
    rows = []
    for name in ("ours", "peer"):
        recipe = RECIPES[name]
        wall = time.perf_counter()
        result = train_gan(
            fit, recipe=recipe, epochs=None, seed=seed, cpu_budget_s=cpu_budget_s, device="cpu", progress=progress
        )
        speed = result.images_seen / (time.perf_counter() - wall)
        report = evaluate_generator(result.gan.generator, lenet, heldout, latent_dim=recipe.latent_dim)
        rows.append(
            _row(
                name,
                name,
                report,
                cpu_seconds=result.cpu_seconds,
                epochs=result.epochs,
                images_seen=result.images_seen,
                images_per_second=speed,
            )
        )
    shipped = pretrained.manifest()["models"]["generator"]
    training = shipped["training"]
    report = evaluate_generator(
        pretrained.load("generator"), lenet, heldout, latent_dim=shipped["config"]["latent_dim"]
    )
    # Which of RECIPES the shipped generator was trained with, read from its manifest.
    recipe = next((name for name, r in RECIPES.items() if r == GANRecipe.from_dict(training["recipe"])), None)
    rows.append(
        _row(
            "shipped",
            recipe,
            report,
            cpu_seconds=training["cpu_seconds"],
            epochs=training["epochs"],
            images_seen=training["images_seen"],
            images_per_second=None,
        )
    )
    floor = dict.fromkeys(rows[0], None) | {"generator": FLOOR, "frechet": report.frechet_floor}
    return {
        "rows": [*rows, floor],
        "lenet_heldout_accuracy": accuracy(lenet, mnist_data.lenet_input(heldout), labels),
        "cpu_budget_s": cpu_budget_s,
        "seed": seed,
        "training_digits": len(fit),
        "heldout_digits": len(heldout),
        "recipes": {name: asdict(RECIPES[name]) for name in ("ours", "peer")},
    }


def format_table(results: dict) -> str:
    """The results of :func:`run_benchmark` as text (printed by the command; the MNIST lab shows them as a table)."""

    def cell(value: float | None, width: int, decimals: int | None = None) -> str:
        if value is None:  # the floor row has only a Frechet distance, the shipped one no speed
            return f"{'-':>{width}}"
        return f"{value:>{width}.{decimals}f}" if decimals is not None else f"{value:>{width}}"

    lines = [
        f"MNIST GANs at {results['cpu_budget_s']:g} CPU s of training each, seed {results['seed']}; "
        f"training digits: {results['training_digits']}; held-out digits: {results['heldout_digits']}",
        f"LeNet-5 held-out accuracy: {100 * results['lenet_heldout_accuracy']:.2f} %",
        "",
    ]
    header = (
        f"{'generator':<28} {'recipe':<6} {'CPU s':>6} {'epochs':>6} {'img/s':>6} {'digits':>6} "
        f"{'KL(classes||uniform)':>20} {'Frechet (LeNet)':>15}"
    )
    lines += [header, "-" * len(header)]
    for row in results["rows"]:
        lines.append(
            f"{row['generator']:<28} {row['recipe'] or '-':<6} {cell(row['cpu_seconds'], 6, 0)} "
            f"{cell(row['epochs'], 6)} {cell(row['images_per_second'], 6, 0)} {cell(row['digits'], 6)} "
            f"{cell(row['class_kl'], 20, 4)} {cell(row['frechet'], 15, 3)}"
        )
    return "\n".join(lines)
