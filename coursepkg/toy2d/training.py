"""One training loop for every GAN variant, with snapshots for animations.

:func:`train` alternates ``d_steps`` discriminator (or critic) updates with one
generator update, like :func:`coursepkg.toy2d.gan.train_gan`, for any
:class:`coursepkg.toy2d.variants.Variant`. It can also

* call ``record(model)`` at evenly spaced steps and keep what it returns (the
  frames of an animation are drawn from these snapshots afterwards, so drawing
  never slows training down and a run can be drawn several ways);
* decay the learning rate linearly to 0, which lets samples settle on narrow
  modes at the end of training instead of jittering around them;
* use RMSprop, as WGAN's paper does, instead of Adam.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from coursepkg.toy2d.variants import Variant

__all__ = ["TrainingRun", "snapshot_steps", "train"]

OPTIMIZERS = ("adam", "rmsprop")


@dataclass
class TrainingRun:
    """What :func:`train` returns.

    Attributes:
        history: every logged value by name; ``d_loss`` has ``n_steps * d_steps``
            entries, ``g_loss`` ``n_steps`` (the format of ``plots.plot_losses``).
        steps: the generator steps at which the snapshots were taken.
        snapshots: what ``record(model)`` returned at each of ``steps``.
        cpu_seconds: CPU time of the process during training (all threads).
    """

    history: dict[str, list[float]]
    steps: list[int] = field(default_factory=list)
    snapshots: list[Any] = field(default_factory=list)
    cpu_seconds: float = 0.0


def snapshot_steps(n_steps: int, count: int) -> list[int]:
    """``count`` distinct generator steps spread evenly over ``[0, n_steps]``, both ends included."""
    if count < 0 or n_steps < 1:
        raise ValueError(f"need count >= 0 and n_steps >= 1, got {count} and {n_steps}.")
    return sorted(set(np.linspace(0, n_steps, count).round().astype(int).tolist())) if count else []


def _optimizer(name: str, parameters, lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        # betas=(0.5, 0.999): a short momentum memory suits a game whose target moves.
        return torch.optim.Adam(parameters, lr=lr, betas=(0.5, 0.999))
    return torch.optim.RMSprop(parameters, lr=lr)


def train(
    model: Variant,
    sampler: Callable[[int], torch.Tensor],
    *,
    n_steps: int,
    d_steps: int = 1,
    batch_size: int = 256,
    lr: float = 1e-3,
    optimizer: str = "adam",
    lr_decay: bool = False,
    record: Callable[[Variant], Any] | None = None,
    snapshots: int = 0,
    progress: bool = False,
) -> TrainingRun:
    """Train a GAN variant in place.

    Each of the ``n_steps`` iterations does ``d_steps`` discriminator updates,
    each on a fresh real batch and fresh latent draws, then one generator
    update. Real points come from ``sampler`` and latent draws from the global
    torch RNG, so ``torch.manual_seed`` before building the model makes a run
    repeatable; ``record`` should draw its own randomness from a seeded
    ``torch.Generator`` so that it leaves the run unchanged.

    Args:
        model: the variant to train.
        sampler: ``sampler(n)`` returns ``(n, dim)`` float32 real points.
        n_steps: number of generator updates, at least 1.
        d_steps: discriminator updates per generator update, at least 1.
        batch_size: points per batch, real and fake alike.
        lr: learning rate of both networks.
        optimizer: ``"adam"`` (``betas=(0.5, 0.999)``) or ``"rmsprop"``.
        lr_decay: decay both learning rates linearly to 0 over the run.
        record: called as ``record(model)`` (under ``torch.no_grad``) before
            training and at ``snapshots`` evenly spaced steps; its results are
            kept in order.
        snapshots: number of snapshots, at least 2 when ``record`` is given.
        progress: show a tqdm progress bar.

    Returns:
        A :class:`TrainingRun`.

    Raises:
        ValueError: for non-positive sizes, an unknown optimizer, or a
            ``record`` without at least 2 snapshots.
    """
    if n_steps < 1 or d_steps < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(
            f"n_steps, d_steps, batch_size and lr must be positive; got {n_steps}, {d_steps}, {batch_size} and {lr}."
        )
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {optimizer!r}; choose one of {list(OPTIMIZERS)}.")
    if record is not None and snapshots < 2:
        raise ValueError(f"record needs at least 2 snapshots (start and end), got {snapshots}.")
    d_opt = _optimizer(optimizer, model.discriminator.parameters(), lr)
    g_opt = _optimizer(optimizer, model.generator.parameters(), lr)
    schedulers = (
        [torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / n_steps) for opt in (d_opt, g_opt)]
        if lr_decay
        else []
    )
    run = TrainingRun(history=defaultdict(list))
    wanted = set(snapshot_steps(n_steps, snapshots)) if record is not None else set()

    def take_snapshot(step: int) -> None:
        if step in wanted:
            with torch.no_grad():
                run.snapshots.append(record(model))
            run.steps.append(step)

    model.train()
    start = time.process_time()
    take_snapshot(0)
    for step in tqdm(range(1, n_steps + 1), desc="training", disable=not progress, mininterval=1.0):
        for _ in range(d_steps):
            loss, logs = model.discriminator_objective(sampler(batch_size), model.sample_latent(batch_size))
            d_opt.zero_grad()
            loss.backward()
            d_opt.step()
            model.after_discriminator_step()
            for name, value in logs.items():
                run.history[name].append(value)
        loss, logs = model.generator_objective(model.sample_latent(batch_size))
        g_opt.zero_grad()
        loss.backward()
        g_opt.step()
        for name, value in logs.items():
            run.history[name].append(value)
        for scheduler in schedulers:
            scheduler.step()
        take_snapshot(step)
    run.cpu_seconds = time.process_time() - start
    run.history = dict(run.history)
    return run
