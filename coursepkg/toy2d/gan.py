"""A small MLP GAN for 2D data: the reference implementation of the 2D GAN lab.

The pieces, in the order the lab builds them:

* :class:`GAN` holds a generator ``G: R^latent_dim -> R^dim`` and a
  discriminator ``D: R^dim -> R`` that returns *logits* (no final sigmoid).
* :func:`discriminator_step` does one update of ``D`` on real and fake points.
* :func:`generator_step` does one update of ``G`` with the non-saturating loss.
* :func:`train_gan` alternates ``d_steps`` discriminator updates with one
  generator update and returns the loss history.

The losses are those of :mod:`coursepkg.toy2d.losses`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from tqdm import tqdm

from coursepkg.toy2d.losses import discriminator_loss, generator_loss

__all__ = [
    "GAN",
    "GANBase",
    "discriminator_step",
    "generator_step",
    "mlp",
    "train_gan",
]


def mlp(in_features: int, hidden: int, out_features: int, *, depth: int = 3, dropout: float = 0.0) -> nn.Sequential:
    """Build a multilayer perceptron with ``depth`` hidden layers of width ``hidden``.

    Hidden layers use LeakyReLU(0.2): unlike ReLU it never outputs a constant
    zero gradient, which keeps small GANs from getting stuck early.

    Args:
        in_features: input width.
        hidden: width of every hidden layer.
        out_features: output width; the last layer is linear (no activation).
        depth: number of hidden layers, at least 1.
        dropout: probability in [0, 1) of zeroing each hidden unit in training
            mode (an ``nn.Dropout`` after every activation); 0 adds no layer.

    Returns:
        ``nn.Sequential`` mapping ``(n, in_features)`` to ``(n, out_features)``.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}.")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


class GANBase(nn.Module):
    """What every GAN of the course offers, whatever its networks.

    Subclasses set ``generator`` (``(n, latent_dim)`` noise to samples),
    ``discriminator`` (samples to ``(n, 1)`` logits) and ``latent_dim``; the
    step functions of this module work with any of them.
    """

    generator: nn.Module
    discriminator: nn.Module
    latent_dim: int

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """Score samples: a batch of ``n`` samples in, ``(n, 1)`` logits out (real > 0 > fake)."""
        return self.discriminator(x)

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``(n, latent_dim)`` float32 noise from the standard normal N(0, I)."""
        device = next(self.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator, device=device)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Generate ``n`` samples, detached from the graph."""
        return self.generator(self.sample_latent(n, generator=generator))


class GAN(GANBase):
    """A generator and a discriminator for ``dim``-dimensional data.

    Args:
        dim: dimension of the data (2 in the lab).
        h: width of the hidden layers of both networks.
        latent_dim: dimension of the Gaussian noise fed to the generator.

    Attributes:
        generator: maps ``(n, latent_dim)`` noise to ``(n, dim)`` points.
        discriminator: maps ``(n, dim)`` points to ``(n, 1)`` logits.
    """

    def __init__(self, dim: int = 2, h: int = 64, latent_dim: int = 2) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("h", h), ("latent_dim", latent_dim)):
            if value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}.")
        self.dim = dim
        self.latent_dim = latent_dim
        self.generator = mlp(latent_dim, h, dim)
        self.discriminator = mlp(dim, h, 1)


def discriminator_step(gan: GANBase, x_real: torch.Tensor, z: torch.Tensor, optimizer: torch.optim.Optimizer) -> float:
    """Update the discriminator once.

    Args:
        gan: the model; only its discriminator is updated.
        x_real: ``(n, dim)`` float32 real points.
        z: ``(m, latent_dim)`` float32 latent noise for the fake points.
        optimizer: an optimizer over ``gan.discriminator.parameters()``.

    Returns:
        The loss ``BCE(D(x_real), 1) + BCE(D(G(z)), 0)`` before the update, as a float.
    """
    # detach(): this step must not send gradients into the generator.
    x_fake = gan.generator(z).detach()
    loss = discriminator_loss(gan.discriminate(x_real), gan.discriminate(x_fake))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def generator_step(gan: GANBase, z: torch.Tensor, optimizer: torch.optim.Optimizer) -> float:
    """Update the generator once with the non-saturating loss.

    Args:
        gan: the model; only its generator is updated.
        z: ``(m, latent_dim)`` float32 latent noise.
        optimizer: an optimizer over ``gan.generator.parameters()``.

    Returns:
        The loss ``BCE(D(G(z)), 1)`` before the update, as a float.
    """
    loss = generator_loss(gan.discriminate(gan.generator(z)))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def train_gan(
    gan: GAN,
    sampler: Callable[[int], torch.Tensor],
    *,
    n_steps: int,
    d_steps: int = 2,
    batch_size: int = 256,
    lr: float = 1e-3,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train a GAN by alternating discriminator and generator updates.

    Each of the ``n_steps`` iterations does ``d_steps`` discriminator steps, each
    on a fresh real batch and fresh noise, then one generator step. Both
    networks use Adam with ``betas=(0.5, 0.999)``, the usual GAN setting: a
    short momentum memory helps in a game whose target keeps moving.

    Args:
        gan: the model to train, in place.
        sampler: ``sampler(n)`` returns ``(n, dim)`` float32 real points.
        n_steps: number of generator updates, at least 1.
        d_steps: discriminator updates per generator update, at least 1.
        batch_size: points per batch, real and fake alike.
        lr: Adam learning rate of both networks.
        progress: show a tqdm progress bar with the latest losses.

    Returns:
        ``{"d_loss": [...], "g_loss": [...]}``: every discriminator loss
        (``n_steps * d_steps`` floats) and every generator loss (``n_steps``).
    """
    if n_steps < 1 or d_steps < 1 or batch_size < 1:
        raise ValueError(
            f"n_steps, d_steps and batch_size must be positive; got {n_steps}, {d_steps} and {batch_size}."
        )
    betas = (0.5, 0.999)
    d_opt = torch.optim.Adam(gan.discriminator.parameters(), lr=lr, betas=betas)
    g_opt = torch.optim.Adam(gan.generator.parameters(), lr=lr, betas=betas)
    history: dict[str, list[float]] = {"d_loss": [], "g_loss": []}
    bar = tqdm(range(n_steps), desc="training", disable=not progress, mininterval=1.0)
    for _ in bar:
        for _ in range(d_steps):
            x_real = sampler(batch_size)
            z = gan.sample_latent(batch_size)
            history["d_loss"].append(discriminator_step(gan, x_real, z, d_opt))
        z = gan.sample_latent(batch_size)
        history["g_loss"].append(generator_step(gan, z, g_opt))
        bar.set_postfix(d_loss=f"{history['d_loss'][-1]:.3f}", g_loss=f"{history['g_loss'][-1]:.3f}", refresh=False)
    return history
