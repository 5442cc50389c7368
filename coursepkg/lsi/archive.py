"""Reading an LSI archive: elites by measures, one digit's slice, re-scoring by the discriminator.

Used by the LSI chapter and lab to look into the archives that
:func:`coursepkg.lsi.search.run_lsi` fills.
"""

from __future__ import annotations

import numpy as np
import torch
from ribs.archives import GridArchive
from torch import nn

from coursepkg.lsi.measures import check_digit, decode, realness

__all__ = ["digit_slice", "discriminator_archive", "elites_at"]


def _archive_like(archive: GridArchive) -> GridArchive:
    """An empty archive with the same cells, measure ranges and solution size as ``archive``."""
    ranges = list(zip(archive.lower_bounds, archive.upper_bounds))
    return GridArchive(
        solution_dim=archive.solution_dim, dims=archive.dims, ranges=ranges, solution_dtype=archive.dtypes["solution"]
    )


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
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    elites = archive.data(["solution", "measures"])
    scores = []
    with torch.inference_mode():
        for start in range(0, len(elites["solution"]), batch_size):
            images = decode(elites["solution"][start : start + batch_size], generator)
            scores.append(realness(discriminator, images).numpy())
    rescored = _archive_like(archive)
    if scores:
        rescored.add(elites["solution"], np.concatenate(scores), elites["measures"])
    return rescored


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
