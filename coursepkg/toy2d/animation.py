"""Animations of GAN training that play in any browser, offline, and stay light.

Training records snapshots (:func:`coursepkg.toy2d.training.train` with ``record=``);
the functions here draw them as the frames of a matplotlib figure and encode the
frames as one small H.264 video (MP4, through imageio-ffmpeg, whose wheel bundles
ffmpeg). :class:`Animation` embeds it in an HTML ``<video>`` with the browser's own
controls, as a data URI: a static book keeps it, and nothing loads from the network.
Its poster, what a reader sees before pressing play and all that a printed page
keeps, is the *last* frame: where training ended. A notebook shows the video;
a PDF or any viewer without HTML gets the last frame as a JPEG image.

The figures are portrait (the main panel above, the losses below), so that a
phone shows them as large as a desktop does.

* :func:`recorder_1d` / :func:`animate_1d`: data and generator histograms with
  the discriminator's curve, the picture of Goodfellow et al. (2014, figure 1).
* :func:`recorder_2d` / :func:`animate_2d`: generator samples over the
  discriminator's decision surface (or a WGAN critic's values), losses below.
* :func:`animate_latent_map`: the generator's image of a grid of the 2D latent
  space, deforming as it learns.

The recap chapter (``book/gan_recap.ipynb``) shows them.
"""

from __future__ import annotations

import base64
import html
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from coursepkg.toy2d.plots import DATA_COLOR, MODEL_COLOR, Extent, decision_grid, draw_losses
from coursepkg.toy2d.training import TrainingRun
from coursepkg.toy2d.variants import Variant

__all__ = [
    "MAX_BYTES",
    "Animation",
    "animate",
    "animate_1d",
    "animate_2d",
    "animate_latent_map",
    "recorder_1d",
    "recorder_2d",
]

#: Largest HTML an animation may take: ten of them, with the text, keep a page under 5 MB.
MAX_BYTES = 450_000
#: Portrait figures, 520 x 700 pixels, which a 414 px phone shrinks by less than a third.
_FIGSIZE = (5.2, 7.0)
#: A blank strip at the bottom of every frame, in inches: browsers draw a paused
#: video's controls over the bottom of the picture, here and not over the legend.
_CONTROLS_STRIP = 0.7
_DPI = 100
#: H.264 quality (lower is better and larger; 23 is x264's default).
_CRF = 26
#: JPEG quality of the poster: as sharp as the video, at two thirds of a PNG's size.
_JPEG_QUALITY = 85
_SURFACES = ("probability", "critic")


@dataclass(frozen=True, repr=False)
class Animation:
    """An encoded animation; Jupyter shows it as a video, viewers without HTML as its last frame.

    Attributes:
        video: the frames as an H.264 MP4 file.
        poster: the last frame as a JPEG file.
        frames: number of frames.
        width: width of a frame in pixels.
        height: height of a frame in pixels.
        title: what the animation shows, the video's accessible label.
        note: one line shown under the video.
    """

    video: bytes
    poster: bytes
    frames: int
    width: int
    height: int
    title: str
    note: str

    @property
    def html(self) -> str:
        """One ``<div class="animation">``: the video with its controls, the last frame as poster, the note."""
        video = base64.b64encode(self.video).decode()
        poster = base64.b64encode(self.poster).decode()
        label = html.escape(self.title, quote=True)
        return (
            '<div class="animation">'
            f'<video controls muted playsinline preload="metadata" width="{self.width}" height="{self.height}" '
            f'style="max-width: 100%; height: auto" title="{label}" aria-label="{label}" '
            f'poster="data:image/jpeg;base64,{poster}">'
            f'<source type="video/mp4" src="data:video/mp4;base64,{video}">'
            "</video>"
            f'<p style="font-size: 0.85em; margin-top: 0.2em">{html.escape(self.note)}</p>'
            "</div>"
        )

    @property
    def size_bytes(self) -> int:
        """Size of the HTML in bytes (UTF-8)."""
        return len(self.html.encode())

    def __repr__(self) -> str:
        return f"<Animation: {self.frames} frames of {self.width} x {self.height} pixels, {self.size_bytes:,} bytes>"

    def _repr_html_(self) -> str:
        return self.html

    def _repr_jpeg_(self) -> bytes:
        return self.poster


