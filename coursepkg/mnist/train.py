"""Training loops for the MNIST GAN and for LeNet-5: seeded, checkpointed, resumable.

Both loops work epoch by epoch. Every epoch draws its randomness (shuffling,
latent noise, dropout, augmentation) from a seed derived from ``(seed, epoch)``,
so a run resumed from its last checkpoint continues exactly as an
uninterrupted one would. After each epoch the loop writes ``checkpoint.pt``
(atomically: a crash never leaves half a file) and, for the GAN, a grid of
samples from fixed latent vectors to ``samples/epoch_NNN.png``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel
from torchvision.utils import save_image
from tqdm import tqdm

from coursepkg.mnist.averaging import ema_with_warmup
from coursepkg.mnist.lenet import LeNet5, augment
from coursepkg.mnist.models import MNISTGAN, train_step
from coursepkg.util.files import write_atomic

__all__ = [
    "GANRecipe",
    "RECIPES",
    "Snapshot",
    "TrainedGAN",
    "default_device",
    "recipe_name",
    "train_gan",
    "train_lenet",
]


@dataclass(frozen=True)
class GANRecipe:
    """Everything that defines how a GAN is trained, apart from the data and the seed.

    Attributes:
        latent_dim: size of the latent vector.
        g_hidden: hidden widths of the generator.
        d_hidden: hidden widths of the discriminator.
        dropout: dropout of the discriminator.
        spectral_norm: spectral normalisation of the discriminator's layers.
        lr: Adam learning rate of the generator (and of the discriminator when
            ``d_lr`` is ``None``).
        d_lr: Adam learning rate of the discriminator, when it differs (the
            two time-scale rule of Heusel et al. 2017).
        betas: Adam's betas.
        batch_size: real and fake images per step.
        ema: decay of an exponential moving average of the generator's weights,
            updated after every step; the average is the generator that is
            sampled from and shipped (Yazici et al. 2019). ``None`` keeps the
            last weights.
    """

    latent_dim: int = 128
    g_hidden: tuple[int, ...] = (256, 512, 1024)
    d_hidden: tuple[int, ...] = (1024, 512, 256)
    dropout: float = 0.3
    spectral_norm: bool = False
    lr: float = 2e-4
    d_lr: float | None = None
    betas: tuple[float, float] = (0.5, 0.999)
    batch_size: int = 64
    ema: float | None = 0.999

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GANRecipe:
        """The recipe that a checkpoint or a manifest stores as ``asdict(recipe)`` (JSON turns tuples into lists)."""
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})


#: ``"ours"``: the course's recipe, the MNIST lab's short run and the shipped generator's:
#: batches of 128, Adam with no momentum (betas (0, 0.99)), learning rate 1e-3 for the
#: generator and 2e-4 for the discriminator, and an averaged generator. The slower
#: discriminator is what lets it train for long: with 1e-3 for both, it learns the
#: 10,000 fit digits by heart after about 100 epochs and the generator degrades.
#: ``"peer"``: the recipe of a popular MNIST GAN tutorial (latent 100, Adam lr 1e-4
#: with default betas, batch 32, the last weights).
#: ``tools/sweep_mnist_recipes.py`` holds the candidates ours was chosen from.
RECIPES: dict[str, GANRecipe] = {
    "ours": GANRecipe(lr=1e-3, d_lr=2e-4, betas=(0.0, 0.99), batch_size=128, ema=0.999),
    "peer": GANRecipe(latent_dim=100, lr=1e-4, betas=(0.9, 0.999), batch_size=32, ema=None),
}


def recipe_name(recipe: GANRecipe) -> str | None:
    """The name of ``recipe`` in :data:`RECIPES`, ``None`` for a recipe not there (export, benchmark)."""
    return next((name for name, known in RECIPES.items() if known == recipe), None)


@dataclass(frozen=True)
class Snapshot:
    """The generator that :func:`train_gan` samples from, copied when training passed a given CPU time.

    Attributes:
        generator: a copy in eval mode, on the CPU (the averaged generator with ``ema``).
        cpu_seconds: CPU time spent training when it was taken.
        images_seen: real images used by then.
    """

    generator: nn.Module
    cpu_seconds: float
    images_seen: int


@dataclass
class TrainedGAN:
    """What :func:`train_gan` returns.

    Attributes:
        gan: the trained model, in eval mode; its generator is the averaged one
            when the recipe has ``ema``.
        history: ``{"d_loss": [...], "g_loss": [...]}``, one float per step.
        epochs: epochs completed.
        cpu_seconds: CPU time spent training, summed over all threads and resumed runs.
        images_seen: real images used, summed over all steps.
        snapshots: for each CPU time of ``snapshot_cpu_s`` that training passed, the
            :class:`Snapshot` taken then.
    """

    gan: MNISTGAN
    history: dict[str, list[float]] = field(default_factory=lambda: {"d_loss": [], "g_loss": []})
    epochs: int = 0
    cpu_seconds: float = 0.0
    images_seen: int = 0
    snapshots: dict[float, Snapshot] = field(default_factory=dict)


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def _load_checkpoint(out_dir: Path | None, resume: bool) -> dict[str, Any] | None:
    if not resume:
        return None
    if out_dir is None:
        raise ValueError("resume=True needs the out_dir that holds checkpoint.pt.")
    path = out_dir / "checkpoint.pt"
    if not path.exists():
        raise FileNotFoundError(f"Cannot resume: {path} does not exist. Start without --resume first.")
    return torch.load(path, map_location="cpu", weights_only=True)


def _check_images(images: torch.Tensor, what: str) -> None:
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28) or not len(images):
        raise ValueError(f"{what} must be a non-empty (n, 1, 28, 28) tensor, got shape {tuple(images.shape)}.")


def train_gan(
    images: torch.Tensor,
    *,
    recipe: GANRecipe = RECIPES["ours"],
    epochs: int | None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    resume: bool = False,
    cpu_budget_s: float | None = None,
    snapshot_cpu_s: Sequence[float] = (),
    device: torch.device | str | None = None,
    progress: bool = True,
) -> TrainedGAN:
    """Train an :class:`~coursepkg.mnist.models.MNISTGAN` with the non-saturating loss.

    Args:
        images: ``(n, 1, 28, 28)`` float32 real images in ``[-1, 1]``.
        recipe: the hyper-parameters (see :data:`RECIPES`).
        epochs: epochs to reach (a resumed run continues up to this number);
            ``None`` to train until ``cpu_budget_s`` is spent.
        seed: seed of the weights and of every epoch's randomness.
        out_dir: folder for ``checkpoint.pt`` and ``samples/``; ``None`` writes nothing.
        resume: continue from ``out_dir/checkpoint.pt``.
        cpu_budget_s: stop after this much process CPU time (all threads), for
            comparisons at equal cost; ``None`` for no limit.
        snapshot_cpu_s: CPU times at which to keep a copy of the generator in
            :attr:`TrainedGAN.snapshots` (a benchmark's shorter budgets, in one run).
        device: where to train; CUDA when present by default.
        progress: show a tqdm bar with the latest losses.

    Returns:
        A :class:`TrainedGAN`, on the CPU.
    """
    _check_images(images, "images")
    if epochs is None and cpu_budget_s is None:
        raise ValueError("Give epochs, cpu_budget_s or both: training needs a stopping point.")
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    device = torch.device(device) if device is not None else default_device()
    out = Path(out_dir) if out_dir is not None else None
    state = _load_checkpoint(out, resume)

    torch.manual_seed(seed)
    gan = MNISTGAN(
        recipe.latent_dim,
        g_hidden=recipe.g_hidden,
        d_hidden=recipe.d_hidden,
        dropout=recipe.dropout,
        spectral_norm=recipe.spectral_norm,
    ).to(device)
    d_opt = torch.optim.Adam(gan.discriminator.parameters(), lr=recipe.d_lr or recipe.lr, betas=recipe.betas)
    g_opt = torch.optim.Adam(gan.generator.parameters(), lr=recipe.lr, betas=recipe.betas)
    # The averaged generator: the weights of the last steps oscillate around a
    # better point than any one of them, so we sample from their running average.
    ema = AveragedModel(gan.generator, multi_avg_fn=ema_with_warmup(recipe.ema)) if recipe.ema else None
    result = TrainedGAN(gan=gan)
    if state is not None:
        if state["recipe"] != asdict(recipe) or state["seed"] != seed:
            raise ValueError(
                f"The checkpoint in {out} was made with another recipe or seed ({state['recipe']}, seed "
                f"{state['seed']}); resume with the same options, or use a new --out folder."
            )
        gan.load_state_dict(state["gan"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        d_opt.load_state_dict(state["d_opt"])
        g_opt.load_state_dict(state["g_opt"])
        result.history, result.epochs = state["history"], state["epochs"]
        result.cpu_seconds, result.images_seen = state["cpu_seconds"], state["images_seen"]

    fixed_z = torch.randn(64, recipe.latent_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    data = images.reshape(len(images), -1).to(device)
    steps_per_epoch = len(data) // recipe.batch_size
    start = time.process_time() - result.cpu_seconds
    pending = sorted(snapshot_cpu_s)
    out_of_budget = False
    while (epochs is None or result.epochs < epochs) and not out_of_budget:
        epoch_seed = _epoch_seed(seed, result.epochs)
        torch.manual_seed(epoch_seed)  # dropout
        rng = torch.Generator().manual_seed(epoch_seed)  # shuffling and noise
        order = torch.randperm(len(data), generator=rng)
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"epoch {result.epochs + 1}/{epochs or '?'}",
            disable=not progress,
            mininterval=1.0,
        )
        gan.train()
        for step in bar:
            x_real = data[order[step * recipe.batch_size : (step + 1) * recipe.batch_size]]
            z = torch.randn(recipe.batch_size, recipe.latent_dim, generator=rng).to(device)
            d_loss, g_loss = train_step(gan.generator, gan.discriminator, x_real, z, d_opt, g_opt)
            if ema is not None:
                ema.update_parameters(gan.generator)
            result.history["d_loss"].append(d_loss)
            result.history["g_loss"].append(g_loss)
            result.images_seen += recipe.batch_size
            bar.set_postfix(d_loss=f"{d_loss:.3f}", g_loss=f"{g_loss:.3f}", refresh=False)
            while pending and time.process_time() - start >= pending[0]:
                sampler = copy.deepcopy(ema.module if ema is not None else gan.generator).eval().cpu()
                spent = time.process_time() - start
                result.snapshots[pending.pop(0)] = Snapshot(sampler, spent, result.images_seen)
            if cpu_budget_s is not None and time.process_time() - start >= cpu_budget_s:
                out_of_budget = True
                break
        result.cpu_seconds = time.process_time() - start
        if out_of_budget:
            break  # a partial epoch is not checkpointed: resuming restarts it
        result.epochs += 1
        if out is not None:
            _save_gan_epoch(out, result, recipe, seed, d_opt, g_opt, ema, fixed_z)
    if ema is not None:
        gan.generator.load_state_dict(ema.module.state_dict())  # sample from the average
    result.gan = gan.eval().cpu()
    return result


def _save_gan_epoch(
    out: Path,
    result: TrainedGAN,
    recipe: GANRecipe,
    seed: int,
    d_opt: torch.optim.Optimizer,
    g_opt: torch.optim.Optimizer,
    ema: AveragedModel | None,
    fixed_z: torch.Tensor,
) -> None:
    (out / "samples").mkdir(parents=True, exist_ok=True)
    state = {
        "recipe": asdict(recipe),
        "seed": seed,
        "gan": result.gan.state_dict(),
        "d_opt": d_opt.state_dict(),
        "g_opt": g_opt.state_dict(),
        "history": result.history,
        "epochs": result.epochs,
        "cpu_seconds": result.cpu_seconds,
        "images_seen": result.images_seen,
    }
    if ema is not None:
        state["ema"] = ema.state_dict()
    write_atomic(out / "checkpoint.pt", partial(torch.save, state))
    sampler = ema.module if ema is not None else result.gan.generator
    with torch.no_grad():
        grid = sampler(fixed_z).reshape(-1, 1, 28, 28)
    save_image(grid, out / "samples" / f"epoch_{result.epochs:03d}.png", nrow=8, normalize=True, value_range=(-1, 1))


def train_lenet(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 1e-3,
    out_dir: str | Path | None = None,
    resume: bool = False,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> tuple[LeNet5, dict[str, list[float]]]:
    """Train LeNet-5 with Adam and data augmentation.

    Args:
        images: ``(n, 1, 28, 28)`` float32 images with LeNet-5's normalisation.
        labels: ``(n,)`` int64 digits.
        epochs: epochs to reach (a resumed run continues up to this number).
        seed: seed of the weights and of every epoch's randomness.
        batch_size: images per step.
        lr: Adam learning rate (constant, so that a run can be extended with ``resume``).
        out_dir: folder for ``checkpoint.pt``; ``None`` writes nothing.
        resume: continue from ``out_dir/checkpoint.pt``.
        device: where to train; CUDA when present by default.
        progress: show a tqdm bar with the loss.

    Returns:
        ``(model, history)``: the model in eval mode on the CPU, and
        ``{"loss": [...]}`` with one training loss per epoch.
    """
    _check_images(images, "images")
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), got {tuple(labels.shape)}.")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    device = torch.device(device) if device is not None else default_device()
    out = Path(out_dir) if out_dir is not None else None
    state = _load_checkpoint(out, resume)
    torch.manual_seed(seed)
    model = LeNet5().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history: dict[str, list[float]] = {"loss": []}
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = state["history"]
    model.train()
    for epoch in range(len(history["loss"]), epochs):
        rng = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
        order = torch.randperm(len(images), generator=rng)
        bar = tqdm(
            range(0, len(images), batch_size), desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, mininterval=1.0
        )
        total = 0.0
        for start in bar:
            batch = order[start : start + batch_size]
            x = augment(images[batch], generator=rng).to(device)
            loss = F.nll_loss(model(x), labels[batch].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        history["loss"].append(total / len(images))
        if out is not None:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": history}
            write_atomic(out / "checkpoint.pt", partial(torch.save, state))
    return model.eval().cpu(), history
