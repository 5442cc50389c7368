"""Sample-based measures of how close a model's samples are to the data."""

from __future__ import annotations

import torch

__all__ = ["mmd2"]


def mmd2(x: torch.Tensor, y: torch.Tensor, *, bandwidth: float = 0.5) -> float:
    """Squared maximum mean discrepancy with a Gaussian kernel (biased estimate).

    ``MMD^2 = mean k(x, x') + mean k(y, y') - 2 mean k(x, y)`` with
    ``k(a, b) = exp(-||a - b||^2 / (2 bandwidth^2))``, every mean taken over all
    pairs, the ``i = j`` pairs included (Gretton et al., 2012, eq. 5). It is 0
    when the two samples are identical and grows as the samples move apart.

    Args:
        x: ``(n, d)`` float tensor, the first sample.
        y: ``(m, d)`` float tensor, the second sample.
        bandwidth: kernel width ``sigma > 0``, in the units of the data.

    Returns:
        The estimate as a Python float, at least 0 (up to rounding).

    Raises:
        ValueError: for samples that are not 2D, disagree in ``d`` or are empty,
            or a bandwidth that is not positive.
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or len(x) == 0 or len(y) == 0:
        raise ValueError(
            f"x and y must be non-empty (n, d) and (m, d) tensors; got shapes {tuple(x.shape)} and {tuple(y.shape)}."
        )
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}.")
    x, y = x.double(), y.double()

    def kernel_mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.exp(-torch.cdist(a, b).square() / (2 * bandwidth**2)).mean()

    return (kernel_mean(x, x) + kernel_mean(y, y) - 2 * kernel_mean(x, y)).item()
