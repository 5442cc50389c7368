"""Command line of the course: train, export and benchmark the MNIST models.

Usage::

    python -m coursepkg train-gan --out runs/gan --epochs 150
    python -m coursepkg train-lenet --out runs/lenet --epochs 30
    python -m coursepkg export --gan runs/gan --lenet runs/lenet
    python -m coursepkg benchmark-mnist --cpu-budget 600

Training runs on CUDA when present (``--device cpu`` to force the CPU), writes a
checkpoint and a sample grid per epoch into ``--out``, and continues from there
with ``--resume``. ``export`` measures the trained models on the held-out digits
and writes their weights and ``manifest.json`` into ``coursepkg/weights``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from coursepkg import mnist, pretrained
from coursepkg.mnist_gan import Discriminator
from coursepkg.runtime import use_available_cores
from coursepkg.train_mnist import RECIPES, GANRecipe, train_gan, train_lenet

__all__ = ["export", "main"]


def _set_threads(threads: int | None) -> int:
    if threads is None:
        return use_available_cores()
    if threads < 1:
        raise SystemExit(f"--threads must be at least 1, got {threads}.")
    torch.set_num_threads(threads)
    return threads


def _data_description(images: torch.Tensor, part: str) -> dict[str, object]:
    sources = {
        "fit": "the training split found by coursepkg.mnist.load_split('train') (offline: the 5,000 shipped "
        "digits of train5k, 500 per class) followed by test-split digits [0, 5000)",
        "heldout": "test-split digits [5000, 10000), never used for training or model selection",
    }
    return {
        "part": part,
        "digits": len(images),
        "sources": sources[part],
        "sha256_of_pixels": mnist.fingerprint(images),
    }


def export(gan_run: Path, lenet_run: Path, dest: Path) -> dict[str, dict[str, float]]:
    """Measure the trained models on held-out digits and write weights and manifest to ``dest``.

    Returns:
        The metrics recorded for each model.
    """
    from coursepkg.mnist_metrics import accuracy, evaluate_generator

    fit, _ = mnist.course_split("fit")
    heldout, heldout_labels = mnist.course_split("heldout")
    heldout_lenet, _ = mnist.course_split("heldout", scale="lenet")
    data = {"trained_on": _data_description(fit, "fit"), "measured_on": _data_description(heldout, "heldout")}

    lenet_state = torch.load(lenet_run / "checkpoint.pt", weights_only=True)
    lenet = pretrained.MODELS["lenet5"]({})
    lenet.load_state_dict(lenet_state["model"])
    lenet.eval()
    lenet_epochs = len(lenet_state["history"]["loss"])
    lenet_metrics = {"heldout_accuracy": round(accuracy(lenet, heldout_lenet, heldout_labels), 5)}
    pretrained.save(
        dest,
        "lenet5",
        lenet,
        {
            "config": {},
            **data,
            "training": {
                "command": f"python -m coursepkg train-lenet --out {lenet_run} --epochs {lenet_epochs}",
                "epochs": lenet_epochs,
                "loss_per_epoch": [round(v, 5) for v in lenet_state["history"]["loss"]],
            },
            "metrics": lenet_metrics,
        },
    )

    state = torch.load(gan_run / "checkpoint.pt", weights_only=True)
    recipe = GANRecipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in state["recipe"].items()})
    generator = pretrained.MODELS["generator"]({"latent_dim": recipe.latent_dim, "hidden": recipe.g_hidden})
    discriminator = Discriminator(recipe.d_hidden, dropout=recipe.dropout, spectral_norm=recipe.spectral_norm)
    gan_weights = state["gan"]
    discriminator.load_state_dict(
        {k.removeprefix("discriminator."): v for k, v in gan_weights.items() if k.startswith("discriminator.")}
    )
    discriminator.eval().remove_spectral_norm()  # ship plain nn.Linear weights
    if "ema" in state:  # ship the averaged generator, the one the recipe samples from
        generator.load_state_dict(
            {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
        )
    else:
        generator.load_state_dict(
            {k.removeprefix("generator."): v for k, v in gan_weights.items() if k.startswith("generator.")}
        )
    generator.eval()
    discriminator.eval()
    report = evaluate_generator(generator, lenet, heldout, latent_dim=recipe.latent_dim)
    with torch.no_grad():
        fakes = generator(torch.randn(len(heldout), recipe.latent_dim, generator=torch.Generator().manual_seed(1)))
        d_real = torch.sigmoid(discriminator(heldout)).mean().item()
        d_fake = torch.sigmoid(discriminator(fakes)).mean().item()
    steps_per_epoch = len(state["history"]["d_loss"]) // max(state["epochs"], 1)
    training = {
        "command": f"python -m coursepkg train-gan --out {gan_run} --epochs {state['epochs']} --seed {state['seed']}",
        "recipe": state["recipe"],
        "seed": state["seed"],
        "epochs": state["epochs"],
        "cpu_seconds": round(state["cpu_seconds"], 1),
        "images_seen": state["images_seen"],
        "d_loss_per_epoch": _epoch_means(state["history"]["d_loss"], steps_per_epoch),
        "g_loss_per_epoch": _epoch_means(state["history"]["g_loss"], steps_per_epoch),
    }
    gan_metrics = report.as_dict()
    pretrained.save(
        dest,
        "generator",
        generator,
        {
            "config": {"latent_dim": recipe.latent_dim, "hidden": list(recipe.g_hidden)},
            **data,
            "training": training,
            "metrics": gan_metrics,
        },
    )
    d_metrics = {"mean_d_on_heldout_real": round(d_real, 4), "mean_d_on_generated": round(d_fake, 4)}
    pretrained.save(
        dest,
        "discriminator",
        discriminator,
        {
            "config": {"hidden": list(recipe.d_hidden), "dropout": recipe.dropout},
            **data,
            "training": training,
            "metrics": d_metrics,
        },
    )
    return {"lenet5": lenet_metrics, "generator": gan_metrics, "discriminator": d_metrics}


def _epoch_means(values: list[float], per_epoch: int) -> list[float]:
    return [
        round(sum(values[i : i + per_epoch]) / per_epoch, 4)
        for i in range(0, per_epoch * (len(values) // per_epoch), per_epoch)
    ]


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
    exporter.add_argument("--dest", type=Path, default=Path(__file__).parent / "weights")
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
        images, _ = mnist.course_split("fit")
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
        images, labels = mnist.course_split("fit", scale="lenet")
        _, history = train_lenet(
            images, labels, epochs=args.epochs, seed=args.seed, out_dir=args.out, resume=args.resume, device=args.device
        )
        print(f"trained {len(history['loss'])} epochs; final loss {history['loss'][-1]:.4f}; checkpoint in {args.out}")
    elif args.command == "export":
        for run in (args.gan, args.lenet):
            if not (run / "checkpoint.pt").exists():
                print(f"error: {run / 'checkpoint.pt'} does not exist; train first.", file=sys.stderr)
                return 2
        for model, numbers in export(args.gan, args.lenet, args.dest).items():
            print(model, numbers)
    else:
        from coursepkg.benchmark_mnist import run_benchmark

        print(run_benchmark(cpu_budget_s=args.cpu_budget, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
