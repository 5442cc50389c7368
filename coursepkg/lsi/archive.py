"""Reading an LSI archive: elites by measures, one digit's slice, re-scoring by the judges.

Used by the LSI chapter and lab to look into the archives that
:func:`coursepkg.lsi.search.run_lsi` fills. Nothing here draws: the figures are
in :mod:`coursepkg.lsi.plots`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from ribs.archives import GridArchive
from torch import nn

from coursepkg.lsi.measures import check_digit, decode, digit_probability, realness

__all__ = [
    "cells_per_digit",
    "digit_slice",
    "discriminator_archive",
    "elites_at",
    "judge_elites",
    "measure_quantiles",
]


def _archive_like(archive: GridArchive) -> GridArchive:
    """An empty archive with the same cells, measure ranges and solution size as ``archive``."""
    ranges = list(zip(archive.lower_bounds, archive.upper_bounds))
    return GridArchive(
        solution_dim=archive.solution_dim, dims=archive.dims, ranges=ranges, solution_dtype=archive.dtypes["solution"]
    )


def _decoded(solutions: np.ndarray, generator: nn.Module, batch_size: int) -> Iterator[torch.Tensor]:
    """The images of ``(n, latent)`` ``solutions``, ``(batch_size, 784)`` in ``[0, 1]`` at a time."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    for start in range(0, len(solutions), batch_size):
        yield decode(solutions[start : start + batch_size], generator)


def _joined(scores: list[torch.Tensor]) -> np.ndarray:
    """The batches' ``(batch,)`` scores as one ``(n,)`` array (empty for no batch)."""
    return torch.cat(scores).numpy() if scores else np.zeros(0, dtype=np.float32)


def discriminator_archive(
    archive: GridArchive, generator: nn.Module, discriminator: nn.Module, *, batch_size: int = 4096
) -> GridArchive:
    """Re-score every elite by the discriminator, into an archive of the same cells.

    Args:
        archive: a 2D or 3D archive of latent vectors, e.g. ``run_lsi(...).archive``.
        generator: the generator that decodes them.
        discriminator: the GAN's discriminator (logits of ``[-1, 1]`` images).
        batch_size: images decoded and scored at once.

    Returns:
        A new :class:`~ribs.archives.GridArchive` with the same cells, holding each
        elite at its own measures with objective :func:`realness` in ``[0, 1]``:
        exactly the cells of ``archive`` are occupied.
    """
    elites = archive.data(["solution", "measures"])
    with torch.inference_mode():
        scores = _joined([realness(discriminator, x) for x in _decoded(elites["solution"], generator, batch_size)])
    rescored = _archive_like(archive)
    if len(scores):
        rescored.add(elites["solution"], scores, elites["measures"])
    return rescored


