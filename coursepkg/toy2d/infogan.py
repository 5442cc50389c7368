"""InfoGAN with one categorical code (Chen et al., 2016) for 2D data.

The generator reads noise and a one-hot code ``c`` drawn uniformly from
``codes`` values. A *Q head* on the discriminator's hidden features predicts
``c`` from a generated point, and both the generator and the Q head minimise
its cross-entropy ``CE = E[-log Q(c | G(z, c))]``. That is the variational
lower bound of the paper, ``I(c; G(z, c)) >= H(c) - CE = log(codes) - CE``:
pushing ``CE`` down makes the codes tell the generated points apart, so
different codes go to different places, which is what counters mode collapse.
At chance, ``Q`` predicts the uniform distribution and ``CE = log(codes)``.
"""

from __future__ import annotations

import torch
from torch import nn

from coursepkg.toy2d.gan import mlp
from coursepkg.toy2d.losses import discriminator_loss, generator_loss
from coursepkg.toy2d.variants import Objective, Variant

__all__ = ["InfoGAN"]


class _DiscriminatorWithQ(nn.Module):
    # The D and Q heads share every hidden layer, as in the paper: Q costs one
    # linear layer, and D's features are the ones that already see the data.
    def __init__(self, dim: int, hidden: int, depth: int, codes: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(mlp(dim, hidden, hidden, depth=depth - 1), nn.LeakyReLU(0.2))
        self.d_head = nn.Linear(hidden, 1)
        self.q_head = nn.Linear(hidden, codes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.d_head(self.trunk(x))

    def both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x)
        return self.d_head(features), self.q_head(features)


class InfoGAN(Variant):
    """A GAN whose generator also reads a categorical code that a Q head must recover.

    Args:
        codes: number of values of the categorical code, at least 2.
        info_weight: weight ``lambda`` of the cross-entropy term in both losses
            (1 in the paper for discrete codes).
        dim, hidden, noise_dim, depth: as in :class:`coursepkg.toy2d.variants.Variant`;
            ``depth`` at least 2 (the Q head branches off after ``depth - 1``
            hidden layers).

    Attributes:
        latent_dim: ``noise_dim + codes``: the noise, then the one-hot code.
    """

    def __init__(
        self,
        *,
        codes: int,
        info_weight: float = 1.0,
        dim: int = 2,
        hidden: int = 128,
        noise_dim: int = 2,
        depth: int = 3,
    ) -> None:
        super().__init__(dim=dim, hidden=hidden, noise_dim=noise_dim, depth=depth)
        if isinstance(codes, bool) or not isinstance(codes, int) or codes < 2 or depth < 2:
            raise ValueError(f"InfoGAN needs codes >= 2 and depth >= 2, got codes={codes!r}, depth={depth}.")
        if not info_weight >= 0:
            raise ValueError(f"info_weight must be non-negative, got {info_weight}.")
        self.codes, self.info_weight = codes, info_weight
        self.latent_dim = noise_dim + codes
        self.generator = mlp(self.latent_dim, hidden, dim, depth=depth)
        self.discriminator = _DiscriminatorWithQ(dim, hidden, depth, codes)

    def sample_latent(
        self, n: int, *, generator: torch.Generator | None = None, code: int | None = None
    ) -> torch.Tensor:
        """Draw ``(n, noise_dim + codes)`` float32: Gaussian noise, then a one-hot code.

        Args:
            n: number of rows.
            generator: optional seeded ``torch.Generator``.
            code: fix the code of every row to this value; uniform by default.
        """
        noise = torch.randn(n, self.noise_dim, generator=generator)
        if code is None:
            labels = torch.randint(self.codes, (n,), generator=generator)
        elif 0 <= code < self.codes:
            labels = torch.full((n,), code)
        else:
            raise ValueError(f"code must be in [0, {self.codes}), got {code}.")
        return torch.cat([noise, nn.functional.one_hot(labels, self.codes).float()], dim=1)

    def code_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The Q head: ``(n, dim)`` points to ``(n, codes)`` logits of ``Q(c | x)``."""
        return self.discriminator.both(x)[1]

    def _codes_of(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, self.noise_dim :].argmax(dim=1)

    def discriminator_objective(self, x_real: torch.Tensor, z: torch.Tensor) -> Objective:
        """``BCE`` of D plus ``lambda * CE`` of Q on the (detached) fakes.

        Logged: ``d_loss`` (the BCE part) and ``q_loss`` (the cross-entropy).
        """
        real_logits = self.discriminator(x_real)
        fake_logits, code_logits = self.discriminator.both(self.generator(z).detach())
        adversarial = discriminator_loss(real_logits, fake_logits)
        info = nn.functional.cross_entropy(code_logits, self._codes_of(z))
        return adversarial + self.info_weight * info, {"d_loss": adversarial.item(), "q_loss": info.item()}

    def generator_objective(self, z: torch.Tensor) -> Objective:
        """Non-saturating ``BCE(D(G(z)), 1)`` plus ``lambda * CE`` of Q on the same fakes.

        Logged: ``g_loss`` (the BCE part) and ``info_loss`` (the cross-entropy:
        ``log(codes)`` at chance, 0 when every code is recovered).
        """
        fake_logits, code_logits = self.discriminator.both(self.generator(z))
        adversarial = generator_loss(fake_logits)
        info = nn.functional.cross_entropy(code_logits, self._codes_of(z))
        return adversarial + self.info_weight * info, {"g_loss": adversarial.item(), "info_loss": info.item()}
