"""coursepkg.toy2d.modes.mode_coverage on synthetic samples with known answers."""

import math

import pytest
import torch

from coursepkg.toy2d.data import mixture_means, mixture_std, sample_data
from coursepkg.toy2d.modes import mode_coverage

RING = mixture_means("ring")
STD = mixture_std("ring")


def test_samples_on_every_mode_cover_all_of_them_evenly():
    result = mode_coverage(RING.repeat(10, 1), RING, STD)
    assert result.modes_captured == 8
    assert result.high_quality == 1.0
    assert result.reverse_kl == pytest.approx(0.0, abs=1e-12)
    assert result.counts.tolist() == [10] * 8


def test_a_collapsed_generator_captures_one_mode_with_reverse_kl_log_k():
    result = mode_coverage(RING[3].repeat(50, 1), RING, STD)
    assert result.modes_captured == 1
    assert result.high_quality == 1.0
    assert result.reverse_kl == pytest.approx(math.log(8))


def test_reverse_kl_of_an_uneven_split_matches_the_formula():
    means = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    samples = torch.cat([means[0].repeat(3, 1), means[1].repeat(1, 1)])
    expected = 0.75 * math.log(0.75 * 2) + 0.25 * math.log(0.25 * 2)
    assert mode_coverage(samples, means, 1.0).reverse_kl == pytest.approx(expected)


def test_the_three_std_boundary_and_far_samples():
    # Along a radius, 2.9 and 3.1 standard deviations from mode 0.
    direction = RING[0] / RING[0].norm()
    inside, outside = RING[0] + 2.9 * STD * direction, RING[0] + 3.1 * STD * direction
    result = mode_coverage(torch.stack([inside, outside, torch.zeros(2), RING[1]]), RING, STD)
    assert result.high_quality == 0.5
    assert result.counts.tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert mode_coverage(torch.zeros(5, 2), RING, STD).reverse_kl == math.inf


@pytest.mark.parametrize("model", ["ring", "grid"])
def test_real_data_scores_like_the_data_it_is(model):
    data = sample_data(2500, model, generator=torch.Generator().manual_seed(0))
    result = mode_coverage(data, mixture_means(model), mixture_std(model))
    modes = len(mixture_means(model))
    assert result.modes_captured == modes
    # A 2D Gaussian puts 1 - exp(-9/2) = 98.9 % of its mass within 3 std.
    assert result.high_quality == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert result.reverse_kl < 0.02


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="non-empty"):
        mode_coverage(torch.zeros(3, 3), RING, STD)
    with pytest.raises(ValueError, match="std and threshold must be positive"):
        mode_coverage(RING, RING, 0.0)


def test_the_threshold_is_strict_as_in_pacgans_code():
    # Distances of exactly 3 std (3.0 here) do not count; a hair inside does.
    means = torch.tensor([[0.0, 0.0], [100.0, 0.0]])
    at, inside = torch.tensor([[3.0, 0.0]]), torch.tensor([[2.999, 0.0]])
    assert mode_coverage(at, means, 1.0).high_quality == 0.0
    assert mode_coverage(inside, means, 1.0).high_quality == 1.0
    assert mode_coverage(at, means, 1.0, threshold=3.001).modes_captured == 1


def test_samples_off_every_mode_capture_nothing():
    result = mode_coverage(torch.full((100, 2), 0.5), RING, STD)  # inside the ring, far from every mode
    assert (result.modes_captured, result.high_quality, result.reverse_kl) == (0, 0.0, math.inf)
    assert result.counts.tolist() == [0] * 8


def test_reverse_kl_uses_only_high_quality_samples_like_pacgan():
    # PacGAN's MetricLogger: q = high-quality counts per mode / their sum, scored
    # against the uniform distribution, so KL = log k - entropy(q).
    far = torch.full((500, 2), 0.5)  # low quality: changes high_quality, not q
    on_modes = torch.cat([RING[0].repeat(6, 1), RING[1].repeat(2, 1)])
    result = mode_coverage(torch.cat([on_modes, far]), RING, STD)
    q = torch.tensor([6, 2, 0, 0, 0, 0, 0, 0], dtype=torch.float64) / 8
    entropy = -(q[q > 0] * q[q > 0].log()).sum().item()
    assert result.reverse_kl == pytest.approx(math.log(8) - entropy)
    assert result.high_quality == pytest.approx(8 / 508)