def _pixels(fig: Figure) -> np.ndarray:
    """The figure as drawn now: ``(height, width, 3)`` uint8 RGB, padded with white to even sizes (H.264 needs them)."""
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    height, width = rgb.shape[:2]
    return np.pad(rgb, ((0, height % 2), (0, width % 2), (0, 0)), constant_values=255)


def animate(
    fig: Figure,
    update: Callable[[int], None],
    frames: int,
    *,
    title: str,
    note: str = "",
    fps: float = 4,
    max_bytes: int = MAX_BYTES,
) -> Animation:
    """Draw ``update(0)``, ..., ``update(frames - 1)`` of ``fig`` and encode them as an :class:`Animation`.

    The figure is closed afterwards, so a notebook shows the animation only.

    Args:
        fig: the figure that ``update`` redraws.
        update: draws frame ``i`` by changing the figure's artists.
        frames: number of frames, at least 1.
        title: what the animation shows (the video's accessible label).
        note: one line shown under the video; by default it says that the
            picture is the last frame.
        fps: frames per second when playing.
        max_bytes: largest HTML allowed.

    Returns:
        The animation, whose poster is the last frame.

    Raises:
        ValueError: if ``frames < 1``, or the HTML would exceed ``max_bytes``.
    """
    if frames < 1:
        raise ValueError(f"an animation needs at least 1 frame, got {frames}.")
    try:
        update(0)
        first = _pixels(fig)
        height, width = first.shape[:2]
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder, "animation.mp4")
            writer = imageio_ffmpeg.write_frames(
                str(path),
                (width, height),
                fps=fps,
                codec="libx264",
                quality=None,
                macro_block_size=2,
                ffmpeg_log_level="error",
                # Small and seekable: x264's slow preset, its tuning for flat
                # drawings, and the index at the start of the file.
                output_params=["-crf", str(_CRF), "-preset", "slow", "-tune", "animation", "-movflags", "+faststart"],
            )
            writer.send(None)
            writer.send(first)
            last = first
            for i in range(1, frames):
                update(i)
                last = _pixels(fig)
                writer.send(last)
            writer.close()
            video = path.read_bytes()
    finally:
        plt.close(fig)
    poster = io.BytesIO()
    plt.imsave(poster, last, format="jpeg", pil_kwargs={"quality": _JPEG_QUALITY})
    result = Animation(
        video=video,
        poster=poster.getvalue(),
        frames=frames,
        width=width,
        height=height,
        title=title,
        note=note or "The picture is the last frame: press play to watch from the first.",
    )
    if result.size_bytes > max_bytes:
        raise ValueError(
            f"the animation takes {result.size_bytes:,} bytes; the budget is {max_bytes:,} bytes: "
            "use fewer frames, fewer points or a smaller figure."
        )
    return result


def recorder_1d(xs: torch.Tensor, *, n_samples: int = 4000, seed: int = 0) -> Callable[[Variant], dict]:
    """Make a ``record`` function for a 1D GAN (``dim=1``).

    Args:
        xs: ``(k,)`` float32 points where the discriminator is evaluated.
        n_samples: generator samples per snapshot, from the same latent draws
            every time (so the histogram moves only because the generator does).
        seed: seeds those latent draws.

    Returns:
        ``record(model) -> {"samples": (n_samples,) array, "d": (k,) array of D(x) in [0, 1]}``.
    """
    latent: list[torch.Tensor] = []

    def record(model: Variant) -> dict:
        if not latent:
            latent.append(model.sample_latent(n_samples, generator=torch.Generator().manual_seed(seed)))
        return {
            "samples": model.generator(latent[0])[:, 0].numpy(),
            "d": torch.sigmoid(model.discriminate(xs[:, None]))[:, 0].numpy(),
        }

    return record


