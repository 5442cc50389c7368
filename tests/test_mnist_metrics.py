"""Class coverage and the Frechet distance, on cases with known answers."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pytest
import torch
from torch import nn

from coursepkg.mnist.lenet import LeNet5
from coursepkg.mnist.metrics import class_coverage, evaluate_generator, frechet_distance, manifold_scores


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


def _clusters(labels: np.ndarray, centres: np.ndarray, seed: int) -> np.ndarray:
    """Points around ``centres[labels]``: tight, well-separated clusters in 8 dimensions."""
    return centres[labels] + np.random.default_rng(seed).standard_normal((len(labels), centres.shape[1]))


def test_manifold_scores_of_identical_sets_are_all_one():
    points = np.random.default_rng(0).standard_normal((400, 8))
    scores = manifold_scores(points, points)
    # Each real ball holds its centre and k - 1 neighbours; the k-th sits on the edge, outside.
    assert asdict(scores) == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}


def test_manifold_scores_of_disjoint_sets_are_all_zero():
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((300, 8)), 50 + rng.standard_normal((200, 8))
    assert asdict(manifold_scores(real, fake)) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_a_generator_of_half_the_classes_is_precise_but_recalls_and_covers_half():
    rng = np.random.default_rng(0)
    centres = 30 * rng.standard_normal((10, 8))
    real_labels = np.arange(2000) % 10
    real = _clusters(real_labels, centres, seed=1)
    fake = _clusters(np.arange(2000) % 5, centres, seed=2)  # fresh samples of classes 0-4 only
    halves = manifold_scores(real, _clusters(real_labels, centres, seed=2))  # all ten classes, fresh
    scores = manifold_scores(real, fake)
    # Within the classes it makes, the half-generator is as good as fresh real samples...
    assert scores.precision == pytest.approx(halves.precision, abs=0.03)
    assert scores.density == pytest.approx(halves.density, abs=0.05)
    # ...but only the real points of those classes are recalled and covered.
    assert scores.recall == pytest.approx(halves.recall / 2, abs=0.02)
    assert scores.coverage == pytest.approx(halves.coverage / 2, abs=0.02)
    assert halves.recall > 0.8 and halves.coverage > 0.9


def test_samples_crowded_on_one_real_point_are_precise_dense_and_cover_only_its_balls():
    real = np.random.default_rng(0).standard_normal((500, 8))
    crowded = real[:1].repeat(100, axis=0)  # every sample is the first real point
    scores = manifold_scores(real, crowded)
    # The balls (k = 5) that hold the first real point, counted by brute force.
    distances = np.linalg.norm(real[:, None] - real[None], axis=-1)
    radii = np.sort(distances, axis=1)[:, 5]
    holding = int((distances[0] < radii).sum())
    assert holding > 1
    assert scores.precision == 1.0 and scores.recall == 0.0  # the samples' own balls have radius 0
    assert scores.density == pytest.approx(holding / 5) and scores.coverage == pytest.approx(holding / 500)


def test_manifold_scores_rejects_mismatched_or_tiny_sets():
    with pytest.raises(ValueError, match="same d"):
        manifold_scores(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(ValueError, match="more than k = 5"):
        manifold_scores(np.random.default_rng(0).standard_normal((5, 3)), np.zeros((10, 3)))
