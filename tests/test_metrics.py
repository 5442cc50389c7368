"""coursepkg.toy2d.mmd.mmd2 against its definition."""

import pytest
import torch

from coursepkg.toy2d.mmd import mmd2


def _by_definition(x, y, bandwidth):
    def k(a, b):
        return sum(torch.exp(-((ai - bj) ** 2).sum() / (2 * bandwidth**2)).item() for ai in a for bj in b) / (
            len(a) * len(b)
        )

    return k(x, x) + k(y, y) - 2 * k(x, y)


def test_matches_the_definition_over_all_pairs():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 2, generator=g), torch.randn(9, 2, generator=g) + 1
    assert mmd2(x, y, bandwidth=0.8) == pytest.approx(_by_definition(x.double(), y.double(), 0.8), rel=1e-9)


def test_zero_for_identical_samples_symmetric_and_growing_with_distance():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 3, generator=g)
    assert mmd2(x, x) == pytest.approx(0.0, abs=1e-12)
    y = torch.randn(150, 3, generator=g)
    assert mmd2(x, y) == pytest.approx(mmd2(y, x))
    distances = [mmd2(x, y + shift) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert distances == sorted(distances)
    assert distances[0] < 0.02 < distances[-1]


def test_bad_inputs_raise():
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="non-empty"):
        mmd2(x, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="non-empty"):
        mmd2(x, torch.zeros(0, 2))
    with pytest.raises(ValueError, match="bandwidth must be positive"):
        mmd2(x, x, bandwidth=0.0)
