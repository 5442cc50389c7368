"""Command line of the course: train and export the MNIST models, run the benchmarks.

Usage::

    python -m coursepkg fetch-mnist                        # all 70,000 digits into $COURSEPKG_DATA (internet)
    python -m coursepkg retrain-mnist                      # fetch, retrain both models on them, ship them
    python -m coursepkg train-gan --out runs/gan --epochs 150
    python -m coursepkg train-lenet --out runs/lenet --epochs 30
    python -m coursepkg export --gan runs/gan --lenet runs/lenet   # --lenet: omit to keep the shipped LeNet-5
    python -m coursepkg benchmark modes --jobs 2 --out book/data/mode_benchmark.json
    python -m coursepkg benchmark mnist --out book/data/mnist_benchmark.json
    python -m coursepkg benchmark lsi --threads 2 --out book/data/lsi_benchmark.json
    python -m coursepkg grade lab_2d_gan --workers 2          # from an nbgrader course directory

Training runs on CUDA when present (``--device cpu`` to force the CPU), writes a
checkpoint and a sample grid per epoch into ``--out``, and continues from there
with ``--resume``. ``export`` measures the trained models on the held-out digits
and writes their weights and ``manifest.json`` into ``coursepkg/mnist/weights``.

Each benchmark prints its table and, with ``--out``, writes its results as JSON
with the same provenance record (:func:`coursepkg.util.provenance.provenance`):
``modes`` is the mode coverage of the recap chapter, ``mnist`` the recipes of the
MNIST lab at equal CPU time, ``lsi`` the searches of the LSI chapter.

``grade`` autogrades every submission of a lab in an nbgrader course, each in
sandboxes of its own, in parallel, and writes the gradebook, ``autograded/`` and
``feedback/`` as ``nbgrader autograde`` and ``generate_feedback`` would
(:mod:`coursepkg.grading.batch`).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from coursepkg.lsi import benchmark as lsi_benchmark
from coursepkg.mnist import benchmark as mnist_benchmark
from coursepkg.mnist import data as mnist_data
from coursepkg.mnist import pretrained
from coursepkg.mnist.train import RECIPES, train_gan, train_lenet
from coursepkg.toy2d import benchmark as modes_benchmark
from coursepkg.util.cli import positive_float, positive_int, size
from coursepkg.util.files import write_json
from coursepkg.util.provenance import format_provenance, provenance
from coursepkg.util.runtime import use_available_cores

__all__ = ["BENCHMARKS", "main"]

#: ``python -m coursepkg benchmark NAME``: each module has ``add_arguments(parser)``,
#: ``run(args) -> dict`` and ``format_table(results) -> str``.
BENCHMARKS: dict[str, ModuleType] = {"modes": modes_benchmark, "mnist": mnist_benchmark, "lsi": lsi_benchmark}


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
    exporter.add_argument(
        "--lenet", type=Path, default=None, help="run folder of train-lenet (default: keep the shipped LeNet-5)"
    )
    exporter.add_argument("--dest", type=Path, default=pretrained.weights_dir())
    exporter.add_argument("--threads", type=int, default=None)
    retrain = commands.add_parser(
        "retrain-mnist",
        help="download the full MNIST, retrain LeNet-5 and the GAN on it, and ship them (export)",
        description="One command for fetch-mnist, train-lenet, train-gan (the shipped generator's recipe by default) "
        "and export.",
    )
    retrain.add_argument("--out", type=Path, default=Path("runs", "full_mnist"), help="folder of the two runs")
    retrain.add_argument("--lenet-epochs", type=positive_int, default=10, help="LeNet-5's epochs (default 10)")
    retrain.add_argument(
        "--gan-epochs", type=positive_int, default=30, help="the GAN's epochs (default 30: about the shipped steps)"
    )
    retrain.add_argument("--recipe", choices=sorted(RECIPES), default="ours", help="the GAN's recipe (default ours)")
    retrain.add_argument("--seed", type=int, default=0)
    retrain.add_argument("--dest", type=Path, default=pretrained.weights_dir(), help="where to ship the weights")
    retrain.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    retrain.add_argument("--threads", type=int, default=None, help="CPU threads (default: the cores available)")
    fetch = commands.add_parser("fetch-mnist", help="download the full MNIST into the data folder (needs the internet)")
    fetch.add_argument(
        "--root", type=Path, default=None, help="data folder (default: $COURSEPKG_DATA or ~/.cache/coursepkg)"
    )
    _add_grade(commands)
    benchmark = commands.add_parser("benchmark", help="run a benchmark, print its table, save it as JSON")
    benchmarks = benchmark.add_subparsers(dest="benchmark", required=True)
    for name, module in BENCHMARKS.items():
        summary = module.__doc__.split("\n")[0]
        command = benchmarks.add_parser(name, help=summary, description=summary)
        module.add_arguments(command)
        command.add_argument("--out", type=Path, help="also write the results, with their provenance, as JSON here")
    return parser


def _retrain(args: argparse.Namespace) -> int:
    """``retrain-mnist``: the full MNIST (downloaded if missing), then both models trained and exported."""
    if not mnist_data.has_full_mnist():
        try:
            mnist_data.fetch_full_mnist()
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    _set_threads(args.threads)
    from coursepkg.mnist.export import export

    runs = {"seed": args.seed, "device": args.device}
    images, labels = mnist_data.course_split("fit", scale="lenet")
    train_lenet(images, labels, epochs=args.lenet_epochs, out_dir=args.out / "lenet", **runs)
    images, _ = mnist_data.course_split("fit")
    train_gan(images, recipe=RECIPES[args.recipe], epochs=args.gan_epochs, out_dir=args.out / "gan", **runs)
    for model, numbers in export(args.out / "gan", args.out / "lenet", args.dest).items():
        print(model, numbers)
    print(f"trained on {len(images):,} digits; the weights and manifest.json are in {args.dest}")
    return 0


def _add_grade(commands: Any) -> None:
    """The ``grade`` command's options; every limit has the default of :class:`~coursepkg.grading.sandbox.Limits`."""
    from coursepkg.grading.sandbox import Limits

    grade = commands.add_parser(
        "grade",
        help="autograde every submission of a lab, sandboxed, in parallel",
        description="Autograde every submission of LAB in the nbgrader course COURSE (default: here): each in "
        "sandboxes of its own, in parallel; write the gradebook, autograded/ and feedback/.",
    )
    grade.add_argument("lab", help="the assignment, e.g. lab_2d_gan")
    grade.add_argument("--course", type=Path, default=Path("."), help="the course directory (default: .)")
    grade.add_argument("--workers", type=positive_int, default=None, help="submissions at once (default: one per core)")
    grade.add_argument("--scheduler", default=None, help="address of a Dask scheduler to send the jobs to instead")
    grade.add_argument("--student", action="append", default=[], help="grade this student only (repeatable)")
    grade.add_argument("--force", action="store_true", help="regrade submissions already graded from the same file")
    defaults = Limits()
    grade.add_argument("--memory", type=size, help=f"memory of a sandbox (default {defaults.memory >> 30} GiB)")
    grade.add_argument("--processes", type=positive_int, help=f"processes of a sandbox (default {defaults.processes})")
    grade.add_argument("--file-size", type=size, help=f"largest file (default {defaults.file_size >> 20} MiB)")
    grade.add_argument("--disk", type=size, help=f"scratch and /tmp, each (default {defaults.disk >> 20} MiB)")
    grade.add_argument(
        "--cell-output", type=size, help=f"output kept per cell (default {defaults.cell_output >> 20} MiB)"
    )
    grade.add_argument("--deadline", type=positive_float, help=f"seconds per sandbox (default {defaults.deadline:g})")
    grade.add_argument("--cell-timeout", type=positive_float, default=120.0, help="seconds per cell (default 120)")
    grade.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="DANGER: run one trusted notebook (--student) without the sandbox, on a machine that cannot sandbox",
    )


