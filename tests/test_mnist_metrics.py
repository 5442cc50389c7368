"""Class coverage and the Frechet distance, on cases with known answers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from coursepkg.mnist.lenet import LeNet5
from coursepkg.mnist.metrics import class_coverage, evaluate_generator, frechet_distance


def test_class_coverage_of_uniform_and_collapsed_labels():
    uniform = class_coverage(torch.arange(1000) % 10)
    assert uniform.digits_present == 10 and uniform.kl_to_uniform == pytest.approx(0.0, abs=1e-12)
    collapsed = class_coverage(torch.full((50,), 7))
    assert collapsed.digits_present == 1 and collapsed.kl_to_uniform == pytest.approx(math.log(10))
    two = class_coverage(torch.tensor([3, 3, 5, 5]))
    assert two.kl_to_uniform == pytest.approx(math.log(5))  # 1/2 log(0.5 / 0.1) twice
    assert two.histogram.sum() == pytest.approx(1.0)


def test_frechet_distance_of_gaussians_with_known_parameters():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 4, generator=g, dtype=torch.float64)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift.square().sum()), rel=1e-6)
    # N(0, I) against N(0, 4 I) in 4 dimensions: tr(I + 4I - 2 * 2I) = 4.
    b = 2 * torch.randn(20000, 4, generator=g, dtype=torch.float64)
    assert frechet_distance(a, b) == pytest.approx(4.0, rel=0.05)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)


def test_frechet_distance_rejects_mismatched_features():
    with pytest.raises(ValueError, match="feature sets"):
        frechet_distance(torch.zeros(5, 3), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="n >= 2"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))


class _Copier(nn.Module):
    """A 'generator' that returns real digits: its distance must sit at the floor."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images = images

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.images[: len(z)].flatten(1)


def test_a_generator_copying_fresh_real_digits_scores_like_the_floor():
    torch.manual_seed(0)
    classifier = LeNet5().eval()
    g = torch.Generator().manual_seed(1)
    pool = 2 * torch.rand(600, 1, 28, 28, generator=g) - 1
    real, fresh = pool[:400], pool[200:]  # the copier's first 200 images are real[200:400], the second half
    report = evaluate_generator(_Copier(fresh), classifier, real, latent_dim=4, n_coverage=100)
    assert report.frechet == pytest.approx(report.frechet_floor, rel=1e-6)
    blank = evaluate_generator(_Copier(torch.zeros(600, 1, 28, 28)), classifier, real, latent_dim=4, n_coverage=100)
    assert blank.coverage.digits_present == 1 and blank.frechet > 10 * blank.frechet_floor
