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
* **Precision and recall** (Kynkäänniemi et al. 2019) and **density and
  coverage** (Naeem et al. 2020), in the same feature space. Each real feature
  vector gets a ball reaching its k-th nearest real neighbour; their union
  estimates where real digits live. Precision is the fraction of generated
  digits inside it (quality); recall the fraction of real digits inside the
  same construction around the generated ones (diversity). Density counts how
  many real balls hold each generated digit (1 on average for a perfect
  generator, more where it crowds into dense regions); coverage is the fraction
  of real balls that hold at least one generated digit (diversity, robust to
  outliers). Distances are Euclidean; a point exactly on a ball's edge is
  outside, as in the authors' code, so identical sets score 1 on all four.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors
from torch import nn

from coursepkg.mnist.data import lenet_input
from coursepkg.mnist.lenet import LeNet5

__all__ = [
    "ClassCoverage",
    "GeneratorReport",
    "ManifoldScores",
    "accuracy",
    "class_coverage",
    "evaluate_generator",
    "evaluate_images",
    "frechet_distance",
    "lenet_features",
    "manifold_scores",
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
class ManifoldScores:
    """How generated features sit among real ones (:func:`manifold_scores`); each in ``[0, 1]`` except density.

    Attributes:
        precision: fraction of generated points inside the real manifold (Kynkäänniemi et al. 2019).
        recall: fraction of real points inside the generated manifold.
        density: real balls holding each generated point, averaged and divided by ``k``
            (Naeem et al. 2020); in ``[0, n_real / k]``, about 1 for a perfect generator.
        coverage: fraction of real balls holding at least one generated point.
    """

    precision: float
    recall: float
    density: float
    coverage: float


def _ball_radii(points: np.ndarray, *ks: int) -> list[np.ndarray]:
    """For each ``k`` of ``ks``, the ``(n,)`` distances from each of ``points`` to its ``k``-th nearest other point."""
    if len(points) <= max(ks):
        raise ValueError(f"need more than k = {max(ks)} points for k-nearest-neighbour balls, got {len(points)}.")
    # The ball tree computes sqrt(sum((a - b) ** 2)) exactly as SciPy's cdist below does; the
    # brute-force shortcut |a|^2 + |b|^2 - 2 a.b rounds differently, and a point on a ball's edge
    # (each real point's k-th neighbour, when the two sets are the same) would fall either side.
    tree = NearestNeighbors(algorithm="ball_tree").fit(points)
    distances, _ = tree.kneighbors(points, n_neighbors=max(ks) + 1)
    return [distances[:, k] for k in ks]  # column 0 is the point itself


def manifold_scores(
    real: torch.Tensor | np.ndarray,
    fake: torch.Tensor | np.ndarray,
    *,
    k_recall: int = 3,
    k_coverage: int = 5,
    rows: int = 1024,
) -> ManifoldScores:
    """Precision, recall, density and coverage of ``fake`` features against ``real`` ones.

    Used by the MNIST lab (section 6) and its benchmark, on LeNet-5 features.

    Args:
        real: ``(n, d)`` features of real data, ``n > k_coverage``.
        fake: ``(m, d)`` features of generated data, ``m > k_recall``.
        k_recall: the neighbour that sets the balls' radii for precision and recall
            (3, as Kynkäänniemi et al. 2019 recommend).
        k_coverage: the same for density and coverage (5, as Naeem et al. 2020 do).
        rows: generated points per block of distances (memory: ``rows * n`` floats).

    Returns:
        A :class:`ManifoldScores`.

    Raises:
        ValueError: for sets that are not ``(n, d)`` with the same ``d``, or too small for ``k``.
    """
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"expected two (n, d) feature sets with the same d, got shapes {real.shape} and {fake.shape}.")
    real_pr, real_dc = _ball_radii(real, k_recall, k_coverage)  # one neighbour search for both
    (fake_pr,) = _ball_radii(fake, k_recall)
    in_real_manifold, real_balls_held = [], []  # per generated point
    in_fake_manifold, covered = np.zeros(len(real), bool), np.zeros(len(real), bool)  # per real point
    for start in range(0, len(fake), rows):
        distances = cdist(fake[start : start + rows], real)  # (rows, n)
        in_real_manifold.append((distances < real_pr).any(axis=1))
        inside_dc = distances < real_dc
        real_balls_held.append(inside_dc.sum(axis=1))
        covered |= inside_dc.any(axis=0)
        in_fake_manifold |= (distances < fake_pr[start : start + rows, None]).any(axis=0)
    return ManifoldScores(
        precision=float(np.concatenate(in_real_manifold).mean()),
        recall=float(in_fake_manifold.mean()),
        density=float(np.concatenate(real_balls_held).mean() / k_coverage),
        coverage=float(covered.mean()),
    )


