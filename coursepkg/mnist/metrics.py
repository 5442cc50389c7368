"""How good is an MNIST generator? Numbers measured with LeNet-5 on held-out digits.

* **Class coverage**: LeNet-5 labels 10,000 generated digits; a generator that
  covers the data makes all ten digits about equally often. We report the
  digits present and ``KL(histogram || uniform)`` (0 for a perfect balance,
  ``log 10 = 2.30`` when only one digit is ever made).
* **Frechet distance** (FID's formula, Heusel et al. 2017, in LeNet-5's
  84-dimensional feature space instead of Inception's): fit a Gaussian to the
  features of generated and of real held-out digits and compare them,
  ``||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))``. Two disjoint halves of
  real digits give the floor that sampling noise alone produces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from coursepkg.mnist.data import lenet_input
from coursepkg.mnist.lenet import LeNet5

__all__ = [
    "ClassCoverage",
    "GeneratorReport",
    "accuracy",
    "class_coverage",
    "evaluate_generator",
    "frechet_distance",
    "lenet_features",
]


@torch.no_grad()
def _batched(function: nn.Module, x: torch.Tensor, batch_size: int = 2500) -> torch.Tensor:
    return torch.cat([function(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def accuracy(model: LeNet5, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``(n, 1, 28, 28)`` LeNet-normalised ``images`` classified as ``labels``, in [0, 1]."""
    return float((_batched(model, images).argmax(dim=1) == labels).double().mean())


def lenet_features(model: LeNet5, images: torch.Tensor) -> torch.Tensor:
    """``(n, 84)`` LeNet-5 features of GAN-range images (``(n, 784)`` or ``(n, 1, 28, 28)`` in ``[-1, 1]``)."""
    return _batched(model.features, lenet_input(images))


@dataclass(frozen=True)
class ClassCoverage:
    """Which digits a generator makes.

    Attributes:
        digits_present: how many of the ten digits occur at least once.
        histogram: ``(10,)`` float64 fraction of samples per digit, summing to 1.
        kl_to_uniform: ``KL(histogram || uniform)`` in nats, in ``[0, log 10]``.
    """

    digits_present: int
    histogram: torch.Tensor
    kl_to_uniform: float


def class_coverage(labels: torch.Tensor) -> ClassCoverage:
    """Summarise ``(n,)`` int64 predicted digits in ``[0, 9]``."""
    if labels.ndim != 1 or not len(labels) or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"labels must be a non-empty (n,) tensor of digits 0-9, got shape {tuple(labels.shape)}.")
    histogram = torch.bincount(labels, minlength=10).double() / len(labels)
    present = histogram > 0
    kl = float((histogram[present] * torch.log(histogram[present] * 10)).sum())
    return ClassCoverage(int(present.sum()), histogram, kl)


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets ``(n, d)`` and ``(m, d)``, n, m >= 2.

    The trace of ``(S_a S_b)^(1/2)`` is computed as the sum of the square roots
    of the eigenvalues of ``S_a^(1/2) S_b S_a^(1/2)``, a symmetric matrix, which
    is stabler than a general matrix square root.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(
            f"expected two (n, d) feature sets with n >= 2, got shapes {tuple(a.shape)} and {tuple(b.shape)}."
        )
    a, b = a.double(), b.double()
    mean_a, mean_b = a.mean(dim=0), b.mean(dim=0)
    cov_a, cov_b = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    distance = (mean_a - mean_b).square().sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * cross
    return max(float(distance), 0.0)


@dataclass(frozen=True)
class GeneratorReport:
    """The numbers :func:`evaluate_generator` measured.

    Attributes:
        coverage: class coverage of ``n_coverage`` samples.
        frechet: Frechet distance of ``n_frechet`` samples to the first half of the real digits.
        frechet_floor: the same distance between the two halves of the real digits.
    """

    coverage: ClassCoverage
    frechet: float
    frechet_floor: float

    def as_dict(self) -> dict[str, float | int | list[float]]:
        """Plain numbers, for a manifest or a table."""
        return {
            "digits_present": self.coverage.digits_present,
            "class_kl_to_uniform": round(self.coverage.kl_to_uniform, 5),
            "class_histogram": [round(float(p), 5) for p in self.coverage.histogram],
            "frechet_lenet": round(self.frechet, 4),
            "frechet_lenet_real_floor": round(self.frechet_floor, 4),
        }


@torch.no_grad()
def evaluate_generator(
    generator: nn.Module,
    classifier: LeNet5,
    real_images: torch.Tensor,
    *,
    latent_dim: int,
    n_coverage: int = 10_000,
    seed: int = 0,
) -> GeneratorReport:
    """Class coverage and Frechet distance of a generator against real held-out digits.

    Args:
        generator: maps ``(n, latent_dim)`` noise to ``(n, 784)`` images in ``[-1, 1]``.
        classifier: a trained LeNet-5.
        real_images: ``(m, 1, 28, 28)`` real digits in ``[-1, 1]``, never seen in training;
            split into two halves of ``m // 2``.
        latent_dim: the generator's latent size.
        n_coverage: samples labelled for the class coverage.
        seed: seed of the latent noise.

    Returns:
        A :class:`GeneratorReport`; the Frechet distance uses ``m // 2`` samples,
        as many as each real half, so that it and the floor share their sampling bias.
    """
    half = len(real_images) // 2
    if half < 2:
        raise ValueError(f"real_images needs at least 4 digits, got {len(real_images)}.")
    generator.eval()
    noise = torch.Generator().manual_seed(seed)
    samples = _batched(generator, torch.randn(max(n_coverage, half), latent_dim, generator=noise))
    labels = _batched(classifier, lenet_input(samples[:n_coverage])).argmax(dim=1)
    real_a, real_b = (
        lenet_features(classifier, real_images[:half]),
        lenet_features(classifier, real_images[half : 2 * half]),
    )
    fake = lenet_features(classifier, samples[:half])
    return GeneratorReport(
        coverage=class_coverage(labels),
        frechet=frechet_distance(fake, real_a),
        frechet_floor=frechet_distance(real_b, real_a),
    )
