"""Figures of LSI: scored digits, heatmaps of archives, grids of their elites, the benchmark.

Used by the LSI chapter and lab. Every function draws what it is given or reads
from an archive; the searches and scores are in :mod:`coursepkg.lsi.search`,
:mod:`coursepkg.lsi.measures` and :mod:`coursepkg.lsi.archive`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from ribs.archives import GridArchive
from torch import nn

from coursepkg.lsi.archive import elites_at, measure_quantiles
from coursepkg.lsi.measures import decode
from coursepkg.mnist.plots import plot_digit_grid

__all__ = [
    "plot_benchmark_coverage",
    "plot_cells_per_digit",
    "plot_digit_styles",
    "plot_elites",
    "plot_heatmap",
    "plot_heatmaps",
    "plot_scored_digits",
]

#: The measures' names, in the order of an archive's columns.
MEASURE_NAMES = ("boldness", "lightness")


def plot_scored_digits(
    images: torch.Tensor,
    *,
    boldness: Sequence[float],
    lightness: Sequence[float],
    probability: Sequence[float],
    digit: int,
    title: str,
    ncols: int = 3,
) -> Figure:
    """Digits in a grid, each titled with its two measures and LeNet-5's probability of ``digit``.

    Args:
        images: ``(n, 784)`` or ``(n, 1, 28, 28)`` float in ``[0, 1]``.
        boldness: ``(n,)`` boldness of each image.
        lightness: ``(n,)`` lightness of each image.
        probability: ``(n,)`` LeNet-5's probability of ``digit`` for each image.
        digit: the digit ``probability`` is about.
        title: figure title.
        ncols: images per row (few, so that the titles stay legible on a phone).

    Returns:
        The figure.
    """
    images = torch.as_tensor(images).reshape(-1, 28, 28).numpy()
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 2.1 * nrows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, image, bold, light, p in zip(axes.flat, images, boldness, lightness, probability):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"b {bold:.0f}, ℓ {light:.2f}\nP({digit}) {p:.2f}", fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


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
    marks: Mapping[str, float] | None = None,
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
        marks: name -> boldness: a dashed vertical line at each, named in a legend.

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
        ax.set_xlim(x_edges[0], _fitted_boldness(archive))
    ax.set(title=title, xlabel="boldness (pixels >= 0.5)", ylabel="lightness (mean of those pixels)")
    for (name, boldness), style in zip((marks or {}).items(), ("--", ":", "-.")):
        ax.axvline(boldness, color="black", linestyle=style, linewidth=1, label=name)
    if marks:
        ax.legend(loc="lower right", fontsize=8)
    return ax.figure


def _fitted_boldness(archive: GridArchive) -> float:
    """Where a fitted boldness axis ends: a little after the boldest occupied cell."""
    x_edges = archive.boundaries[0]
    boldest = x_edges[archive.int_to_grid_index(archive.data("index"))[:, 0].max() + 1]
    return min(x_edges[-1], boldest + 0.05 * (x_edges[-1] - x_edges[0]))


def plot_heatmaps(archives: Mapping[str, GridArchive], *, title: str, **heatmap: Any) -> Figure:
    """Heatmaps of several 2D archives of the same cells, one above the other, on one boldness axis.

    Args:
        archives: each panel's title -> its archive (at least one non-empty).
        title: figure title.
        heatmap: what every panel shares: ``vmin``, ``vmax``, ``cmap``,
            ``colorbar_label``, ``marks`` of :func:`plot_heatmap`.

    Returns:
        The figure; every panel's boldness axis ends after the boldest elite of them all.
    """
    fig, axes = plt.subplots(len(archives), 1, figsize=(6, 3.6 * len(archives)), sharex=True, squeeze=False)
    for ax, (name, archive) in zip(axes[:, 0], archives.items()):
        plot_heatmap(archive, title=name, ax=ax, fit=False, **heatmap)
    left = next(iter(archives.values())).lower_bounds[0]
    axes[0, 0].set_xlim(left, max(_fitted_boldness(archive) for archive in archives.values() if len(archive)))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


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


def plot_digit_styles(
    slices: Sequence[GridArchive], generator: nn.Module, *, measure: int, count: int = 8, title: str
) -> Figure:
    """Each digit's elites along one measure, the other measure held at the digit's median.

    Args:
        slices: ten 2D archives, digit 0 to 9 (:func:`~coursepkg.lsi.archive.digit_slice`), none empty.
        generator: decodes the elites.
        measure: 0 to step through boldness, 1 for lightness.
        count: images per digit, at evenly spaced quantiles (5 % to 95 %) of the digit's elites.
        title: figure title.

    Returns:
        The figure: a row per digit, the measure rising to the right.
    """
    images = []
    for archive in slices:
        points = np.tile(np.median(archive.data("measures"), axis=0), (count, 1))
        points[:, measure] = measure_quantiles(archive, measure, count)
        images.append(decode(elites_at(archive, points)[1], generator))
    percentiles = [f"{p:.0f}%" for p in np.linspace(5, 95, count)]
    fig = plot_digit_grid(
        torch.cat(images) * 2 - 1,
        ncols=count,
        title=title,
        col_labels=percentiles,
        row_labels=[str(digit) for digit in range(len(slices))],
    )
    ax = fig.axes[0]
    ax.set(xlabel=f"percentile of the digit's {MEASURE_NAMES[measure]}", ylabel="digit (LeNet-5)")
    ax.xaxis.set_label_position("top")
    fig.tight_layout()
    return fig


def plot_cells_per_digit(counts: Sequence[int], *, title: str, capacity: int | None = None) -> Figure:
    """Bar chart of the cells each digit fills in an archive of all ten digits.

    Args:
        counts: ``(10,)`` occupied cells of digits 0 to 9
            (:func:`~coursepkg.lsi.archive.cells_per_digit`).
        title: figure title.
        capacity: the cells each digit has, named in the axis label if given.

    Returns:
        The figure, each bar labelled with its count.
    """
    counts = np.asarray(counts)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bars = ax.bar(np.arange(len(counts)), counts, color="tab:blue")
    ax.bar_label(bars, fmt="{:,.0f}", fontsize=8)
    ylabel = "cells filled" + (f" (of {capacity:,})" if capacity else "")
    ax.set(title=title, xlabel="digit (LeNet-5's prediction)", ylabel=ylabel, xticks=np.arange(len(counts)))
    ax.set_ylim(0, 1.15 * max(counts.max(), 1))
    fig.tight_layout()
    return fig


def plot_benchmark_coverage(results: dict, *, title: str, this_run: tuple[int, int] | None = None) -> Figure:
    """Cells filled against evaluations for each run of the LSI benchmark, with the tutorial's figure.

    Args:
        results: what ``python -m coursepkg benchmark lsi`` saved
            (:func:`coursepkg.lsi.benchmark.run_benchmark`).
        title: axes title.
        this_run: ``(evaluations, cells)`` of a shorter run to mark, e.g. the chapter's own.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for run in results["runs"]:
        millions = [row["evaluations"] / 1e6 for row in run["history"]]
        ax.plot(millions, [row["cells"] for row in run["history"]], label=f"{run['name']}, {run['seconds']:.0f} s")
    seed = results["seed_figures"]
    ax.scatter(
        [seed["evaluations"] / 1e6],
        [seed["cells"]],
        marker="*",
        s=150,
        color="black",
        zorder=3,
        label=f"tutorial on a GPU, {seed['seconds_on_gpu']} s",
    )
    ax.axhline(seed["cells"], color="black", linewidth=0.6, linestyle=":")
    if this_run is not None:
        ax.scatter([this_run[0] / 1e6], [this_run[1]], color="crimson", zorder=3, label="this chapter's run")
    ax.set(title=title, ylim=(0, None), xlabel="evaluations (millions)", ylabel="cells filled")
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    return fig