@dataclass(frozen=True)
class GeneratorReport:
    """The numbers :func:`evaluate_images` measured.

    Attributes:
        coverage: class coverage of ``n_coverage`` samples.
        frechet: Frechet distance of the samples to the first half of the real digits.
        frechet_floor: the same distance between the two halves of the real digits.
        manifold: precision, recall, density and coverage of the samples against the
            first half of the real digits.
    """

    coverage: ClassCoverage
    frechet: float
    frechet_floor: float
    manifold: ManifoldScores

    def as_dict(self) -> dict[str, float | int | list[float]]:
        """Plain numbers, for a manifest or a table."""
        return {
            "digits_present": self.coverage.digits_present,
            "class_kl_to_uniform": round(self.coverage.kl_to_uniform, 5),
            "class_histogram": [round(float(p), 5) for p in self.coverage.histogram],
            "frechet_lenet": round(self.frechet, 4),
            "frechet_lenet_real_floor": round(self.frechet_floor, 4),
            **{name: round(value, 4) for name, value in asdict(self.manifold).items()},
        }


@torch.no_grad()
def evaluate_images(
    images: torch.Tensor, classifier: LeNet5, real_images: torch.Tensor, *, n_coverage: int = 10_000
) -> GeneratorReport:
    """Class coverage, Frechet distance and manifold scores of ``images`` against real held-out digits.

    Args:
        images: ``(n, 784)`` or ``(n, 1, 28, 28)`` digits in ``[-1, 1]``, generated (or, for
            the floor, real digits of the fit part), with ``n >= max(n_coverage, m // 2)``.
        classifier: a trained LeNet-5.
        real_images: ``(m, 1, 28, 28)`` real digits in ``[-1, 1]``, never seen in training;
            split into two halves of ``m // 2``.
        n_coverage: images labelled for the class coverage (the first ones).

    Returns:
        A :class:`GeneratorReport`; the Frechet distance and the manifold scores use the
        first ``m // 2`` images, as many as each real half, so that the distance and
        its floor share their sampling bias.

    Raises:
        ValueError: for fewer than 4 real digits or too few ``images``.
    """
    half = len(real_images) // 2
    if half < 2:
        raise ValueError(f"real_images needs at least 4 digits, got {len(real_images)}.")
    if len(images) < max(n_coverage, half):
        raise ValueError(f"need at least max(n_coverage, m // 2) = {max(n_coverage, half)} images, got {len(images)}.")
    labels = _batched(classifier, lenet_input(images[:n_coverage])).argmax(dim=1)
    real_a, real_b = (
        lenet_features(classifier, real_images[:half]),
        lenet_features(classifier, real_images[half : 2 * half]),
    )
    fake = lenet_features(classifier, images[:half])
    return GeneratorReport(
        coverage=class_coverage(labels),
        frechet=frechet_distance(fake, real_a),
        frechet_floor=frechet_distance(real_b, real_a),
        manifold=manifold_scores(real_a, fake),
    )


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
    """:func:`evaluate_images` of ``max(n_coverage, m // 2)`` samples of a generator.

    Args:
        generator: maps ``(n, latent_dim)`` noise to ``(n, 784)`` images in ``[-1, 1]``.
        classifier: a trained LeNet-5.
        real_images: ``(m, 1, 28, 28)`` real digits in ``[-1, 1]``, never seen in training.
        latent_dim: the generator's latent size.
        n_coverage: samples labelled for the class coverage.
        seed: seed of the latent noise.

    Returns:
        A :class:`GeneratorReport`.
    """
    generator.eval()
    noise = torch.Generator().manual_seed(seed)
    count = max(n_coverage, len(real_images) // 2)
    samples = _batched(generator, torch.randn(count, latent_dim, generator=noise))
    return evaluate_images(samples, classifier, real_images, n_coverage=n_coverage)
