"""The GAN losses on discriminator logits, shared by every GAN of the course.

Both use ``BCEWithLogitsLoss``, which folds the sigmoid into the log and so
stays finite where ``log(sigmoid(x))`` would underflow. Used by the 2D lab's
steps (:mod:`coursepkg.toy2d.gan`), the recap's variants and the MNIST lab,
whose students write them (:mod:`coursepkg.mnist.models`).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["discriminator_loss", "generator_loss"]

_bce = nn.BCEWithLogitsLoss()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of ``D``: real points labelled 1, fake points labelled 0.

    Args:
        real_logits: ``(n, 1)`` logits of real points.
        fake_logits: ``(m, 1)`` logits of generated points.

    Returns:
        Scalar tensor ``BCE(real, 1) + BCE(fake, 0)``, each term a batch mean.
    """
    return _bce(real_logits, torch.ones_like(real_logits)) + _bce(fake_logits, torch.zeros_like(fake_logits))


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-mean(log D(G(z)))`` from ``(m, 1)`` logits.

    Written as ``BCE(fake, 1)``: the generator is trained to make ``D`` call its
    points real. Its gradient is large exactly when ``D`` rejects the fakes,
    unlike the saturating ``mean(log(1 - D(G(z))))`` of the minimax game.
    """
    return _bce(fake_logits, torch.ones_like(fake_logits))