def judge_elites(
    archive: GridArchive,
    generator: nn.Module,
    classifier: nn.Module,
    discriminator: nn.Module,
    *,
    digit: int,
    batch_size: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """Both judges' verdicts on every elite: the classifier's and the discriminator's.

    Args:
        archive: an archive of ``n`` latent vectors.
        generator: the generator that decodes them.
        classifier: LeNet-5, returning log-probabilities.
        discriminator: the GAN's discriminator (logits of ``[-1, 1]`` images).
        digit: the class whose probability the classifier gives, 0 to 9.
        batch_size: images decoded and scored at once.

    Returns:
        ``(probability, realness)``, two ``(n,)`` arrays in ``[0, 1]`` in the order of
        ``archive.data()``: :func:`~coursepkg.lsi.measures.digit_probability` of
        ``digit`` and :func:`~coursepkg.lsi.measures.realness` of each elite's image.
    """
    check_digit(digit)
    probability, real = [], []
    with torch.inference_mode():
        for images in _decoded(archive.data("solution"), generator, batch_size):
            probability.append(digit_probability(classifier, images, digit))
            real.append(realness(discriminator, images))
    return _joined(probability), _joined(real)


def measure_quantiles(
    archive: GridArchive, measure: int, count: int, *, low: float = 0.05, high: float = 0.95
) -> np.ndarray:
    """Evenly spaced quantiles of one measure over the archive's elites: where to look in it.

    Args:
        archive: a non-empty archive.
        measure: the column of the measures, e.g. 0 for boldness and 1 for lightness.
        count: how many values.
        low, high: the first and last quantile.

    Returns:
        ``(count,)`` values of the measure, rising, from its ``low`` to its ``high`` quantile.
    """
    if archive.empty:
        raise ValueError("The archive is empty: its measures have no quantiles.")
    values = archive.data("measures")[:, measure]
    return np.quantile(values, np.linspace(low, high, count))


def cells_per_digit(archive: GridArchive) -> np.ndarray:
    """How many cells of a 3D archive of :func:`~coursepkg.lsi.measures.evaluate_digits` hold each digit.

    Args:
        archive: archive with measures ``[boldness, lightness, digit]``.

    Returns:
        ``(10,)`` integer counts of the occupied cells of digits 0 to 9.
    """
    if archive.measure_dim != 3:
        raise ValueError(f"cells_per_digit needs a 3D archive [boldness, lightness, digit], got {archive.measure_dim}D")
    digits = np.rint(archive.data("measures")[:, 2]).astype(int)
    return np.bincount(digits, minlength=10)


def digit_slice(archive: GridArchive, digit: int) -> GridArchive:
    """The boldness x lightness archive of one digit, cut from a 3D archive of :func:`evaluate_digits`.

    Args:
        archive: archive with measures ``[boldness, lightness, digit]``.
        digit: 0 to 9.

    Returns:
        A 2D :class:`~ribs.archives.GridArchive` with the first two axes of
        ``archive``, holding its elites of that digit.
    """
    check_digit(digit)
    if archive.measure_dim != 3:
        raise ValueError(f"digit_slice needs a 3D archive [boldness, lightness, digit], got {archive.measure_dim}D.")
    elites = archive.data(["solution", "objective", "measures"])
    keep = np.rint(elites["measures"][:, 2]) == digit
    ranges = list(zip(archive.lower_bounds[:2], archive.upper_bounds[:2]))
    sliced = GridArchive(
        solution_dim=archive.solution_dim,
        dims=archive.dims[:2],
        ranges=ranges,
        solution_dtype=archive.dtypes["solution"],
    )
    if keep.any():
        sliced.add(elites["solution"][keep], elites["objective"][keep], elites["measures"][keep, :2])
    return sliced


def elites_at(archive: GridArchive, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The elites of the cells that contain ``points``, or of the nearest occupied cell.

    Args:
        archive: a non-empty archive.
        points: ``(k, measure_dim)`` points in measure space.

    Returns:
        ``(indices, solutions)``: ``(k,)`` integer archive indices of the cells used
        (the cell of each point when it is occupied, else the occupied cell nearest
        to it, counted in cells along each axis) and ``(k, solution_dim)`` their elites.
    """
    if archive.empty:
        raise ValueError("The archive is empty: there is no elite to look up.")
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != archive.measure_dim:
        raise ValueError(f"points must have shape (k, {archive.measure_dim}), got {points.shape}.")
    occupied, elites = archive.retrieve(points)
    indices = archive.index_of(points)
    if not occupied.all():
        stored = archive.data("index")
        wanted = archive.int_to_grid_index(indices[~occupied]).astype(np.float64)
        have = archive.int_to_grid_index(stored).astype(np.float64)
        distance = ((wanted[:, None, :] - have[None, :, :]) ** 2).sum(axis=2)
        indices[~occupied] = stored[distance.argmin(axis=1)]
        _, elites = archive.retrieve(_cell_centres(archive, indices))
    return indices, elites["solution"]


def _cell_centres(archive: GridArchive, indices: np.ndarray) -> np.ndarray:
    """``(k, measure_dim)`` centres of the cells with integer ``indices``."""
    grid = archive.int_to_grid_index(indices)
    width = (archive.upper_bounds - archive.lower_bounds) / archive.dims
    return archive.lower_bounds + (grid + 0.5) * width