def _grade(args: argparse.Namespace) -> int:
    """Grade a lab's submissions (``python -m coursepkg grade``); print the summary."""
    import dataclasses

    from coursepkg.grading import batch
    from coursepkg.grading.autograde import Settings
    from coursepkg.grading.sandbox import Limits, SandboxUnavailable
    from coursepkg.util.runtime import available_cores

    chosen = {f.name: getattr(args, f.name) for f in dataclasses.fields(Limits) if getattr(args, f.name, None)}
    settings = Settings(limits=Limits(**chosen), cell_timeout=args.cell_timeout)
    if args.unsafe_no_sandbox:
        print(
            "WARNING: --unsafe-no-sandbox: the notebook's code will run unsandboxed, as this user, with this "
            "machine's files and network. Use it for one notebook you trust, never for a class.",
            file=sys.stderr,
        )
    try:
        summary = batch.grade(
            args.course,
            args.lab,
            workers=args.workers or available_cores(),
            scheduler=args.scheduler,
            students=args.student,
            force=args.force,
            settings=settings,
            unsafe=args.unsafe_no_sandbox,
        )
    except SandboxUnavailable as error:
        print(f"error: grading refused: {error}", file=sys.stderr)
        return 2
    print(summary.format())
    return 1 if summary.failed else 0


def _benchmark(args: argparse.Namespace, command: str) -> int:
    """Run the benchmark ``args.benchmark``, print its provenance and table, and write them with ``--out``.

    The JSON files it writes are what the recap chapter (``modes``), the MNIST lab
    (``mnist``) and the LSI chapter (``lsi``) show.

    Args:
        args: the parsed command line.
        command: the command line as typed, for the provenance record.

    Returns:
        The exit status, 0.
    """
    benchmark = BENCHMARKS[args.benchmark]
    load_before = os.getloadavg()
    results = benchmark.run(args)
    results["provenance"] = provenance(command, load_before=load_before)
    print(format_provenance(results["provenance"]) + "\n")
    print(benchmark.format_table(results))
    if args.out:
        write_json(args.out, results)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run a command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    if args.command == "grade":
        return _grade(args)
    if args.command == "fetch-mnist":
        try:
            folder = mnist_data.fetch_full_mnist(args.root)
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"MNIST is in {folder}: every command and lab now uses all 70,000 digits.")
        return 0
    if args.command == "retrain-mnist":
        return _retrain(args)
    if args.command == "benchmark":  # each benchmark sets its own threads (one per run for modes)
        return _benchmark(args, "python -m coursepkg " + shlex.join(argv))
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
            if run is not None and not (run / "checkpoint.pt").exists():
                print(f"error: {run / 'checkpoint.pt'} does not exist; train first.", file=sys.stderr)
                return 2
        from coursepkg.mnist.export import export

        for model, numbers in export(args.gan, args.lenet, args.dest).items():
            print(model, numbers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
