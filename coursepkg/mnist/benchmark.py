"""Benchmark of the MNIST models: LeNet-5's accuracy, and our GAN recipe against a tutorial's.

Both GAN recipes of :data:`coursepkg.mnist.train.RECIPES` train from the same
seed on the same digits for the same CPU time (process time, all threads), and
are then measured with the shipped LeNet-5 on the held-out digits; the shipped
generator is measured beside them. Run it with
``python -m coursepkg benchmark-mnist --cpu-budget 600``.
"""

from __future__ import annotations

import time

import torch

from coursepkg.mnist import data as mnist_data
from coursepkg.mnist import pretrained
from coursepkg.mnist.metrics import GeneratorReport, accuracy, evaluate_generator
from coursepkg.mnist.train import RECIPES, train_gan

__all__ = ["format_table", "run_benchmark"]


def format_table(rows: list[tuple[str, float, float, GeneratorReport]]) -> str:
    """Lay out ``(name, cpu_seconds, images_per_second, report)`` rows as a text table."""
    header = (
        f"{'generator':<34} {'CPU s':>7} {'img/s':>7} {'digits':>6} "
        f"{'KL(classes||uniform)':>21} {'Frechet (LeNet)':>16}"
    )
    lines = [header, "-" * len(header)]
    for name, cpu, speed, report in rows:
        speed_text = f"{speed:7.0f}" if speed else f"{'-':>7}"
        lines.append(
            f"{name:<34} {cpu:7.0f} {speed_text} {report.coverage.digits_present:>6} "
            f"{report.coverage.kl_to_uniform:21.4f} {report.frechet:16.3f}"
        )
    lines.append(
        f"{'real held-out digits (floor)':<34} {'':>7} {'':>7} {'':>6} {'':>21} {rows[0][3].frechet_floor:16.3f}"
    )
    return "\n".join(lines)


def run_benchmark(*, cpu_budget_s: float, seed: int = 0, progress: bool = True) -> str:
    """Train both recipes for ``cpu_budget_s`` CPU seconds each and return the printed report.

    Args:
        cpu_budget_s: CPU time (all threads) each recipe may train for.
        seed: seed of both runs.
        progress: show the training progress bars.

    Returns:
        The report: LeNet-5's held-out accuracy, then one row per generator.
    """
    if cpu_budget_s <= 0:
        raise ValueError(f"cpu_budget_s must be positive, got {cpu_budget_s}.")
    fit, _ = mnist_data.course_split("fit")
    heldout, labels = mnist_data.course_split("heldout")
    lenet = pretrained.load("lenet5")
    lines = [
        f"threads: {torch.get_num_threads()}; training digits: {len(fit)}; held-out digits: {len(heldout)}",
        f"LeNet-5 held-out accuracy: {100 * accuracy(lenet, mnist_data.lenet_input(heldout), labels):.2f} %",
        "",
    ]
    rows = []
    for name in ("ours", "peer"):
        recipe = RECIPES[name]
        wall = time.perf_counter()
        result = train_gan(
            fit, recipe=recipe, epochs=None, seed=seed, cpu_budget_s=cpu_budget_s, device="cpu", progress=progress
        )
        speed = result.images_seen / (time.perf_counter() - wall)
        report = evaluate_generator(result.gan.generator, lenet, heldout, latent_dim=recipe.latent_dim)
        label = f"{name} ({result.epochs} epochs + part)" if result.epochs else f"{name} (part of an epoch)"
        rows.append((label, result.cpu_seconds, speed, report))
    shipped = pretrained.manifest()["models"]["generator"]
    generator = pretrained.load("generator")
    report = evaluate_generator(generator, lenet, heldout, latent_dim=shipped["config"]["latent_dim"])
    rows.append((f"shipped ({shipped['training']['epochs']} epochs)", shipped["training"]["cpu_seconds"], 0.0, report))
    return "\n".join(lines) + format_table(rows)
