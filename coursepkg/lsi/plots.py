"""Figures of LSI archives: heatmaps of the cells and grids of their elites' digits.

Used by the LSI chapter and lab.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from ribs.archives import GridArchive
from torch import nn

from coursepkg.lsi.archive import elites_at
from coursepkg.lsi.measures import decode
from coursepkg.mnist.plots import plot_digit_grid

__all__ = ["plot_elites", "plot_heatmap"]


def plot_heatmap(
    archive: GridArchive,
    *,
    title: str,
    colorbar_label: str = "objective",
    ax: plt.Axes | None = None,
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "magma",
    fit: bool = True,
) -> Figure:
    """Heatmap of a 2D archive: each occupied cell coloured by its elite's objective.

    Args:
        archive: a 2D archive (boldness x lightness); empty cells stay white.
        title: axes title.
        colorbar_label: what the colour means.
        ax: draw into these axes (a new figure by default).
        vmin, vmax: the colour scale.
        cmap: matplotlib colour map.
        fit: end the boldness axis a little after the boldest occupied cell (the
            generator's digits rarely have more than a few hundred pixels of ink);
            ``False`` shows the whole range.

    Returns:
        The figure.
    """
    if archive.measure_dim != 2:
        raise ValueError(f"plot_heatmap draws 2D archives, got {archive.measure_dim}D (see digit_slice).")
    values = np.full(archive.cells, np.nan)
    index, objective = archive.data(["index", "objective"], return_type="tuple")
    values[index] = objective
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.2))
    x_edges, y_edges = archive.boundaries
    mesh = ax.pcolormesh(
        x_edges, y_edges, values.reshape(archive.dims).T, cmap=cmap, vmin=vmin, vmax=vmax, rasterized=True
    )
    ax.figure.colorbar(mesh, ax=ax, label=colorbar_label)
    if fit and len(index):
        boldest = x_edges[archive.int_to_grid_index(index)[:, 0].max() + 1]
        ax.set_xlim(x_edges[0], min(x_edges[-1], boldest + 0.05 * (x_edges[-1] - x_edges[0])))
    ax.set(title=title, xlabel="boldness (pixels >= 0.5)", ylabel="lightness (mean of those pixels)")
    return ax.figure


def plot_elites(
    archive: GridArchive,
    generator: nn.Module,
    *,
    boldness_values: Sequence[float],
    lightness_values: Sequence[float],
    title: str,
) -> Figure:
    """Decoded elites on a grid of measures: boldness left to right, lightness bottom to top.

    Args:
        archive: a 2D archive of latent vectors.
        generator: decodes them.
        boldness_values: the columns' boldness.
        lightness_values: the rows' lightness (drawn highest first).
        title: figure title.

    Returns:
        The figure; each image is the elite of the cell at (boldness, lightness),
        or of the nearest occupied cell (see :func:`elites_at`).
    """
    rows = np.sort(np.asarray(lightness_values, dtype=float))[::-1]
    cols = np.asarray(boldness_values, dtype=float)
    points = np.stack(np.meshgrid(cols, rows), axis=-1).reshape(-1, 2)
    _, solutions = elites_at(archive, points)
    images = decode(solutions, generator) * 2 - 1
    fig = plot_digit_grid(
        images,
        ncols=len(cols),
        title=title,
        row_labels=[f"{v:.2f}" for v in rows],
        col_labels=[f"{v:.0f}" for v in cols],
    )
    ax = fig.axes[0]
    ax.set(xlabel="boldness", ylabel="lightness")
    ax.xaxis.set_label_position("top")
    fig.tight_layout()
    return fig
