"""Divergences behind the GAN objective, for discrete and 1D continuous distributions.

For a fixed generator the best discriminator is ``D* = p_data / (p_data + p_G)``,
and the value of the game at ``D*`` is ``2 JSD(p_data || p_G) - log 4``
(Goodfellow et al., 2014, Proposition 1 and Theorem 1). This module computes
every piece of that statement so the chapter can check it numerically.

Discrete distributions are 1D tensors of probabilities (non-negative, summing
to 1); all results use the natural logarithm and the conventions
``0 log(0 / q) = 0`` and ``p log(p / 0) = +inf`` for ``p > 0``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = [
    "gaussian_pdf",
    "js_divergence",
    "js_divergence_monte_carlo",
    "js_divergence_quadrature",
    "kl_divergence",
    "minimax_identity",
    "optimal_discriminator",
    "value_function",
]

Density = Callable[[torch.Tensor], torch.Tensor]


def _distribution(p: torch.Tensor, name: str, *, atol: float = 1e-6) -> torch.Tensor:
    """Validate a discrete distribution and return it as a float64 tensor."""
    p = torch.as_tensor(p, dtype=torch.float64)
    if p.ndim != 1 or p.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1D tensor of probabilities, got shape {tuple(p.shape)}.")
    if not torch.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"{name} has negative or non-finite entries; probabilities lie in [0, 1].")
    if abs(p.sum().item() - 1) > atol:
        raise ValueError(f"{name} sums to {p.sum().item():.6g}, not 1: normalise it (p / p.sum()).")
    return p


def _pair(p: torch.Tensor, q: torch.Tensor, names: tuple[str, str] = ("p", "q")) -> tuple[torch.Tensor, torch.Tensor]:
    p, q = _distribution(p, names[0]), _distribution(q, names[1])
    if p.shape != q.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}."
        )
    return p, q


def _xlogy_ratio(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Element-wise ``p log(p / q)`` with ``0 log(0 / q) = 0`` and ``p log(p / 0) = inf``."""
    terms = torch.where(p > 0, p * (torch.log(p) - torch.log(q)), torch.zeros_like(p))
    return torch.where((p > 0) & (q == 0), torch.full_like(p, math.inf), terms)


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """Kullback-Leibler divergence ``KL(p || q) = sum_i p_i log(p_i / q_i)``.

    Args:
        p: ``(k,)`` probabilities.
        q: ``(k,)`` probabilities.

    Returns:
        A float in ``[0, inf]``; ``inf`` when ``q`` is 0 where ``p`` is not.

    Raises:
        ValueError: if ``p`` or ``q`` is not a distribution, or their shapes differ.
    """
    p, q = _pair(p, q)
    return _xlogy_ratio(p, q).sum().item()


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """Jensen-Shannon divergence ``(KL(p || m) + KL(q || m)) / 2`` with ``m = (p + q) / 2``.

    Returns:
        A float in ``[0, log 2]``: 0 exactly when ``p == q``, ``log 2`` when
        their supports are disjoint.

    Raises:
        ValueError: as :func:`kl_divergence`.
    """
    p, q = _pair(p, q)
    m = (p + q) / 2
    return 0.5 * (_xlogy_ratio(p, m).sum() + _xlogy_ratio(q, m).sum()).item()


def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """The discriminator that maximises ``V(D, G)``: ``p_data / (p_data + p_g)``.

    Where both probabilities are 0 any value maximises ``V``; this returns 1/2.

    Returns:
        ``(k,)`` float64 tensor in ``[0, 1]``.
    """
    p_data, p_g = _pair(p_data, p_g, ("p_data", "p_g"))
    total = p_data + p_g
    return torch.where(total > 0, p_data / total.clamp_min(1e-300), torch.full_like(total, 0.5))


def value_function(d: torch.Tensor, p_data: torch.Tensor, p_g: torch.Tensor) -> float:
    """The GAN value ``V(D, G) = sum_i p_data,i log d_i + p_g,i log(1 - d_i)``.

    Terms with zero probability are 0 whatever ``d`` is (``0 log 0 = 0``).

    Args:
        d: ``(k,)`` discriminator outputs in ``[0, 1]``.
        p_data: ``(k,)`` data probabilities.
        p_g: ``(k,)`` generator probabilities.

    Returns:
        A float in ``[-inf, 0]``.

    Raises:
        ValueError: for distributions that are not, or ``d`` outside ``[0, 1]``
            or of another shape.
    """
    p_data, p_g = _pair(p_data, p_g, ("p_data", "p_g"))
    d = torch.as_tensor(d, dtype=torch.float64)
    if d.shape != p_data.shape or not ((d >= 0) & (d <= 1)).all():
        raise ValueError(f"d must be a {tuple(p_data.shape)} tensor of values in [0, 1].")
    real = torch.where(p_data > 0, p_data * torch.log(d), torch.zeros_like(d))
    fake = torch.where(p_g > 0, p_g * torch.log1p(-d), torch.zeros_like(d))
    return (real + fake).sum().item()


def minimax_identity(p_data: torch.Tensor, p_g: torch.Tensor) -> tuple[float, float]:
    """Both sides of ``max_D V(D, G) = 2 JSD(p_data || p_G) - log 4``.

    Returns:
        ``(V(D*, G), 2 JSD - log 4)``, equal up to rounding.
    """
    left = value_function(optimal_discriminator(p_data, p_g), p_data, p_g)
    return left, 2 * js_divergence(p_data, p_g) - math.log(4)


def gaussian_pdf(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """Density of ``N(mean, std^2)`` at the points ``x`` (any shape, float64 out)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    return torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def js_divergence_quadrature(p: Density, q: Density, *, low: float, high: float, n: int = 200_001) -> float:
    """JSD of two 1D densities by the trapezoidal rule on ``n`` points of ``[low, high]``.

    The interval must hold essentially all the mass of both densities.
    """
    x = torch.linspace(low, high, n, dtype=torch.float64)
    px, qx = p(x), q(x)
    m = (px + qx) / 2
    integrand = 0.5 * (_xlogy_ratio(px, m) + _xlogy_ratio(qx, m))
    # Deep in the tails a subnormal density can halve to m = 0 while p > 0; the
    # true integrand there is about 1e-308, not the infinity the ratio gives.
    integrand = torch.where(m > 0, integrand, torch.zeros_like(integrand))
    return torch.trapezoid(integrand, x).item()


def js_divergence_monte_carlo(
    p: Density, q: Density, p_samples: torch.Tensor, q_samples: torch.Tensor
) -> tuple[float, float]:
    """JSD of two 1D densities from samples of each: ``E_p[f_p] / 2 + E_q[f_q] / 2``.

    With ``f_p = log(2p / (p + q))`` under ``p`` and ``f_q = log(2q / (p + q))``
    under ``q``.

    Returns:
        ``(estimate, standard error)``.
    """

    def log_ratio(own: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return math.log(2) + torch.log(own) - torch.log(own + other)

    f_p = log_ratio(p(p_samples), q(p_samples))
    f_q = log_ratio(q(q_samples), p(q_samples))
    estimate = 0.5 * (f_p.mean() + f_q.mean())
    error = 0.5 * torch.sqrt(f_p.var() / len(f_p) + f_q.var() / len(f_q))
    return estimate.item(), error.item()
