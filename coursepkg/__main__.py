"""Command line of the course: train, export and benchmark the MNIST models.

Usage::

    python -m coursepkg train-gan --out runs/gan --epochs 150
    python -m coursepkg train-lenet --out runs/lenet --epochs 30
    python -m coursepkg export --gan runs/gan --lenet runs/lenet
    python -m coursepkg benchmark-mnist --cpu-budget 600

Training runs on CUDA when present (``--device cpu`` to force the CPU), writes a
checkpoint and a sample grid per epoch into ``--out``, and continues from there
with ``--resume``. ``export`` measures the trained models on the held-out digits
and writes their weights and ``manifest.json`` into ``coursepkg/mnist/weights``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from coursepkg.mnist import data as mnist_data
from coursepkg.mnist import pretrained
from coursepkg.mnist.train import RECIPES, train_gan, train_lenet
from coursepkg.util.runtime import use_available_cores

__all__ = ["main"]


def _set_threads(threads: int | None) -> int:
    if threads is None:
        return use_available_cores()
    if threads < 1:
        raise SystemExit(f"--threads must be at least 1, got {threads}.")
    torch.set_num_threads(threads)
    return threads


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m coursepkg", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def add_training_options(command: argparse.ArgumentParser, epochs: int) -> None:
        command.add_argument("--out", type=Path, required=True, help="folder for checkpoint.pt (and sample grids)")
        command.add_argument("--epochs", type=int, default=epochs, help=f"epochs to reach (default {epochs})")
        command.add_argument("--seed", type=int, default=0)
        command.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
        command.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
        command.add_argument("--threads", type=int, default=None, help="CPU threads (default: the cores available)")

    gan = commands.add_parser("train-gan", help="train the MNIST GAN")
    add_training_options(gan, 150)
    gan.add_argument("--recipe", choices=sorted(RECIPES), default="ours")
    gan.add_argument("--cpu-budget", type=float, default=None, help="stop after this many CPU seconds")
    add_training_options(commands.add_parser("train-lenet", help="train LeNet-5"), 30)
    exporter = commands.add_parser("export", help="measure trained models and write the shipped weights")
    exporter.add_argument("--gan", type=Path, required=True, help="run folder of train-gan")
    exporter.add_argument("--lenet", type=Path, required=True, help="run folder of train-lenet")
    exporter.add_argument("--dest", type=Path, default=pretrained.weights_dir())
    exporter.add_argument("--threads", type=int, default=None)
    benchmark = commands.add_parser("benchmark-mnist", help="our recipe against a tutorial's, at equal CPU time")
    benchmark.add_argument("--cpu-budget", type=float, default=600.0, help="CPU seconds of training per recipe")
    benchmark.add_argument("--seed", type=int, default=0)
    benchmark.add_argument("--threads", type=int, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; returns the exit status."""
    args = _parser().parse_args(argv)
    _set_threads(args.threads)
    if args.command == "train-gan":
        images, _ = mnist_data.course_split("fit")
        result = train_gan(
            images,
            recipe=RECIPES[args.recipe],
            epochs=args.epochs,
            seed=args.seed,
            out_dir=args.out,
            resume=args.resume,
            cpu_budget_s=args.cpu_budget,
            device=args.device,
        )
        print(f"trained {result.epochs} epochs in {result.cpu_seconds:.0f} CPU s; checkpoint in {args.out}")
    elif args.command == "train-lenet":
        images, labels = mnist_data.course_split("fit", scale="lenet")
        _, history = train_lenet(
            images, labels, epochs=args.epochs, seed=args.seed, out_dir=args.out, resume=args.resume, device=args.device
        )
        print(f"trained {len(history['loss'])} epochs; final loss {history['loss'][-1]:.4f}; checkpoint in {args.out}")
    elif args.command == "export":
        for run in (args.gan, args.lenet):
            if not (run / "checkpoint.pt").exists():
                print(f"error: {run / 'checkpoint.pt'} does not exist; train first.", file=sys.stderr)
                return 2
        from coursepkg.mnist.export import export

        for model, numbers in export(args.gan, args.lenet, args.dest).items():
            print(model, numbers)
    else:
        from coursepkg.mnist.benchmark import run_benchmark

        print(run_benchmark(cpu_budget_s=args.cpu_budget, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