def recorder_2d(
    extent: Extent, *, n_samples: int = 400, resolution: int = 60, latent_grid: int = 0, seed: int = 0
) -> Callable[[Variant], dict]:
    """Make a ``record`` function for a 2D GAN.

    Args:
        extent: ``(xmin, xmax, ymin, ymax)`` of the discriminator's surface.
        n_samples: generator samples per snapshot, from fixed latent draws, so
            that a point's path across frames is the path of one ``G(z)``.
        resolution: surface grid points per axis.
        latent_grid: if positive, also map a ``latent_grid x latent_grid`` grid
            of ``[-2.5, 2.5]^2`` through the generator (2D noise, no codes).
        seed: seeds the latent draws.

    Returns:
        ``record(model)`` giving ``{"samples": (n, 2), "scores": (resolution,
        resolution) discriminator outputs (logits or critic values), "grid":
        (latent_grid, latent_grid, 2) or None}``, numpy arrays.
    """
    latent: list[torch.Tensor] = []
    axis = torch.linspace(-2.5, 2.5, latent_grid)
    grid_points = torch.cartesian_prod(axis, axis) if latent_grid else None

    def record(model: Variant) -> dict:
        if not latent:
            latent.append(model.sample_latent(n_samples, generator=torch.Generator().manual_seed(seed)))
        mapped = None
        if grid_points is not None:
            if model.latent_dim != 2:
                raise ValueError(f"latent_grid needs a 2D latent space, the model's has {model.latent_dim} dimensions.")
            mapped = model.generator(grid_points).reshape(latent_grid, latent_grid, -1).numpy()
        return {
            "samples": model.generator(latent[0]).numpy(),
            "scores": decision_grid(model.discriminate, extent, resolution=resolution)[2],
            "grid": mapped,
        }

    return record


def _figure_with_losses(run: TrainingRun, *, title: str, smoothing: int) -> tuple[Figure, Axes, Callable[[int], None]]:
    # The main panel above, titled as its last frame (the longest title, which
    # the layout must leave room for); the whole loss history below, with a
    # cursor at the frame's step.
    fig, (ax, ax_loss) = plt.subplots(2, 1, figsize=_FIGSIZE, dpi=_DPI, height_ratios=(2.4, 1))
    draw_losses(ax_loss, run.history, smoothing=smoothing)
    cursor = ax_loss.axvline(0, color="k", linewidth=1)
    ax.set_title(f"{title}: step {run.steps[-1]}")
    ax_loss.set(title="Losses")
    ax_loss.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32), ncols=2, fontsize=9, frameon=False)

    def move_cursor(i: int) -> None:
        cursor.set_xdata([run.steps[i], run.steps[i]])

    return fig, ax, move_cursor


def _layout(fig: Figure) -> None:
    fig.tight_layout(rect=(0, _CONTROLS_STRIP / fig.get_figheight(), 1, 1))


def _check_run(run: TrainingRun, key: str) -> None:
    if len(run.snapshots) < 2 or key not in run.snapshots[0] or run.snapshots[0][key] is None:
        raise ValueError(f"the run needs at least 2 snapshots holding {key!r}; record them with the matching recorder.")


def _note(run: TrainingRun) -> str:
    return f"The picture is the last frame, step {run.steps[-1]:,}: press play to watch from step 0."


