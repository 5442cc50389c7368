"""Figures for 2D GAN experiments, and the diagram of the GAN game.

Every function draws one titled, labelled figure with pyplot and returns it, so
a notebook shows it and a test or a script can save it with ``fig.savefig``.
The 2D lab (``book/lab_2d_gan.ipynb``) draws its samples, decision surfaces and
losses with them; the recap chapter (``book/gan_recap.ipynb``) its diagram of
the game (:func:`plot_gan_game`) and its animations' panels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

__all__ = [
    "decision_grid",
    "draw_losses",
    "plot_decision_surface",
    "plot_gan_game",
    "plot_losses",
    "plot_samples",
]

DATA_COLOR = "tab:blue"
MODEL_COLOR = "tab:orange"
#: The losses' colours, in the loss curves and the diagram of the game.
D_LOSS_COLOR = "tab:red"
G_LOSS_COLOR = "tab:green"

Extent = tuple[float, float, float, float]


def _as_points(points: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    array = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"{name} must be an (n, 2) array of 2D points, got shape {array.shape}.")
    return array


def _extent_around(*clouds: np.ndarray, margin: float = 0.25) -> Extent:
    """A square-ish box holding the middle 99.8 % of every cloud, plus a margin."""
    stacked = np.concatenate(clouds)
    low = np.percentile(stacked, 0.1, axis=0)
    high = np.percentile(stacked, 99.9, axis=0)
    pad = margin * (high - low).max()
    return (low[0] - pad, high[0] + pad, low[1] - pad, high[1] + pad)


def plot_samples(
    data: torch.Tensor | np.ndarray,
    samples: torch.Tensor | np.ndarray | None = None,
    *,
    title: str = "Data and generator samples",
    labels: tuple[str, str] = ("data", "generator"),
) -> Figure:
    """Scatter real points, and optionally model samples on top.

    Args:
        data: ``(n, 2)`` real points.
        samples: ``(m, 2)`` generated points, or ``None`` to show the data alone.
        title: figure title.
        labels: legend entries for the data and the samples.

    Returns:
        The figure (one square axis, equal aspect).
    """
    fig, ax = plt.subplots(figsize=(5, 5))
    real = _as_points(data, "data")
    ax.scatter(real[:, 0], real[:, 1], s=4, alpha=0.5, color=DATA_COLOR, label=labels[0])
    if samples is not None:
        fake = _as_points(samples, "samples")
        ax.scatter(fake[:, 0], fake[:, 1], s=4, alpha=0.5, color=MODEL_COLOR, label=labels[1])
    ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=2, markerscale=3, frameon=False)
    fig.tight_layout()
    return fig


def decision_grid(
    discriminate: Callable[[torch.Tensor], torch.Tensor], extent: Extent, *, resolution: int = 200
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate a discriminator on a regular grid over ``extent``.

    Args:
        discriminate: maps ``(k, 2)`` float32 points to ``(k, 1)`` scores (logits or critic values).
        extent: ``(xmin, xmax, ymin, ymax)``.
        resolution: grid points per axis.

    Returns:
        ``(grid_x, grid_y, scores)``, three ``(resolution, resolution)`` arrays
        (as from ``np.meshgrid``), ready for ``imshow(origin="lower")`` or ``contour``.
    """
    xs = np.linspace(extent[0], extent[1], resolution, dtype=np.float32)
    ys = np.linspace(extent[2], extent[3], resolution, dtype=np.float32)
    grid_x, grid_y = np.meshgrid(xs, ys)
    grid = torch.from_numpy(np.stack([grid_x.ravel(), grid_y.ravel()], axis=1))
    with torch.no_grad():
        scores = discriminate(grid).reshape(resolution, resolution).double().numpy()
    return grid_x, grid_y, scores


