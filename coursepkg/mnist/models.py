"""The MLP GAN of the MNIST chapter: the reference of its exercises and of the shipped models.

Shapes follow the networks of the pyribs tutorial "Illuminating the Latent
Space of an MNIST GAN", so the LSI chapter's experiments carry over:

* :class:`Generator`: ``z`` of size 128 -> 256 -> 512 -> 1024 -> 784, LeakyReLU(0.2)
  between layers and a tanh at the end, so images lie in ``[-1, 1]``;
* :class:`Discriminator`: 784 -> 1024 -> 512 -> 256 -> 1 with LeakyReLU(0.2) and
  dropout, returning *logits* (the losses of :mod:`coursepkg.toy2d.losses` apply the sigmoid).

The losses are those of :mod:`coursepkg.toy2d.losses` (a GAN is a GAN, whatever the
data); :func:`train_step` does one discriminator and one generator update.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from coursepkg.toy2d.gan import GANBase
from coursepkg.toy2d.losses import discriminator_loss, generator_loss

__all__ = ["IMAGE_SIZE", "LATENT_DIM", "Discriminator", "Generator", "MNISTGAN", "train_step"]

IMAGE_SIZE = 28 * 28
LATENT_DIM = 128


def _leaky_mlp(widths: Sequence[int], *, dropout: float = 0.0) -> list[nn.Module]:
    """Linear layers between consecutive ``widths``, each followed by LeakyReLU(0.2) (and dropout)."""
    layers: list[nn.Module] = []
    for width_in, width_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(width_in, width_out), nn.LeakyReLU(0.2)]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return layers


class Generator(nn.Module):
    """Map latent vectors to images.

    Args:
        latent_dim: size of the Gaussian latent vector (128 for the shipped model).
        hidden: widths of the hidden layers.

    Input ``(n, latent_dim)`` float32; output ``(n, 784)`` float32 in ``[-1, 1]``
    (reshape to ``(n, 1, 28, 28)`` to view).
    """

    def __init__(self, latent_dim: int = LATENT_DIM, hidden: Sequence[int] = (256, 512, 1024)) -> None:
        super().__init__()
        if latent_dim < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"latent_dim and hidden widths must be positive, got {latent_dim} and {tuple(hidden)}.")
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            *_leaky_mlp([latent_dim, *hidden]),
            nn.Linear(hidden[-1], IMAGE_SIZE),
            nn.Tanh(),  # the data are scaled to [-1, 1]
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """Score images: ``(n, 784)`` or ``(n, 1, 28, 28)`` in ``[-1, 1]`` to ``(n, 1)`` logits.

    Args:
        hidden: widths of the hidden layers.
        dropout: dropout probability after each hidden layer; it keeps the
            discriminator from memorising a small training set.
        spectral_norm: divide each weight matrix by its largest singular value
            (Miyato et al. 2018). The layers keep their shapes; the discriminator
            becomes 1-Lipschitz per layer, which on 10,000 digits is what keeps the
            generator from collapsing onto a few of them.
    """

    def __init__(
        self, hidden: Sequence[int] = (1024, 512, 256), *, dropout: float = 0.3, spectral_norm: bool = False
    ) -> None:
        super().__init__()
        if not hidden or min(hidden) < 1 or not 0 <= dropout < 1:
            raise ValueError(
                f"hidden widths must be positive and dropout in [0, 1), got {tuple(hidden)} and {dropout}."
            )
        self.net = nn.Sequential(*_leaky_mlp([IMAGE_SIZE, *hidden], dropout=dropout), nn.Linear(hidden[-1], 1))
        if spectral_norm:
            for layer in self.net:
                if isinstance(layer, nn.Linear):
                    nn.utils.parametrizations.spectral_norm(layer)

    def remove_spectral_norm(self) -> Discriminator:
        """Fold the normalised weights into plain ``nn.Linear`` weights (same outputs in eval mode)."""
        for layer in self.net:
            if nn.utils.parametrize.is_parametrized(layer):
                nn.utils.parametrize.remove_parametrizations(layer, "weight")
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class MNISTGAN(GANBase):
    """A :class:`Generator` and a :class:`Discriminator`, with the interface of :class:`coursepkg.toy2d.gan.GANBase`.

    Args:
        latent_dim: size of the latent vector.
        g_hidden: hidden widths of the generator.
        d_hidden: hidden widths of the discriminator.
        dropout: dropout of the discriminator.
        spectral_norm: spectral normalisation of the discriminator's layers.
    """

    def __init__(
        self,
        latent_dim: int = LATENT_DIM,
        *,
        g_hidden: Sequence[int] = (256, 512, 1024),
        d_hidden: Sequence[int] = (1024, 512, 256),
        dropout: float = 0.3,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = Generator(latent_dim, g_hidden)
        self.discriminator = Discriminator(d_hidden, dropout=dropout, spectral_norm=spectral_norm)


def train_step(
    generator: nn.Module,
    discriminator: nn.Module,
    x_real: torch.Tensor,
    z: torch.Tensor,
    d_optimizer: torch.optim.Optimizer,
    g_optimizer: torch.optim.Optimizer,
) -> tuple[float, float]:
    """One training step: a discriminator update, then a generator update.

    Args:
        generator: maps ``(m, latent_dim)`` noise to ``(m, 784)`` images.
        discriminator: maps ``(n, 784)`` images to ``(n, 1)`` logits.
        x_real: ``(n, 784)`` real images in ``[-1, 1]``.
        z: ``(m, latent_dim)`` latent noise, used by both updates.
        d_optimizer: optimizer over the discriminator's parameters only.
        g_optimizer: optimizer over the generator's parameters only.

    Returns:
        ``(d_loss, g_loss)`` as floats, each the loss before its update.
    """
    x_fake = generator(z)
    # detach(): the discriminator's loss must not send gradients into the generator.
    d_loss = discriminator_loss(discriminator(x_real), discriminator(x_fake.detach()))
    d_optimizer.zero_grad()
    d_loss.backward()
    d_optimizer.step()
    # The same fakes, scored by the discriminator *after* its update.
    g_loss = generator_loss(discriminator(x_fake))
    g_optimizer.zero_grad()
    g_loss.backward()
    g_optimizer.step()
    return d_loss.item(), g_loss.item()
