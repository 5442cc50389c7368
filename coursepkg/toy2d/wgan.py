"""WGAN with weight clipping (Arjovsky, Chintala and Bottou, 2017) for 2D data.

The discriminator becomes a *critic* ``f: R^dim -> R`` with no sigmoid. For a
1-Lipschitz ``f``, ``E f(x_real) - E f(G(z))`` is at most the Wasserstein-1
distance between the data and the model, with equality for the best ``f``; the
critic maximises that gap and the generator minimises it. Clipping every weight
to ``[-clip, clip]`` after each critic update keeps ``f`` Lipschitz (with some
constant), crudely: it is the part of the method the paper itself calls "a
clearly terrible way to enforce a Lipschitz constraint". The critic takes
several steps per generator step (``d_steps`` in :func:`coursepkg.toy2d.training.train`,
5 in the paper), so that the generator follows a well-trained critic.
"""

from __future__ import annotations

import torch

from coursepkg.toy2d.gan import mlp
from coursepkg.toy2d.variants import Objective, Variant

__all__ = ["WGAN"]


class WGAN(Variant):
    """A generator and a weight-clipped critic.

    Args:
        dim, hidden, noise_dim, depth: as in :class:`coursepkg.toy2d.variants.Variant`.
        clip: every critic weight and bias is clipped to ``[-clip, clip]``
            after each critic update (0.01 in the paper).
    """

    def __init__(
        self, *, dim: int = 2, hidden: int = 128, noise_dim: int = 2, depth: int = 3, clip: float = 0.01
    ) -> None:
        super().__init__(dim=dim, hidden=hidden, noise_dim=noise_dim, depth=depth)
        if not clip > 0:
            raise ValueError(f"clip must be positive, got {clip}.")
        self.clip = clip
        self.generator = mlp(noise_dim, hidden, dim, depth=depth)
        self.discriminator = mlp(dim, hidden, 1, depth=depth)
        self.after_discriminator_step()  # start inside the constraint set

    def discriminator_objective(self, x_real: torch.Tensor, z: torch.Tensor) -> Objective:
        """Critic loss ``mean f(G(z)) - mean f(x_real)`` (fakes detached); logged as ``d_loss``.

        Minimising it maximises the Wasserstein estimate ``-d_loss``, so the
        loss is negative once the critic separates data from fakes.
        """
        loss = self.discriminate(self.generator(z).detach()).mean() - self.discriminate(x_real).mean()
        return loss, {"d_loss": loss.item()}

    def generator_objective(self, z: torch.Tensor) -> Objective:
        """Generator loss ``-mean f(G(z))``: move the fakes up the critic; logged as ``g_loss``."""
        loss = -self.discriminate(self.generator(z)).mean()
        return loss, {"g_loss": loss.item()}

    @torch.no_grad()
    def after_discriminator_step(self) -> None:
        """Clip every critic parameter to ``[-clip, clip]``."""
        for parameter in self.discriminator.parameters():
            parameter.clamp_(-self.clip, self.clip)
