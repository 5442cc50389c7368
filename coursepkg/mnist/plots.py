"""Figures of digit images: sample grids, interpolations and class histograms.

Every function draws on a new figure (or a given axis), titles it, and returns
the figure, like :mod:`coursepkg.toy2d.plots` does for 2D data.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid

__all__ = ["plot_class_histogram", "plot_digit_grid", "plot_epoch_losses"]


def plot_digit_grid(
    images: torch.Tensor,
    *,
    ncols: int = 8,
    title: str,
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
    size: float = 0.9,
) -> Figure:
    """Show images in a grid, white digits on black as in MNIST.

    Args:
        images: ``(n, 784)`` or ``(n, 1, 28, 28)`` float in ``[-1, 1]``, laid out row by row.
        ncols: images per row.
        title: figure title.
        row_labels: optional label for each row, written left of it.
        col_labels: optional label for each column, written above it.
        size: inches per image.

    Returns:
        The figure.
    """
    images = images.detach().float().reshape(-1, 1, 28, 28).cpu()
    if not len(images):
        raise ValueError("plot_digit_grid needs at least one image.")
    nrows = -(-len(images) // ncols)
    grid = make_grid((images + 1) / 2, nrow=ncols, padding=2, pad_value=0.35).clamp(0, 1)
    fig, ax = plt.subplots(figsize=(size * ncols + (0.8 if row_labels else 0.2), size * nrows + 0.6))
    ax.imshow(grid[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    step = 30  # 28 pixels and 2 of padding
    ax.set_xticks([2 + 14 + step * i for i in range(ncols)] if col_labels else [])
    ax.set_yticks([2 + 14 + step * i for i in range(nrows)] if row_labels else [])
    if col_labels:
        ax.set_xticklabels(col_labels)
        ax.xaxis.tick_top()
    if row_labels:
        ax.set_yticklabels(row_labels)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_class_histogram(histograms: dict[str, torch.Tensor | np.ndarray], *, title: str) -> Figure:
    """Bar chart of the fraction of samples per digit, one group of bars per source.

    Args:
        histograms: source name -> ``(10,)`` fractions summing to 1.
        title: figure title.
    """
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    width = 0.8 / max(len(histograms), 1)
    digits = np.arange(10)
    for index, (name, histogram) in enumerate(histograms.items()):
        ax.bar(digits + (index - (len(histograms) - 1) / 2) * width, np.asarray(histogram) * 100, width, label=name)
    ax.axhline(10, color="black", linewidth=0.8, linestyle="--", label="uniform (10 %)")
    ax.set(title=title, xlabel="digit predicted by LeNet-5", ylabel="share of samples (%)", xticks=digits)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(histograms) + 1, frameon=False)
    fig.tight_layout()
    return fig


def plot_epoch_losses(d_loss: list[float], g_loss: list[float], *, title: str) -> Figure:
    """Plot per-epoch mean losses of the discriminator and the generator."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    epochs = np.arange(1, len(d_loss) + 1)
    ax.plot(epochs, d_loss, label="discriminator $L_D$")
    ax.plot(epochs, g_loss, label="generator $L_G$")
    ax.axhline(2 * np.log(2), color="gray", linewidth=0.8, linestyle=":", label="$L_D = 2\\log 2$ (D guesses)")
    ax.set(title=title, xlabel="epoch", ylabel="mean loss over the epoch")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    fig.tight_layout()
    return fig
