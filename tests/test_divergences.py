"""coursepkg.theory.divergences: definitions, properties and the minimax identity."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coursepkg.theory import divergences as dv

LOG2 = math.log(2)


@st.composite
def distributions(draw, size=None):
    """A random discrete distribution, zeros included now and then."""
    k = size or draw(st.integers(1, 8))
    weights = draw(st.lists(st.one_of(st.just(0.0), st.floats(0.01, 10.0)), min_size=k, max_size=k))
    if sum(weights) == 0:
        weights[0] = 1.0
    p = torch.tensor(weights, dtype=torch.float64)
    return p / p.sum()


@st.composite
def pairs(draw):
    k = draw(st.integers(1, 8))
    return draw(distributions(k)), draw(distributions(k))


def test_kl_matches_the_definition_and_its_conventions():
    p, q = torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.25, 0.25, 0.5])
    assert dv.kl_divergence(p, q) == pytest.approx(math.log(2))  # 0 log(0/q) = 0
    assert dv.kl_divergence(q, p) == math.inf  # q > 0 where p = 0
    assert dv.kl_divergence(torch.tensor([0.2, 0.8]), torch.tensor([0.5, 0.5])) == pytest.approx(
        0.2 * math.log(0.4) + 0.8 * math.log(1.6)
    )


@settings(max_examples=200, deadline=None)
@given(pairs())
def test_js_is_symmetric_bounded_and_zero_only_for_equal_distributions(pq):
    p, q = pq
    js = dv.js_divergence(p, q)
    assert js == pytest.approx(dv.js_divergence(q, p), abs=1e-12)
    assert -1e-12 <= js <= LOG2 + 1e-12
    assert dv.js_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    if not torch.allclose(p, q, atol=1e-9):
        assert js > 0


@settings(max_examples=200, deadline=None)
@given(pairs())
def test_the_minimax_identity_holds_on_random_distributions(pq):
    p, q = pq
    left, right = dv.minimax_identity(p, q)
    assert left == pytest.approx(right, abs=1e-9)
    assert left >= -math.log(4) - 1e-9  # the global minimum
    d_star = dv.optimal_discriminator(p, q)
    # D* beats every other discriminator, here a few perturbations of it.
    for shift in (-0.1, 0.05, 0.2):
        other = (d_star + shift).clamp(1e-6, 1 - 1e-6)
        assert dv.value_function(other, p, q) <= left + 1e-9


def test_disjoint_supports_give_log_2_and_equal_ones_give_d_one_half():
    p, q = torch.tensor([0.5, 0.5, 0.0, 0.0]), torch.tensor([0.0, 0.0, 0.3, 0.7])
    assert dv.js_divergence(p, q) == pytest.approx(LOG2)
    assert dv.optimal_discriminator(p, q).tolist() == [1.0, 1.0, 0.0, 0.0]
    assert dv.minimax_identity(p, p) == pytest.approx((-math.log(4), -math.log(4)))
    assert dv.optimal_discriminator(p, p).tolist() == [0.5] * 4
    assert dv.optimal_discriminator(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0])).tolist() == [0.5, 0.5]


@pytest.mark.parametrize(
    "p, message",
    [
        (torch.tensor([0.5, 0.6]), "sums to 1.1"),
        (torch.tensor([1.5, -0.5]), "negative"),
        (torch.tensor([[1.0]]), "1D tensor"),
        (torch.tensor([]), "non-empty"),
    ],
)
def test_inputs_that_are_not_distributions_raise(p, message):
    with pytest.raises(ValueError, match=message):
        dv.kl_divergence(p, torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match=message):
        dv.js_divergence(torch.tensor([0.5, 0.5]), p)


def test_shape_mismatch_and_bad_discriminator_raise():
    with pytest.raises(ValueError, match="same shape"):
        dv.js_divergence(torch.tensor([1.0]), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        dv.value_function(torch.tensor([1.2, 0.5]), torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]))


def test_quadrature_and_monte_carlo_agree_on_gaussians():
    p = lambda x: dv.gaussian_pdf(x, 0.0, 1.0)  # noqa: E731
    q = lambda x: dv.gaussian_pdf(x, 1.5, 0.7)  # noqa: E731
    exact = dv.js_divergence_quadrature(p, q, low=-12, high=12)
    g = torch.Generator().manual_seed(0)
    estimate, error = dv.js_divergence_monte_carlo(
        p,
        q,
        torch.randn(200_000, generator=g, dtype=torch.float64),
        1.5 + 0.7 * torch.randn(200_000, generator=g, dtype=torch.float64),
    )
    assert abs(estimate - exact) < 4 * error
    assert error < 2e-3
    assert dv.js_divergence_quadrature(p, p, low=-12, high=12) == pytest.approx(0.0, abs=1e-12)
    # Far apart, the JSD is log 2 up to the overlap of the tails.
    far = lambda x: dv.gaussian_pdf(x, 40.0, 1.0)  # noqa: E731
    assert dv.js_divergence_quadrature(p, far, low=-12, high=52) == pytest.approx(LOG2, abs=1e-9)


def test_quadrature_survives_densities_that_underflow_in_the_tails():
    p = lambda x: dv.gaussian_pdf(x, 0.0, 1.0)  # noqa: E731
    for theta in (0.4999, 0.5, 0.5001):
        q = lambda x, theta=theta: dv.gaussian_pdf(x, theta, 1.0)  # noqa: E731
        assert math.isfinite(dv.js_divergence_quadrature(p, q, low=-30, high=40))