def animate_1d(
    run: TrainingRun,
    data: torch.Tensor,
    xs: torch.Tensor,
    *,
    title: str,
    bins: int = 60,
    smoothing: int = 25,
    fps: float = 4,
) -> Animation:
    """Animate a 1D GAN recorded with :func:`recorder_1d` built on ``xs``.

    Args:
        run: the training run.
        data: ``(n,)`` or ``(n, 1)`` real points, drawn as a fixed histogram.
        xs: the ``(k,)`` points the recorder evaluated ``D`` on.
        title: title of the main panel (the step is appended).
        bins: histogram bins over the range of ``xs``.
        smoothing: moving-average window of the loss panel.
        fps: frames per second.

    Returns:
        The animation: data (blue) and generator (orange) densities, ``D(x)``
        (black, right axis) with the ``1/2`` line, and the losses below.
    """
    _check_run(run, "d")
    fig, ax, move_cursor = _figure_with_losses(run, title=title, smoothing=smoothing)
    x = xs.numpy()
    edges = np.linspace(x[0], x[-1], bins + 1)
    data_heights = ax.hist(
        data.reshape(-1).numpy(), bins=edges, density=True, color=DATA_COLOR, alpha=0.5, label="data"
    )[0]
    heights = np.histogram(run.snapshots[0]["samples"], bins=edges, density=True)[0]
    bars = ax.bar(
        edges[:-1], heights, width=np.diff(edges), align="edge", color=MODEL_COLOR, alpha=0.5, label="generator"
    )
    # An early, narrow generator can peak far above the data: let it run off the
    # top rather than flatten the data's histogram.
    top = min(
        max(np.histogram(s["samples"], bins=edges, density=True)[0].max() for s in run.snapshots),
        3 * data_heights.max(),
    )
    ax.set(xlabel="$x$", ylabel="density", ylim=(0, 1.05 * top), xlim=(x[0], x[-1]))
    ax_d = ax.twinx()
    (curve,) = ax_d.plot(x, run.snapshots[0]["d"], color="k", label="$D(x)$")
    ax_d.axhline(0.5, color="k", linestyle=":", linewidth=1)
    ax_d.set(ylim=(0, 1), ylabel="$D(x)$, probability of real")
    handles = [*ax.get_legend_handles_labels()[0], curve]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.11), ncols=3, frameon=False)
    _layout(fig)

    def update(i: int) -> None:
        snapshot = run.snapshots[i]
        for bar, height in zip(bars, np.histogram(snapshot["samples"], bins=edges, density=True)[0]):
            bar.set_height(height)
        curve.set_ydata(snapshot["d"])
        ax.set_title(f"{title}: step {run.steps[i]}")
        move_cursor(i)

    return animate(fig, update, len(run.snapshots), title=title, note=_note(run), fps=fps)