def plot_decision_surface(
    discriminate: Callable[[torch.Tensor], torch.Tensor],
    data: torch.Tensor | np.ndarray,
    samples: torch.Tensor | np.ndarray | None = None,
    *,
    title: str = "Discriminator decision surface",
    extent: Extent | None = None,
    resolution: int = 200,
) -> Figure:
    """Show ``D(x) = sigmoid(logit)`` over the plane with the points on top.

    Args:
        discriminate: maps ``(k, 2)`` float32 points to ``(k, 1)`` logits.
        data: ``(n, 2)`` real points.
        samples: ``(m, 2)`` generated points, or ``None``.
        title: figure title.
        extent: ``(xmin, xmax, ymin, ymax)``; by default a box around the points.
        resolution: grid points per axis.

    Returns:
        The figure: a heat map of ``D(x)`` in [0, 1] with its 0.5 level line,
        the data in blue and the samples in orange.
    """
    real = _as_points(data, "data")
    fake = None if samples is None else _as_points(samples, "samples")
    if extent is None:
        extent = _extent_around(real) if fake is None else _extent_around(real, fake)
    grid_x, grid_y, logits = decision_grid(discriminate, extent, resolution=resolution)
    prob = 1 / (1 + np.exp(-logits))

    fig, ax = plt.subplots(figsize=(6, 5))
    image = ax.imshow(prob, origin="lower", extent=extent, cmap="RdBu_r", vmin=0, vmax=1)
    ax.contour(grid_x, grid_y, prob, levels=[0.5], colors="k", linewidths=1)
    fig.colorbar(image, ax=ax, label="$D(x)$, probability that $x$ is real")
    ax.scatter(real[:, 0], real[:, 1], s=3, alpha=0.4, color=DATA_COLOR, label="data")
    if fake is not None:
        ax.scatter(fake[:, 0], fake[:, 1], s=3, alpha=0.6, color=MODEL_COLOR, label="generator")
    ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$", xlim=extent[:2], ylim=extent[2:])
    # Below the axes: inside, the legend would hide the points it explains.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=2, markerscale=4, frameon=False)
    fig.tight_layout()
    return fig


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode="valid")


