"""How the course's MNIST GAN recipe was chosen: candidate recipes at equal CPU time or equal epochs.

Every candidate trains from the same seed on the same digits, one process and
one torch thread each (so CPU seconds compare fairly), and is measured with the
shipped LeNet-5 on the held-out digits every ``--eval-every`` epochs and at the
end of its CPU budget or of ``--epochs``. Each measurement is printed as one JSON
line, so a run cut short still leaves its curves behind.

    python -m tools.sweep_mnist_recipes --cpu-budget 600 --jobs 2 > sweep.jsonl

The MNIST lab's short run (30 epochs, what 2 minutes of a laptop's CPU buy) was
chosen among the ``lab_*`` candidates, at equal epochs::

    python -m tools.sweep_mnist_recipes --epochs 30 --eval-every 10 --jobs 2 --only lab_dcgan \
        lab_dcgan_ema lab_b128_lr1e-3_ema lab_beta0 lab_beta0_ema ours > book/data/mnist_lab_sweep.jsonl

(the lab shows that file; ``ours`` is :data:`coursepkg.mnist.train.RECIPES` ``"ours"``). The
long runs, at the MNIST benchmark's larger budget::

    python -m tools.sweep_mnist_recipes --cpu-budget 1300 --eval-every 20 --jobs 2 --only ours \
        lab_beta0_ema beta0_ema_dropout05 > book/data/mnist_long_sweep.jsonl

``lab_beta0_ema`` was ours until these runs: its discriminator, as fast as its generator,
memorises the fit digits after about 100 epochs. ``b64_ema`` (= ``lab_dcgan_ema``) is the
recipe of the course's first shipped generator, chosen among the ``b*`` candidates at 600 CPU s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from dataclasses import asdict, replace

import torch

from coursepkg.mnist import data as mnist_data
from coursepkg.mnist import pretrained
from coursepkg.mnist.metrics import evaluate_generator
from coursepkg.mnist.train import RECIPES, GANRecipe, train_gan

CANDIDATES: dict[str, GANRecipe] = {
    # The lab's short run: DCGAN's settings (its first version), then larger batches, a larger
    # learning rate, no momentum (beta1 = 0), the average of the weights, and a slower discriminator.
    "lab_dcgan": GANRecipe(ema=None),
    "lab_dcgan_ema": GANRecipe(ema=0.999),
    "lab_b128_lr1e-3_ema": GANRecipe(batch_size=128, lr=1e-3, ema=0.999),
    "lab_beta0": GANRecipe(batch_size=128, lr=1e-3, betas=(0.0, 0.99), ema=None),
    "lab_beta0_ema": replace(RECIPES["ours"], d_lr=None),
    "ours": RECIPES["ours"],
    # Long runs: ways to keep the discriminator from memorising the fit digits.
    "beta0_ema_dropout05": replace(RECIPES["ours"], d_lr=None, dropout=0.5),
    "sn_b64": GANRecipe(spectral_norm=True, ema=None),
    "peer": RECIPES["peer"],
    "peer_ema": replace(RECIPES["peer"], ema=0.999),
    "b64": GANRecipe(ema=None),
    "b64_ema": GANRecipe(ema=0.999),
    "b64_ema995": GANRecipe(ema=0.995),
    "sn_b64_ema": GANRecipe(spectral_norm=True, ema=0.999),
    "b64_beta09_ema": GANRecipe(betas=(0.9, 0.999), ema=0.999),
    "b64_lr1e-4_ema": GANRecipe(lr=1e-4, ema=0.999),
    "b64_ttur_ema": GANRecipe(lr=1e-4, d_lr=4e-4, ema=0.999),
    "b32_ema": GANRecipe(batch_size=32, ema=0.999),
    "b32_lr1e-4_beta09_ema": GANRecipe(batch_size=32, lr=1e-4, betas=(0.9, 0.999), ema=0.999),
    "b32_beta09_ema": GANRecipe(batch_size=32, betas=(0.9, 0.999), ema=0.999),
    "b128_lr4e-4_ema": GANRecipe(batch_size=128, lr=4e-4, ema=0.999),
    "b64_nodrop_ema": GANRecipe(dropout=0.0, ema=0.999),
}


def _run(args: tuple[str, float | None, int | None, int, int]) -> str:
    name, cpu_budget_s, max_epochs, eval_every, seed = args
    torch.set_num_threads(1)
    recipe = CANDIDATES[name]
    fit, _ = mnist_data.course_split("fit")
    heldout, _ = mnist_data.course_split("heldout")
    lenet = pretrained.load("lenet5")
    epochs = 0
    with tempfile.TemporaryDirectory() as folder:
        while True:
            epochs = min(epochs + eval_every, max_epochs or epochs + eval_every)
            result = train_gan(
                fit,
                recipe=recipe,
                epochs=epochs,
                seed=seed,
                out_dir=folder,
                resume=epochs > eval_every,
                cpu_budget_s=cpu_budget_s,
                device="cpu",
                progress=False,
            )
            report = evaluate_generator(result.gan.generator, lenet, heldout, latent_dim=recipe.latent_dim)
            line = {
                "recipe": name,
                "epochs": result.epochs,
                "cpu_seconds": round(result.cpu_seconds, 1),
                "images_seen": result.images_seen,
                "digits": report.coverage.digits_present,
                "kl": round(report.coverage.kl_to_uniform, 4),
                "frechet": round(report.frechet, 2),
                **{name: round(value, 3) for name, value in asdict(report.manifold).items()},
            }
            print(json.dumps(line), flush=True)
            if result.epochs < epochs or result.epochs == max_epochs:  # the budget ran out, or the epochs
                return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu-budget", type=float, default=None, help="CPU seconds of training per candidate")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of training per candidate")
    parser.add_argument("--eval-every", type=int, default=10, help="epochs between measurements")
    parser.add_argument("--jobs", type=int, default=1, help="candidates trained at once (one core each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=sorted(CANDIDATES), choices=sorted(CANDIDATES))
    args = parser.parse_args()
    if args.cpu_budget is None and args.epochs is None:
        parser.error("give --cpu-budget, --epochs or both")
    started = time.perf_counter()
    tasks = [(name, args.cpu_budget, args.epochs, args.eval_every, args.seed) for name in args.only]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for name in pool.imap_unordered(_run, tasks):
            print(f"# {name} done after {time.perf_counter() - started:.0f} s wall", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
