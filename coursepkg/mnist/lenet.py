"""LeNet-5, the digit classifier that judges the MNIST GAN and guides the LSI search.

The layout is that of the pyribs LSI tutorial (after LeCun et al. 1998): two
5x5 convolutions with 6 and 16 channels, each followed by 2x2 max pooling and
ReLU, then fully connected layers 256 -> 120 -> 84 -> 10 and a log-softmax.
Its 84-dimensional penultimate activations are the feature space of the
Frechet distance in :mod:`coursepkg.mnist.metrics`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from coursepkg.mnist.data import SCALES

__all__ = ["FEATURE_DIM", "LeNet5", "augment"]

FEATURE_DIM = 84


class LeNet5(nn.Module):
    """Classify ``(n, 1, 28, 28)`` images normalised with mean 0.1307 / std 0.3081.

    ``forward`` returns ``(n, 10)`` log-probabilities; :meth:`features` the
    ``(n, 84)`` activations before the last layer.
    """

    def __init__(self) -> None:
        super().__init__()
        self.convolutions = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5),  # (1, 28, 28) -> (6, 24, 24)
            nn.MaxPool2d(2),  # -> (6, 12, 12)
            nn.ReLU(),
            nn.Conv2d(6, 16, kernel_size=5),  # -> (16, 8, 8)
            nn.MaxPool2d(2),  # -> (16, 4, 4)
            nn.ReLU(),
            nn.Flatten(),  # -> (256,)
        )
        self.fully_connected = nn.Sequential(nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, FEATURE_DIM), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(FEATURE_DIM, 10), nn.LogSoftmax(dim=1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, 1, 28, 28)`` normalised images to ``(n, 84)`` non-negative features."""
        return self.fully_connected(self.convolutions(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def augment(x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Randomly rotate (up to 10 degrees), scale (0.9-1.1) and shift (up to 2 pixels) each image.

    Handwriting varies in exactly these ways, so with only 10,000 training digits
    the augmentation is worth about half a point of test accuracy.

    Args:
        x: ``(n, 1, 28, 28)`` images with LeNet-5's normalisation.
        generator: random source, for reproducible training.

    Returns:
        ``(n, 1, 28, 28)`` transformed images; the border is filled with the background value.
    """
    n = len(x)

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    angle = uniform(-math.pi / 18, math.pi / 18)
    scale = uniform(0.9, 1.1)
    shift = uniform(-2 / 14, 2 / 14), uniform(-2 / 14, 2 / 14)  # affine_grid spans [-1, 1]: 14 px per unit
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle) / scale, -torch.sin(angle) / scale
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle) / scale, torch.cos(angle) / scale
    theta[:, 0, 2], theta[:, 1, 2] = shift
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    background = -SCALES["lenet"][0] / SCALES["lenet"][1]  # a black pixel, normalised
    # grid_sample pads with zeros: shift so that the background is zero, then back.
    return F.grid_sample(x - background, grid, align_corners=False) + background
