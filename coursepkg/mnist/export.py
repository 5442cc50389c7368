"""Export trained MNIST models as the shipped ones: measure them, write weights and manifest.

``python -m coursepkg export --gan RUN [--lenet RUN]`` calls :func:`export`. The
MNIST lab and the LSI part load what it writes through :mod:`coursepkg.mnist.pretrained`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from coursepkg.mnist import data as mnist_data
from coursepkg.mnist import pretrained
from coursepkg.mnist.models import Discriminator
from coursepkg.mnist.train import GANRecipe, recipe_name

__all__ = ["export"]


def _data_description(images: torch.Tensor, part: str) -> dict[str, object]:
    sources = {
        "fit": "the training split found by coursepkg.mnist.data.load_split('train') (offline: the 5,000 shipped "
        "digits of train5k, 500 per class) followed by test-split digits [0, 5000)",
        "heldout": "test-split digits [5000, 10000), never used for training or model selection",
    }
    return {
        "part": part,
        "digits": len(images),
        "sources": sources[part],
        "sha256_of_pixels": mnist_data.fingerprint(images),
    }


def export(gan_run: Path, lenet_run: Path | None, dest: Path) -> dict[str, dict[str, float]]:
    """Measure the trained models on held-out digits and write weights and manifest to ``dest``.

    Args:
        gan_run: run folder of ``train-gan`` (its ``checkpoint.pt``).
        lenet_run: run folder of ``train-lenet``; ``None`` keeps the shipped LeNet-5
            (and its manifest entry), which then measures the GAN.
        dest: folder of the weights and their manifest.

    Returns:
        The metrics recorded for each model.
    """
    from coursepkg.mnist.metrics import accuracy, evaluate_generator

    fit, _ = mnist_data.course_split("fit")
    heldout, heldout_labels = mnist_data.course_split("heldout")
    heldout_lenet, _ = mnist_data.course_split("heldout", scale="lenet")
    data = {"trained_on": _data_description(fit, "fit"), "measured_on": _data_description(heldout, "heldout")}

    if lenet_run is None:
        lenet = pretrained.load("lenet5")
        lenet_entry = pretrained.manifest()["models"]["lenet5"]
        lenet_metrics = lenet_entry["metrics"]
        pretrained.save(dest, "lenet5", lenet, {k: v for k, v in lenet_entry.items() if k not in ("file", "sha256")})
    else:
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
    recipe = GANRecipe.from_dict(state["recipe"])
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
        "command": f"python -m coursepkg train-gan --out {gan_run} --epochs {state['epochs']} --seed {state['seed']}"
        + (f" --recipe {name}" if (name := recipe_name(recipe)) else ""),
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
