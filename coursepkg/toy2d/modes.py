"""Mode coverage of a Gaussian-mixture data set: the metric of PacGAN and VEEGAN.

Protocol of Lin et al. (2018, PacGAN, section 5.1), after Srivastava et al.
(2017, VEEGAN): draw samples from the generator, assign each to its nearest
mode, call it *high quality* when it lies less than ``threshold`` (3) standard
deviations from that mode, and call a mode *captured* when it receives at least
one high-quality sample. The reverse KL divergence compares the generator's
distribution over the modes with the true one (uniform here),
``KL(q || p) = sum_k q_k log(q_k / p_k)``, with ``q`` the histogram of the
*high-quality* samples over the modes, normalised by their number.

This follows PacGAN's own evaluation code (``MetricLogger`` in
``synthetic_data_experiments/PacGAN/pacgan/extensions.py`` of the authors'
repository): it counts a sample for its nearest mode only when its
standardised distance is below the threshold (strictly), and scores the
normalised counts ``detail_of_coverage / sum`` against the uniform distribution,
so ``KL(q || uniform) = log k - entropy(q)``. Samples far from every mode lower
the high-quality share but not the reverse KL; a generator that piles its
samples on a few modes scores high even if each of its samples is perfect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["ModeCoverage", "mode_coverage"]


@dataclass(frozen=True)
class ModeCoverage:
    """What :func:`mode_coverage` measured.

    Attributes:
        modes_captured: modes with at least one high-quality sample.
        high_quality: fraction of samples closer than the threshold to their nearest mode, in [0, 1].
        reverse_kl: ``KL(q || uniform)`` of the high-quality samples' modes, in
            ``[0, log k]``; ``inf`` when no sample is high quality.
        counts: ``(k,)`` int64, high-quality samples per mode.
    """

    modes_captured: int
    high_quality: float
    reverse_kl: float
    counts: torch.Tensor


def mode_coverage(samples: torch.Tensor, means: torch.Tensor, std: float, *, threshold: float = 3.0) -> ModeCoverage:
    """Measure how a generator's samples cover the modes of an equally weighted mixture.

    Args:
        samples: ``(n, d)`` generated points.
        means: ``(k, d)`` mode centres (for example ``data2d.mixture_means("ring")``).
        std: per-coordinate standard deviation of each mode.
        threshold: a sample counts as high quality when it lies less than
            ``threshold`` standard deviations from its nearest mode (3 in PacGAN).

    Returns:
        A :class:`ModeCoverage`.

    Raises:
        ValueError: for empty inputs, mismatched dimensions or a non-positive
            ``std`` or ``threshold``.
    """
    if samples.ndim != 2 or means.ndim != 2 or samples.shape[1] != means.shape[1] or not len(samples) or not len(means):
        raise ValueError(
            f"samples and means must be non-empty (n, d) and (k, d) tensors; got shapes "
            f"{tuple(samples.shape)} and {tuple(means.shape)}."
        )
    if not (std > 0 and threshold > 0):
        raise ValueError(f"std and threshold must be positive, got {std} and {threshold}.")
    distance, nearest = torch.cdist(samples.double(), means.double()).min(dim=1)
    good = distance < threshold * std  # strict, as in PacGAN's code
    counts = torch.bincount(nearest[good], minlength=len(means))
    total = int(counts.sum())
    if total == 0:
        reverse_kl = math.inf
    else:
        q = counts.double() / total
        present = q > 0
        reverse_kl = float((q[present] * torch.log(q[present] * len(means))).sum())
    return ModeCoverage(
        modes_captured=int((counts > 0).sum()),
        high_quality=float(good.double().mean()),
        reverse_kl=reverse_kl,
        counts=counts,
    )
