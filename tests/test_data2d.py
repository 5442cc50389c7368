"""coursepkg.toy2d.data: exact sizes, seeding, clear errors, and the mixtures' geometry."""

import pytest
import torch

from coursepkg.toy2d.data import DATASETS, mixture_means, mixture_std, sample_data


@pytest.mark.parametrize("model", DATASETS)
@pytest.mark.parametrize("n", [1, 7, 1001])
def test_exactly_n_float32_points(model, n):
    points = sample_data(n, model, generator=torch.Generator().manual_seed(0))
    assert points.shape == (n, 2)
    assert points.dtype == torch.float32
    assert torch.isfinite(points).all()


@pytest.mark.parametrize("model", DATASETS)
def test_a_seeded_generator_reproduces_the_points(model):
    first = sample_data(100, model, generator=torch.Generator().manual_seed(3))
    again = sample_data(100, model, generator=torch.Generator().manual_seed(3))
    other = sample_data(100, model, generator=torch.Generator().manual_seed(4))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_the_global_rng_is_used_without_a_generator():
    torch.manual_seed(5)
    first = sample_data(10, "moons")
    torch.manual_seed(5)
    assert torch.equal(first, sample_data(10, "moons"))


def test_unknown_name_and_bad_sizes_raise_clear_errors():
    with pytest.raises(ValueError, match=r"Unknown data set 'spiral'; choose one of \['moons'"):
        sample_data(10, "spiral")
    for n in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            sample_data(n, "ring")
    with pytest.raises(ValueError, match="not a Gaussian-mixture data set"):
        mixture_means("moons")


@pytest.mark.parametrize("model, modes", [("2gmm", 2), ("radial_gmm", 8), ("ring", 8), ("grid", 25)])
def test_mixtures_spread_points_evenly_around_their_modes(model, modes):
    n = 20_000
    points = sample_data(n, model, generator=torch.Generator().manual_seed(0))
    means = mixture_means(model)
    assert means.shape == (modes, 2)
    nearest = torch.cdist(points, means).argmin(dim=1)
    counts = torch.bincount(nearest, minlength=modes).double()
    # Binomial counts: within 5 standard deviations of n / modes.
    expected = n / modes
    assert ((counts - expected).abs() < 5 * (expected * (1 - 1 / modes)) ** 0.5).all()
    residual = points - means[nearest]
    assert residual.std(dim=0) == pytest.approx([mixture_std(model)] * 2, rel=0.05)


def test_benchmark_mixtures_follow_pacgan():
    ring = mixture_means("ring")
    assert ring.norm(dim=1) == pytest.approx([1.0] * 8)
    assert mixture_std("ring") == 0.01
    grid = mixture_means("grid")
    assert sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert mixture_std("grid") == 0.05


def test_circles_lie_on_two_radii_and_moons_on_two_arcs():
    circles = sample_data(4000, "circles", generator=torch.Generator().manual_seed(0))
    radius = circles.norm(dim=1)
    inner, outer = radius[radius < 0.75], radius[radius >= 0.75]
    assert inner.mean() == pytest.approx(0.5, abs=0.01)
    assert outer.mean() == pytest.approx(1.0, abs=0.01)
    assert len(inner) / len(radius) == pytest.approx(0.5, abs=0.05)
    moons = sample_data(4000, "moons", generator=torch.Generator().manual_seed(0))
    assert moons.mean(dim=0).abs().max() < 0.05  # centred
    assert (moons[:, 0].max() - moons[:, 0].min()) == pytest.approx(3.0, abs=0.3)