def animate_2d(
    run: TrainingRun,
    data: torch.Tensor,
    extent: Extent,
    *,
    title: str,
    surface: str = "probability",
    smoothing: int = 25,
    fps: float = 4,
    n_data: int = 600,
) -> Animation:
    """Animate generator samples over the discriminator's surface, recorded with :func:`recorder_2d`.

    Args:
        run: the training run.
        data: ``(n, 2)`` real points; the first ``n_data`` are drawn.
        extent: the recorder's extent.
        title: title of the main panel (the step is appended).
        surface: ``"probability"`` shows ``D(x) = sigmoid(logit)`` in [0, 1] with
            its 0.5 level; ``"critic"`` shows a WGAN critic's values, rescaled to
            [0, 1] in each frame (only their differences matter).
        smoothing: moving-average window of the loss panel.
        fps: frames per second.
        n_data: number of data points drawn.

    Returns:
        The animation: samples (orange) and data (blue) over the surface, and the losses below.

    Raises:
        ValueError: for an unknown ``surface`` or a run without 2D snapshots.
    """
    if surface not in _SURFACES:
        raise ValueError(f"Unknown surface {surface!r}; choose one of {list(_SURFACES)}.")
    _check_run(run, "scores")
    fig, ax, move_cursor = _figure_with_losses(run, title=title, smoothing=smoothing)

    def values(i: int) -> np.ndarray:
        scores = run.snapshots[i]["scores"]
        if surface == "probability":
            return 1 / (1 + np.exp(-scores))
        return (scores - scores.min()) / max(scores.max() - scores.min(), 1e-12)

    image = ax.imshow(values(0), origin="lower", extent=extent, cmap="RdBu_r", vmin=0, vmax=1)
    label = "$D(x)$, probability that $x$ is real" if surface == "probability" else "critic $f(x)$, rescaled to [0, 1]"
    fig.colorbar(image, ax=ax, label=label, fraction=0.046, pad=0.03)
    real = data[:n_data].numpy()
    ax.scatter(real[:, 0], real[:, 1], s=3, alpha=0.4, color=DATA_COLOR, label="data")
    fake = ax.scatter(*run.snapshots[0]["samples"].T, s=4, alpha=0.7, color=MODEL_COLOR, label="generator")
    ax.set(xlabel="$x_1$", ylabel="$x_2$", xlim=extent[:2], ylim=extent[2:], aspect="equal")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncols=2, markerscale=4, frameon=False)
    _layout(fig)
    rows, columns = values(0).shape
    grid_xy = np.meshgrid(np.linspace(*extent[:2], columns), np.linspace(*extent[2:], rows))
    level: list = []  # the 0.5 contour of the current frame

    def update(i: int) -> None:
        image.set_data(values(i))
        fake.set_offsets(run.snapshots[i]["samples"])
        for contour in level:
            contour.remove()
        level.clear()
        if surface == "probability":
            level.append(ax.contour(*grid_xy, values(i), levels=[0.5], colors="k", linewidths=1))
        ax.set_title(f"{title}: step {run.steps[i]}")
        move_cursor(i)

    return animate(fig, update, len(run.snapshots), title=title, note=_note(run), fps=fps)


def animate_latent_map(
    run: TrainingRun,
    data: torch.Tensor,
    extent: Extent,
    *,
    title: str,
    smoothing: int = 25,
    fps: float = 4,
    n_data: int = 600,
) -> Animation:
    """Animate the generator's image of a latent grid, recorded with ``recorder_2d(latent_grid=...)``.

    Each latent grid line ``z_1 = const`` (and ``z_2 = const``) is drawn through
    its images ``G(z)``: where the mapped grid stretches, the generator spreads
    little probability; where it bunches up, it piles probability on.

    Returns:
        The animation: the mapped grid over the data, coloured by ``z_1``, and
        the losses below.
    """
    _check_run(run, "grid")
    fig, ax, move_cursor = _figure_with_losses(run, title=title, smoothing=smoothing)
    real = data[:n_data].numpy()
    ax.scatter(real[:, 0], real[:, 1], s=3, alpha=0.4, color=DATA_COLOR, label="data")
    grid = run.snapshots[0]["grid"]
    colors = plt.get_cmap("viridis")(np.linspace(0, 1, len(grid)))
    rows = [ax.plot(*grid[j].T, color=colors[j], linewidth=0.9)[0] for j in range(len(grid))]
    columns = [ax.plot(*grid[:, j].T, color="0.35", linewidth=0.5)[0] for j in range(len(grid))]
    rows[0].set_label("$G(z)$ along lines $z_1$ = const (colour: $z_1$)")
    ax.set(xlabel="$x_1$", ylabel="$x_2$", xlim=extent[:2], ylim=extent[2:], aspect="equal")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncols=1, markerscale=4, frameon=False)
    _layout(fig)

    def update(i: int) -> None:
        grid = run.snapshots[i]["grid"]
        for j, (row, column) in enumerate(zip(rows, columns)):
            row.set_data(*grid[j].T)
            column.set_data(*grid[:, j].T)
        ax.set_title(f"{title}: step {run.steps[i]}")
        move_cursor(i)

    return animate(fig, update, len(run.snapshots), title=title, note=_note(run), fps=fps)
