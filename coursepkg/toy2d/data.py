"""Two-dimensional toy data sets for GAN experiments.

Every data set is sampled from an optional ``torch.Generator``, so a seeded
generator gives the same points on every machine, and every call returns exactly
``n`` rows. ``moons`` and ``circles`` are scikit-learn's ``make_moons`` and
``make_circles`` (the seed lab's), seeded from that generator; the mixtures are
drawn in PyTorch. Used by the recap chapter, the 2D lab and its grader.

The lab's data sets (``moons``, ``circles``, ``2gmm``, ``radial_gmm``) are easy
enough to learn in a minute of CPU; ``3gmm``, three modes on the unit circle, is
the recap chapter's stage for training dynamics and GAN variants. ``ring`` and
``grid`` are the mode-coverage benchmarks of PacGAN (Lin et al., 2018) and VEEGAN (Srivastava et al., 2017):
8 Gaussians of std 0.01 on the unit circle, and 25 Gaussians of std 0.05 on the
grid {-4, -2, 0, 2, 4}^2.
"""

from __future__ import annotations

import math

import torch
from sklearn.datasets import make_circles, make_moons

__all__ = ["DATASETS", "mixture_means", "mixture_std", "sample_data"]

#: Names accepted by :func:`sample_data`.
DATASETS: tuple[str, ...] = ("moons", "circles", "2gmm", "3gmm", "radial_gmm", "ring", "grid")

# Mixture data sets: the standard deviation of every component.
_MIXTURE_STD = {"2gmm": 0.3, "3gmm": 0.1, "radial_gmm": 0.1, "ring": 0.01, "grid": 0.05}


def mixture_means(model: str) -> torch.Tensor:
    """Return the component means of a Gaussian-mixture data set.

    Args:
        model: one of ``"2gmm"``, ``"3gmm"``, ``"radial_gmm"``, ``"ring"``, ``"grid"``.

    Returns:
        ``(k, 2)`` float32 tensor, one row per (equally weighted) mode.

    Raises:
        ValueError: if ``model`` is not a mixture data set.
    """
    if model == "2gmm":
        return torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    if model == "3gmm":
        # At 90, 210 and 330 degrees: an upright triangle.
        angles = math.pi / 2 + torch.arange(3, dtype=torch.float32) * (2 * math.pi / 3)
        return torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    if model in ("radial_gmm", "ring"):
        angles = torch.arange(8, dtype=torch.float32) * (2 * math.pi / 8)
        return torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    if model == "grid":
        axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        return torch.cartesian_prod(axis, axis)
    raise ValueError(f"{model!r} is not a Gaussian-mixture data set; choose one of {sorted(_MIXTURE_STD)}.")


def mixture_std(model: str) -> float:
    """Return the per-coordinate standard deviation of a mixture's components."""
    mixture_means(model)  # validates the name with a clear message
    return _MIXTURE_STD[model]


def _check_arguments(n: int, model: str) -> None:
    if model not in DATASETS:
        raise ValueError(f"Unknown data set {model!r}; choose one of {list(DATASETS)}.")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer (number of points), got {n!r}.")


def _numpy_seed(generator: torch.Generator | None) -> int:
    """A seed for scikit-learn drawn from ``generator`` (or torch's global RNG), so torch seeding still rules."""
    return int(torch.randint(2**31 - 1, (1,), generator=generator))


def _moons(n: int, generator: torch.Generator | None) -> torch.Tensor:
    # scikit-learn's two interleaving half circles (as in the seed lab), centred at 0.
    points, _ = make_moons(n_samples=n, noise=0.05, random_state=_numpy_seed(generator))
    return torch.from_numpy(points).float() - torch.tensor([0.5, 0.25])


def _circles(n: int, generator: torch.Generator | None) -> torch.Tensor:
    # scikit-learn's two concentric circles, of radius 1 and 0.5.
    points, _ = make_circles(n_samples=n, noise=0.03, factor=0.5, random_state=_numpy_seed(generator))
    return torch.from_numpy(points).float()


def _mixture(n: int, model: str, generator: torch.Generator | None) -> torch.Tensor:
    # Each point picks its component independently, so any n works (the seed lab
    # split n evenly over the modes and silently dropped the remainder).
    means = mixture_means(model)
    component = torch.randint(len(means), (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator)
    return means[component] + _MIXTURE_STD[model] * noise


def sample_data(n: int, model: str, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n`` points from a named 2D data set.

    Args:
        n: number of points, at least 1.
        model: one of :data:`DATASETS`: ``"moons"`` (two half circles),
            ``"circles"`` (two concentric circles), ``"2gmm"`` (two Gaussians at
            (+-1, 0), std 0.3), ``"3gmm"`` (3 Gaussians on the unit circle at
            90, 210 and 330 degrees, std 0.1), ``"radial_gmm"`` (8 Gaussians on
            the unit circle, std 0.1), ``"ring"`` (the same means, std 0.01) or ``"grid"``
            (25 Gaussians, std 0.05).
        generator: optional seeded ``torch.Generator``; without one the global
            torch RNG is used.

    Returns:
        ``(n, 2)`` float32 tensor. Coordinates lie in about [-1.5, 1.5] for
        every data set except ``grid`` (about [-4.2, 4.2]).

    Raises:
        ValueError: for an unknown ``model`` or an ``n`` that is not a
            positive integer.
    """
    _check_arguments(n, model)
    if model == "moons":
        points = _moons(n, generator)
    elif model == "circles":
        points = _circles(n, generator)
    else:
        points = _mixture(n, model, generator)
    return points.to(torch.float32)
