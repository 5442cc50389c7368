"""GAN variants for 2D data behind one interface, so one training loop runs them all.

A :class:`Variant` is an ``nn.Module`` with a ``generator`` and a
``discriminator`` (a *critic* for WGAN) and two loss methods:

* ``discriminator_objective(x_real, z)`` and ``generator_objective(z)`` return
  the scalar loss the step minimises and a dict of floats to log (its parts,
  such as InfoGAN's mutual-information term).
* ``after_discriminator_step()`` runs after every discriminator update (WGAN
  clips its weights there).

This module holds the base class and :class:`StandardGAN`, the non-saturating
GAN of :mod:`coursepkg.toy2d.gan` with three options the recap chapter compares:
dropout in the generator, a packed discriminator (PacGAN, Lin et al. 2018) and
the saturating minimax loss of the original paper. :mod:`coursepkg.toy2d.wgan` and
:mod:`coursepkg.toy2d.infogan` add the other two variants;
:func:`coursepkg.toy2d.training.train` trains any of them.
"""

from __future__ import annotations

import torch
from torch import nn

from coursepkg.toy2d.gan import mlp
from coursepkg.toy2d.losses import discriminator_loss, generator_loss

__all__ = ["Objective", "StandardGAN", "Variant"]

#: A step's scalar loss and the named floats to log for it.
Objective = tuple[torch.Tensor, dict[str, float]]


class Variant(nn.Module):
    """Base class: a generator, a discriminator and how to sample the latent space.

    Args:
        dim: dimension of the data.
        hidden: width of the hidden layers of both networks.
        noise_dim: dimension of the Gaussian noise fed to the generator.
        depth: hidden layers per network.

    Attributes:
        latent_dim: width of the generator's input (noise, plus codes in InfoGAN).
        generator: maps ``(n, latent_dim)`` float32 to ``(n, dim)`` points.
        discriminator: scores points; see :meth:`discriminate`.
    """

    def __init__(self, *, dim: int = 2, hidden: int = 128, noise_dim: int = 2, depth: int = 3) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("hidden", hidden), ("noise_dim", noise_dim), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        self.dim, self.hidden, self.noise_dim, self.depth = dim, hidden, noise_dim, depth
        self.latent_dim = noise_dim

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``(n, latent_dim)`` float32 generator inputs (standard normal noise here)."""
        return torch.randn(n, self.latent_dim, generator=generator)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Generate ``n`` points, ``(n, dim)`` float32, in the modules' current mode.

        Training leaves the modules in training mode, so a generator with
        dropout samples the distribution its discriminator was trained against.
        """
        return self.generator(self.sample_latent(n, generator=generator))

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """Score ``(n, dim)`` points: ``(n, 1)`` logits (a critic value for WGAN)."""
        return self.discriminator(x)

    def discriminator_objective(self, x_real: torch.Tensor, z: torch.Tensor) -> Objective:
        """The discriminator's loss on ``(n, dim)`` real points and ``(m, latent_dim)`` noise, and its logs."""
        raise NotImplementedError

    def generator_objective(self, z: torch.Tensor) -> Objective:
        """The generator's loss on ``(m, latent_dim)`` noise, and its logs."""
        raise NotImplementedError

    def after_discriminator_step(self) -> None:
        """Hook run after each discriminator update; nothing by default."""


class StandardGAN(Variant):
    """The GAN of Goodfellow et al. (2014), with the options the recap chapter compares.

    Args:
        dim, hidden, noise_dim, depth: as in :class:`Variant`.
        dropout: dropout probability after every hidden layer of the
            generator: a second noise source inside the network.
        pack: number of samples the discriminator judges together (PacGAN);
            1 is the usual GAN. Batches must be multiples of ``pack``.
        saturating: train the generator on the minimax loss
            ``mean(log(1 - D(G(z))))`` instead of the non-saturating
            ``-mean(log D(G(z)))``.
    """

    def __init__(
        self,
        *,
        dim: int = 2,
        hidden: int = 128,
        noise_dim: int = 2,
        depth: int = 3,
        dropout: float = 0.0,
        pack: int = 1,
        saturating: bool = False,
    ) -> None:
        super().__init__(dim=dim, hidden=hidden, noise_dim=noise_dim, depth=depth)
        if isinstance(pack, bool) or not isinstance(pack, int) or pack < 1:
            raise ValueError(f"pack must be a positive integer, got {pack!r}.")
        self.pack, self.saturating = pack, saturating
        self.generator = mlp(noise_dim, hidden, dim, depth=depth, dropout=dropout)
        self.discriminator = mlp(dim * pack, hidden, 1, depth=depth)

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """Score packs of points: ``(n, dim)`` in, ``(n // pack, 1)`` logits out.

        Row ``i`` of the output judges points ``i * pack`` to ``(i + 1) * pack - 1``
        together. Points in a batch are independent, so consecutive ones make a
        fair pack.

        Raises:
            ValueError: if ``n`` is not a multiple of ``pack``.
        """
        if len(x) % self.pack:
            raise ValueError(f"a batch of {len(x)} points does not split into packs of {self.pack}.")
        return self.discriminator(x.reshape(len(x) // self.pack, self.dim * self.pack))

    def discriminator_objective(self, x_real: torch.Tensor, z: torch.Tensor) -> Objective:
        """``BCE(D(x_real), 1) + BCE(D(G(z)), 0)``, fakes detached from ``G``; logged as ``d_loss``."""
        fake_logits = self.discriminate(self.generator(z).detach())
        loss = discriminator_loss(self.discriminate(x_real), fake_logits)
        return loss, {"d_loss": loss.item()}

    def generator_objective(self, z: torch.Tensor) -> Objective:
        """``BCE(D(G(z)), 1)``, or ``mean(log(1 - D(G(z))))`` if saturating; logged as ``g_loss``.

        ``log(1 - sigmoid(l)) = -softplus(l)``: minimising it is the generator's
        side of the minimax game, whose gradient vanishes where ``D`` rejects
        the fakes.
        """
        fake_logits = self.discriminate(self.generator(z))
        if self.saturating:
            loss = -nn.functional.softplus(fake_logits).mean()
        else:
            loss = generator_loss(fake_logits)
        return loss, {"g_loss": loss.item()}