def plot_losses(
    history: Mapping[str, Sequence[float]],
    *,
    title: str = "Training losses",
    smoothing: int = 50,
) -> Figure:
    """Plot discriminator and generator losses against generator steps.

    Args:
        history: ``{"d_loss": [...], "g_loss": [...]}`` as returned by
            ``train_gan``; ``d_loss`` may hold several entries per generator
            step, which are averaged.
        title: figure title.
        smoothing: moving-average window, in generator steps.

    Returns:
        The figure, with dashed lines at the values of the game's equilibrium
        (``D = 1/2`` everywhere): ``2 log 2`` for ``D`` and ``log 2`` for ``G``.
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    draw_losses(ax, history, smoothing=smoothing)
    ax.axhline(2 * math.log(2), color="tab:red", linestyle="--", linewidth=1, label="$2\\log 2$")
    ax.axhline(math.log(2), color="tab:green", linestyle="--", linewidth=1, label="$\\log 2$")
    ax.set(title=title)
    ax.legend(loc="center right")
    fig.tight_layout()
    return fig


def draw_losses(ax: Axes, history: Mapping[str, Sequence[float]], *, smoothing: int = 50) -> None:
    """Draw raw (faint) and smoothed discriminator and generator losses on ``ax``.

    Args:
        ax: a matplotlib axis; its x label becomes "generator step", its y label "loss".
        history: ``{"d_loss": [...], "g_loss": [...]}`` with ``k`` discriminator
            losses per generator loss (averaged per generator step).
        smoothing: moving-average window, in generator steps.

    Raises:
        ValueError: if ``d_loss`` does not hold a whole number of entries per ``g_loss`` entry.
    """
    d_loss = np.asarray(history["d_loss"], dtype=float)
    g_loss = np.asarray(history["g_loss"], dtype=float)
    if len(g_loss) == 0 or len(d_loss) % len(g_loss) != 0:
        raise ValueError(
            f"history must hold k discriminator losses per generator loss; got {len(d_loss)} and {len(g_loss)}."
        )
    d_loss = d_loss.reshape(len(g_loss), -1).mean(axis=1)
    for values, color, label in ((d_loss, D_LOSS_COLOR, "discriminator"), (g_loss, G_LOSS_COLOR, "generator")):
        smooth = _moving_average(values, smoothing)
        steps = np.arange(len(values))[len(values) - len(smooth) :]
        ax.plot(values, color=color, alpha=0.2)
        ax.plot(steps, smooth, color=color, label=f"{label} (moving average)")
    ax.set(xlabel="generator step", ylabel="loss")


def _box(ax: Axes, x: float, y: float, text: str, color: str) -> None:
    """``text`` centred on ``(x, y)`` (diagram units) in a rounded box filled with ``color``."""
    ax.text(
        x,
        y,
        text,
        ha="center",
        va="center",
        fontsize=13,
        bbox={"boxstyle": "round,pad=0.35", "facecolor": color, "edgecolor": "0.3"},
    )


def _arrow(ax: Axes, path: Sequence[tuple[float, float]], *, color: str = "0.25", dashed: bool = False) -> None:
    """An arrow along the polyline ``path`` (diagram units), its head at the last point."""
    style = {"color": color, "linewidth": 1.8, "linestyle": "--" if dashed else "-"}
    for start, end in zip(path[:-2], path[1:-1]):
        ax.plot(*zip(start, end), **style)
    ax.add_patch(FancyArrowPatch(path[-2], path[-1], arrowstyle="-|>", mutation_scale=18, **style))


def plot_gan_game(*, title: str = "The GAN game") -> Figure:
    """Draw the GAN game: the two players, what each sees, the two losses and the alternating updates.

    Noise ``z`` goes through the generator ``G`` to a fake sample; the
    discriminator ``D`` scores fakes and real data; its scores make the
    discriminator's loss, which updates ``D`` (step 1, ``G`` fixed), and the
    generator's non-saturating loss, which updates ``G`` through ``D``
    (step 2, ``D`` fixed). The recap chapter (``book/gan_recap.ipynb``,
    section 1) shows it where it first explains the game. Portrait and in
    large type, so that a phone shows it readably.

    Args:
        title: figure title.

    Returns:
        The figure: one axis of 10 x 11 diagram units, without ticks.
    """
    fig, ax = plt.subplots(figsize=(6, 6.4))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.6, 10.8)
    ax.set_title(title, fontsize=15)
    ax.axis("off")
    left, right = 3.3, 7.6
    fake, real, judge, loss = "#fde0c5", "#cfe2f3", "#e3e3e3", "white"
    _box(ax, left, 10.0, "noise\n$z \\sim \\mathcal{N}(0, I)$", fake)
    _box(ax, right, 10.0, "real data\n$x \\sim p_\\mathrm{data}$", real)
    _box(ax, left, 8.0, "generator $G$", MODEL_COLOR)
    _box(ax, left, 6.1, "fake sample\n$G(z)$", fake)
    _box(ax, 5.5, 3.9, "discriminator $D$\n$D(\\cdot)$ = P(real)", judge)
    _box(ax, left - 0.4, 1.1, "G's loss\n$-\\log D(G(z))$", loss)
    _box(ax, right, 1.1, "D's loss\n$-\\log D(x)$\n$-\\log(1 - D(G(z)))$", loss)
    for path in (
        [(left, 9.3), (left, 8.5)],
        [(left, 7.5), (left, 6.8)],
        [(left + 0.6, 5.4), (4.8, 4.7)],
        [(right, 9.3), (6.3, 4.7)],
        [(4.6, 3.2), (left - 0.4, 1.9)],
        [(6.4, 3.2), (right, 2.4)],
    ):
        _arrow(ax, path)
    # The updates: each loss trains its own player only.
    _arrow(ax, [(right + 1.6, 2.4), (right + 1.6, 3.9), (7.6, 3.9)], color=D_LOSS_COLOR, dashed=True)
    ax.text(right + 0.85, 4.25, "step 1:\nupdate $D$", color=D_LOSS_COLOR, fontsize=12, ha="center", va="bottom")
    _arrow(ax, [(1.3, 1.1), (0.3, 1.1), (0.3, 8.0), (left - 1.35, 8.0)], color=G_LOSS_COLOR, dashed=True)
    ax.text(0.75, 4.6, "step 2: update $G$ through $D$", color=G_LOSS_COLOR, fontsize=12, rotation=90, va="center")
    ax.text(
        5.0,
        -0.5,
        "Alternate: $k$ steps on $D$ ($G$ fixed),\nthen one step on $G$ ($D$ fixed).",
        ha="center",
        va="top",
        fontsize=12,
    )
    fig.tight_layout()
    return fig
