"""Faster max pooling for LeNet-5 on a CPU, with identical outputs.

Used by the LSI chapter and its benchmark (:mod:`coursepkg.lsi.benchmark`), where
LeNet-5 scores millions of generated digits.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["MaxPool2x2", "fast_pooling"]


class MaxPool2x2(nn.Module):
    """``nn.MaxPool2d(2)`` as element-wise maxima of strided views: the same values, faster on a CPU.

    PyTorch's CPU max-pooling kernel visits each small window in turn (and keeps
    indices for a backward pass); on LeNet-5's ``(n, 6, 24, 24)`` maps it costs
    more than both convolutions. Two element-wise maxima, first of row pairs then
    of column pairs, are vectorised. Odd trailing rows and columns are dropped, as
    ``nn.MaxPool2d(2)`` does.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[..., : x.shape[-2] // 2 * 2, : x.shape[-1] // 2 * 2]
        rows = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])
        return torch.maximum(rows[..., 0::2], rows[..., 1::2])


def fast_pooling(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose 2x2, stride-2 max-pooling layers are :class:`MaxPool2x2`.

    Args:
        model: e.g. LeNet-5; the model itself is left unchanged.

    Returns:
        The copy, in the same train/eval mode, with identical outputs.
    """
    fast = copy.deepcopy(model)
    for name, module in list(fast.named_modules()):
        if (
            isinstance(module, nn.MaxPool2d)
            and _pairs(module.kernel_size) == _pairs(module.stride) == (2, 2)
            and _pairs(module.padding) == (0, 0)
            and _pairs(module.dilation) == (1, 1)
            and not module.ceil_mode
            and not module.return_indices
        ):
            parent, _, child = name.rpartition(".")
            setattr(fast.get_submodule(parent), child, MaxPool2x2())
    return fast


def _pairs(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)
