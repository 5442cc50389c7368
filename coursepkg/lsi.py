"""Latent Space Illumination (LSI) of the MNIST GAN with pyribs.

Fontaine et al. (2021) search a GAN's latent space with a quality-diversity
algorithm: among the latent vectors whose images a classifier calls an eight,
keep the best one in each cell of a grid over two image measures. The pyribs
tutorial "Illuminating the Latent Space of an MNIST GAN" does it with CMA-ME
(Fontaine et al. 2020) on the generator of :mod:`coursepkg.mnist_gan`:

* objective: LeNet-5's probability of the digit (:func:`digit_probability`);
* measures: **boldness**, the number of pixels ``>= 0.5`` in ``[0, 1]`` scale
  (range ``[0, 784]``), and **lightness**, the mean value of those pixels
  (range ``[0.5, 1]``) (:func:`measures`);
* a 200 x 200 :class:`~ribs.archives.GridArchive`, five
  :class:`~ribs.emitters.EvolutionStrategyEmitter` (CMA-ES, ``sigma0=0.2``,
  two-stage improvement ranking, 30 solutions each) and a
  :class:`~ribs.schedulers.Scheduler`, for 30,000 iterations.

:data:`SEED_CONFIG` is that setting and :data:`OURS` the course's CMA-MAE,
which fills the tutorial's cells with a sixth of its evaluations
(:data:`OURS_DIAGONAL` trades cells for speed; see :mod:`coursepkg.benchmark_lsi`);
:func:`run_lsi` runs any of them.
The rest draws and re-scores archives: :func:`plot_heatmap`,
:func:`elites_at` and :func:`plot_elites` (digits across the archive), and
:func:`discriminator_archive` (every elite re-scored by the GAN's discriminator).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from ribs.archives import GridArchive
from ribs.emitters import EvolutionStrategyEmitter
from ribs.schedulers import Scheduler
from torch import nn
from tqdm.auto import tqdm

from coursepkg.image_plots import plot_digit_grid
from coursepkg.mnist import SCALES
from coursepkg.mnist_gan import IMAGE_SIZE, LATENT_DIM

__all__ = [
    "BOLDNESS_RANGE",
    "DIGIT_RANGE",
    "LIGHTNESS_RANGE",
    "MEASURE_RANGES",
    "OURS",
    "OURS_DIAGONAL",
    "SEED_CONFIG",
    "Checkpoint",
    "LSIConfig",
    "LSIResult",
    "MaxPool2x2",
    "boldness",
    "decode",
    "digit_probability",
    "digit_slice",
    "discriminator_archive",
    "elites_at",
    "evaluate",
    "evaluate_digits",
    "fast_pooling",
    "illuminate",
    "lightness",
    "make_scheduler",
    "measures",
    "plot_elites",
    "plot_heatmap",
    "realness",
    "run_lsi",
]

#: Range of :func:`boldness`: from no pixel to all 784 pixels ``>= 0.5``.
BOLDNESS_RANGE = (0.0, 784.0)
#: Range of :func:`lightness`: the mean of pixels that are all ``>= 0.5``.
LIGHTNESS_RANGE = (0.5, 1.0)
#: Range of the third measure of :func:`evaluate_digits`, LeNet-5's digit: one cell per digit.
DIGIT_RANGE = (-0.5, 9.5)
_THRESHOLD = 0.5  # a pixel "is ink" from this value on, in [0, 1] scale


# --- Objective and measures -------------------------------------------------------------------


def _flat_images(images: torch.Tensor) -> torch.Tensor:
    """``(n, 1, 28, 28)`` or ``(n, 784)`` images as ``(n, 784)``; a clear error for any other shape."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise TypeError(
            f"images must be a float torch.Tensor, got {type(images).__name__} {getattr(images, 'dtype', '')}."
        )
    if images.shape[1:] not in ((1, 28, 28), (IMAGE_SIZE,)):
        raise ValueError(f"images must have shape (n, 1, 28, 28) or (n, 784), got {tuple(images.shape)}.")
    return images.reshape(len(images), IMAGE_SIZE)


def boldness(images: torch.Tensor) -> torch.Tensor:
    """How much ink a digit has: the number of its pixels ``>= 0.5``.

    Args:
        images: ``(n, 1, 28, 28)`` or ``(n, 784)`` float, pixels in ``[0, 1]``.

    Returns:
        ``(n,)`` float32 counts in :data:`BOLDNESS_RANGE` ``= [0, 784]``.
    """
    return (_flat_images(images) >= _THRESHOLD).sum(dim=1, dtype=torch.float32)


def lightness(images: torch.Tensor) -> torch.Tensor:
    """How bright a digit's ink is: the mean value of its pixels ``>= 0.5``.

    Args:
        images: ``(n, 1, 28, 28)`` or ``(n, 784)`` float, pixels in ``[0, 1]``.

    Returns:
        ``(n,)`` float32 in :data:`LIGHTNESS_RANGE` ``= [0.5, 1]``, and exactly 0.0
        for an image without such a pixel (not NaN: the archive clips it into its
        lowest row).
    """
    flat = _flat_images(images)
    ink = flat >= _THRESHOLD
    total = torch.where(ink, flat, 0).sum(dim=1, dtype=torch.float32)
    count = ink.sum(dim=1, dtype=torch.float32)
    return torch.where(count > 0, total / count.clamp(min=1), 0.0)


def measures(images: torch.Tensor) -> torch.Tensor:
    """The two measures of the seed tutorial, side by side.

    Args:
        images: ``(n, 1, 28, 28)`` or ``(n, 784)`` float, pixels in ``[0, 1]``.

    Returns:
        ``(n, 2)`` float32: ``[boldness, lightness]`` (see :func:`boldness`, :func:`lightness`).
    """
    return torch.stack([boldness(images), lightness(images)], dim=1)


def _check_digit(digit: int) -> None:
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= digit <= 9:
        raise ValueError(f"digit must be an integer from 0 to 9, got {digit!r}.")


def _log_probabilities(classifier: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """LeNet-5's ``(n, 10)`` log-probabilities of ``[0, 1]`` images, normalised here as in training (no graph)."""
    mean, std = SCALES["lenet"]
    with torch.no_grad():
        return classifier(((_flat_images(images) - mean) / std).reshape(-1, 1, 28, 28))


def digit_probability(classifier: nn.Module, images: torch.Tensor, digit: int) -> torch.Tensor:
    """The probability that LeNet-5 gives ``digit``: the objective of the search.

    Args:
        classifier: LeNet-5 (``pretrained.load("lenet5")``), returning ``(n, 10)``
            log-probabilities of normalised images.
        images: ``(n, 1, 28, 28)`` or ``(n, 784)`` float in ``[0, 1]``; normalised here
            with mean 0.1307 and std 0.3081, like LeNet-5's training digits.
        digit: the class, 0 to 9.

    Returns:
        ``(n,)`` float32 probabilities in ``[0, 1]``.
    """
    _check_digit(digit)
    return _log_probabilities(classifier, images)[:, digit].exp()


def realness(discriminator: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The discriminator's probability that images are real digits.

    Args:
        discriminator: the GAN's discriminator (``pretrained.load("discriminator")``),
            in eval mode, returning ``(n, 1)`` logits of ``[-1, 1]`` images.
        images: ``(n, 1, 28, 28)`` or ``(n, 784)`` float in ``[0, 1]``.

    Returns:
        ``(n,)`` float32 in ``[0, 1]``: ``sigmoid(logit)``.
    """
    return torch.sigmoid(discriminator(_flat_images(images) * 2 - 1)).squeeze(1)


def _check_latents(latents: np.ndarray, latent_dim: int) -> torch.Tensor:
    """``(n, latent_dim)`` numpy latents as a float32 tensor (no copy when they are float32 already)."""
    latents = np.asarray(latents)
    if latents.ndim != 2 or latents.shape[1] != latent_dim or not np.issubdtype(latents.dtype, np.floating):
        raise ValueError(
            f"latents must be a float array of shape (n, {latent_dim}), got {latents.dtype} {latents.shape}."
        )
    return torch.from_numpy(latents).float()


def decode(latents: np.ndarray, generator: nn.Module) -> torch.Tensor:
    """Images of latent vectors, in ``[0, 1]`` scale.

    Args:
        latents: ``(n, latent_dim)`` float numpy array (what ``scheduler.ask()`` returns).
        generator: maps ``(n, latent_dim)`` to ``(n, 784)`` images in ``[-1, 1]``;
            ``latent_dim`` is its attribute of that name, else 128.

    Returns:
        ``(n, 784)`` float32 in ``[0, 1]``.
    """
    with torch.inference_mode():
        latents = _check_latents(latents, getattr(generator, "latent_dim", LATENT_DIM))
        return (generator(latents) + 1) / 2


def evaluate(
    latents: np.ndarray,
    generator: nn.Module,
    classifier: nn.Module,
    *,
    digit: int = 8,
    discriminator: nn.Module | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Objectives and measures of a batch of latent vectors: the seed's evaluation.

    Args:
        latents: ``(n, 128)`` float numpy array, e.g. ``scheduler.ask()``.
        generator: the GAN's generator, ``(n, 128) -> (n, 784)`` in ``[-1, 1]``.
        classifier: LeNet-5, returning log-probabilities.
        digit: the digit searched for, 0 to 9.
        discriminator: when given, the objective becomes LeNet-5's probability
            times the discriminator's (:func:`realness`): an eight must also look real.

    Returns:
        ``(objectives, measures)``: ``(n,)`` and ``(n, 2)`` float64, objectives in
        ``[0, 1]`` and measures ``[boldness, lightness]``.
    """
    _check_digit(digit)
    images = decode(latents, generator)
    with torch.inference_mode():
        objectives = digit_probability(classifier, images, digit)
        if discriminator is not None:
            objectives = objectives * realness(discriminator, images)
        return objectives.double().numpy(), measures(images).double().numpy()


def evaluate_digits(latents: np.ndarray, generator: nn.Module, classifier: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """Search all ten digits at once: LeNet-5's digit becomes a third measure.

    Args:
        latents: ``(n, 128)`` float numpy array.
        generator: the GAN's generator.
        classifier: LeNet-5, returning log-probabilities.

    Returns:
        ``(objectives, measures)``: ``(n,)`` float64, the probability of the digit
        LeNet-5 predicts, and ``(n, 3)`` float64 ``[boldness, lightness, digit]``
        with the digit in ``0..9`` (see :data:`DIGIT_RANGE`).
    """
    images = decode(latents, generator)
    with torch.inference_mode():
        best, digit = _log_probabilities(classifier, images).max(dim=1)
        found = torch.cat([measures(images), digit.unsqueeze(1).float()], dim=1)
        return best.exp().double().numpy(), found.double().numpy()


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


# --- The search ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LSIConfig:
    """One quality-diversity search of the latent space, all pyribs settings in one place.

    Attributes:
        name: a short label for tables and figures.
        cells: cells of the grid archive per measure, e.g. ``(200, 200)``; three
            entries for :func:`evaluate_digits` (the last one 10).
        emitters: number of :class:`~ribs.emitters.EvolutionStrategyEmitter`.
        batch_size: solutions each emitter asks for per iteration.
        sigma0: initial step size of each evolution strategy, around ``x0 = 0``.
        ranker: pyribs ranker, ``"2imp"`` (two-stage improvement: new cells first,
            CMA-ME), ``"imp"`` (improvement over the cell's threshold, CMA-MAE), ...
        es: pyribs evolution strategy: ``"cma_es"``, ``"sep_cma_es"`` (diagonal
            covariance), ``"lm_ma_es"`` (limited memory), ...
        selection_rule: ``"filter"`` (parents are the solutions the archive took) or ``"mu"``.
        restart_rule: ``"no_improvement"``, ``"basic"``, or restart every so many iterations.
        learning_rate: ``None`` for CMA-ME; a value in ``(0, 1]`` makes the archive
            anneal its cells' thresholds (CMA-MAE) and adds a plain result archive.
        threshold_min: the starting threshold of every cell under CMA-MAE.
        dtype: ``"float32"`` or ``"float64"``, for solutions and the evolution strategies.
    """

    name: str
    cells: tuple[int, ...] = (200, 200)
    emitters: int = 5
    batch_size: int = 30
    sigma0: float = 0.2
    ranker: str = "2imp"
    es: str = "cma_es"
    selection_rule: str = "filter"
    restart_rule: str | int = "no_improvement"
    learning_rate: float | None = None
    threshold_min: float = -np.inf
    dtype: str = "float64"

    @property
    def evaluations_per_iteration(self) -> int:
        """Images generated and scored per ask/tell iteration: ``emitters * batch_size``."""
        return self.emitters * self.batch_size


#: The seed tutorial's CMA-ME: 5 CMA-ES emitters of 30, sigma0 0.2, two-stage improvement ranking.
SEED_CONFIG = LSIConfig("seed (CMA-ME)")
#: The course's configuration, CMA-MAE: the seed's five CMA-ES emitters of 30 and sigma0, but an archive
#: whose cell thresholds anneal with learning rate 0.01 from 0 (ranked by improvement over them, ``"imp"``),
#: a plain result archive, and float32. See :mod:`coursepkg.benchmark_lsi` for the comparison.
OURS = LSIConfig("ours (CMA-MAE)", ranker="imp", learning_rate=0.01, threshold_min=0.0, dtype="float32")
#: :data:`OURS` with a diagonal CMA-ES (``"sep_cma_es"``): iterations 30 % shorter, a quarter fewer cells.
OURS_DIAGONAL = replace(OURS, name="ours, diagonal", es="sep_cma_es")

#: The measure space of the seed: ``[boldness, lightness]``.
MEASURE_RANGES = (BOLDNESS_RANGE, LIGHTNESS_RANGE)


def _archive_like(archive: GridArchive) -> GridArchive:
    """An empty archive with the same cells, measure ranges and solution size as ``archive``."""
    ranges = list(zip(archive.lower_bounds, archive.upper_bounds))
    return GridArchive(
        solution_dim=archive.solution_dim, dims=archive.dims, ranges=ranges, solution_dtype=archive.dtypes["solution"]
    )


def make_scheduler(
    config: LSIConfig,
    *,
    seed: int,
    ranges: Sequence[tuple[float, float]] = MEASURE_RANGES,
    solution_dim: int = LATENT_DIM,
) -> Scheduler:
    """Build the archive, emitters and scheduler of a configuration.

    Args:
        config: the search's settings.
        seed: seeds the archive and each emitter (emitter ``i`` gets its own stream).
        ranges: ``(low, high)`` of each measure, one per entry of ``config.cells``;
            append :data:`DIGIT_RANGE` for :func:`evaluate_digits`.
        solution_dim: size of the latent vectors searched.

    Returns:
        A :class:`~ribs.schedulers.Scheduler`. Its ``result_archive`` holds the best
        solution found in each cell (for CMA-MAE a separate, plain archive).

    Raises:
        ValueError: when ``ranges`` and ``config.cells`` differ in length, or a count is below 1.
    """
    if len(ranges) != len(config.cells):
        raise ValueError(f"config.cells {config.cells} needs one measure range each, got {len(ranges)} ranges.")
    if min(config.cells) < 1 or config.emitters < 1 or config.batch_size < 1:
        raise ValueError(f"cells, emitters and batch_size must be at least 1 in {config}.")
    seeds = np.random.SeedSequence(seed).generate_state(config.emitters + 2)
    grid = {"solution_dim": solution_dim, "dims": config.cells, "ranges": ranges, "dtype": config.dtype}
    archive = GridArchive(**grid, learning_rate=config.learning_rate, threshold_min=config.threshold_min, seed=seeds[0])
    result_archive = None if config.learning_rate is None else GridArchive(**grid, seed=seeds[1])
    emitters = [
        EvolutionStrategyEmitter(
            archive,
            x0=np.zeros(solution_dim),
            sigma0=config.sigma0,
            ranker=config.ranker,
            es=config.es,
            selection_rule=config.selection_rule,
            restart_rule=config.restart_rule,
            batch_size=config.batch_size,
            seed=emitter_seed,
        )
        for emitter_seed in seeds[2:]
    ]
    return Scheduler(archive, emitters, result_archive=result_archive)


class Checkpoint(NamedTuple):
    """The result archive's state after some iterations of :func:`illuminate`."""

    iterations: int
    evaluations: int
    cells: int  #: occupied cells (coverage times the number of cells)
    qd_score: float  #: sum of the elites' objectives
    best: float  #: best objective in the archive
    seconds: float  #: wall-clock time since the loop started


def illuminate(
    scheduler: Scheduler,
    evaluate_fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    *,
    iterations: int,
    progress: bool = False,
    log_every: int = 100,
    description: str = "LSI",
) -> list[Checkpoint]:
    """Run the ask -> evaluate -> tell loop of a pyribs scheduler.

    Args:
        scheduler: e.g. from :func:`make_scheduler`; it keeps its state, so calling
            again continues the search.
        evaluate_fn: ``(n, solution_dim)`` solutions to ``(objectives (n,), measures (n, m))``.
        iterations: ask/tell iterations, at least 1.
        progress: show a tqdm bar with the cells filled, QD score and best objective.
        log_every: record a :class:`Checkpoint` every so many iterations (and after the last).
        description: label of the progress bar.

    Returns:
        The checkpoints, the first after ``log_every`` iterations (or the last iteration).

    Raises:
        ValueError: if ``iterations`` or ``log_every`` is below 1.
    """
    if iterations < 1 or log_every < 1:
        raise ValueError(f"iterations and log_every must be at least 1, got {iterations} and {log_every}.")
    result = scheduler.result_archive
    history: list[Checkpoint] = []
    evaluations = 0
    start = time.perf_counter()
    bar = tqdm(total=iterations, desc=description, disable=not progress, mininterval=1.0)
    for iteration in range(1, iterations + 1):
        solutions = scheduler.ask()
        objectives, found = evaluate_fn(solutions)
        scheduler.tell(objectives, found)
        evaluations += len(solutions)
        if iteration % log_every == 0 or iteration == iterations:
            stats = result.stats
            history.append(
                Checkpoint(
                    iteration,
                    evaluations,
                    stats.num_elites,
                    float(stats.qd_score),
                    float(stats.obj_max),
                    time.perf_counter() - start,
                )
            )
            bar.set_postfix(
                cells=stats.num_elites, qd=f"{stats.qd_score:.0f}", best=f"{stats.obj_max:.3f}", refresh=False
            )
            bar.update(iteration - bar.n)
    bar.close()
    return history


@dataclass
class LSIResult:
    """What :func:`run_lsi` found.

    Attributes:
        archive: the best latent vector found in each cell (the scheduler's result archive).
        history: checkpoints of :func:`illuminate`.
        config: the configuration searched with.
        seed: its seed.
    """

    archive: GridArchive
    history: list[Checkpoint]
    config: LSIConfig
    seed: int

    @property
    def seconds(self) -> float:
        """Wall-clock seconds of the whole loop."""
        return self.history[-1].seconds

    def summary(self) -> dict:
        """JSON-ready: the configuration, seed and checkpoints."""
        return {
            "config": asdict(self.config),
            "seed": self.seed,
            "history": [checkpoint._asdict() for checkpoint in self.history],
        }


def run_lsi(
    generator: nn.Module,
    classifier: nn.Module,
    *,
    digit: int | None = 8,
    iterations: int,
    config: LSIConfig = OURS,
    seed: int = 0,
    discriminator: nn.Module | None = None,
    progress: bool = False,
    log_every: int = 100,
) -> LSIResult:
    """Illuminate the latent space of ``generator``: the whole seed experiment in one call.

    Args:
        generator: the GAN's generator (latent size 128).
        classifier: LeNet-5, returning log-probabilities.
        digit: the digit to search for, or ``None`` for every digit at once
            (:func:`evaluate_digits`; ``config.cells`` then needs three entries).
        iterations: ask/tell iterations (the seed ran 30,000).
        config: :data:`OURS` by default, or :data:`SEED_CONFIG`, or your own.
        seed: seeds the search; the same seed gives the same archive.
        discriminator: with a ``digit``, multiply the objective by the
            discriminator's probability that the image is real (see :func:`evaluate`).
        progress: show a progress bar.
        log_every: iterations between checkpoints.

    Returns:
        An :class:`LSIResult`.

    Raises:
        ValueError: for a digit outside 0-9, ``iterations < 1``, or a ``config`` whose
            cells do not fit the measures.
    """
    if digit is None:
        if discriminator is not None:
            raise ValueError("discriminator= goes with a single digit, not with digit=None.")
        ranges = (*MEASURE_RANGES, DIGIT_RANGE)
        evaluate_fn = partial(evaluate_digits, generator=generator, classifier=classifier)
    else:
        _check_digit(digit)
        ranges = MEASURE_RANGES
        evaluate_fn = partial(
            evaluate, generator=generator, classifier=classifier, digit=digit, discriminator=discriminator
        )
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}.")
    scheduler = make_scheduler(
        config, seed=seed, ranges=ranges, solution_dim=getattr(generator, "latent_dim", LATENT_DIM)
    )
    label = f"LSI {config.name}"
    history = illuminate(
        scheduler, evaluate_fn, iterations=iterations, progress=progress, log_every=log_every, description=label
    )
    return LSIResult(scheduler.result_archive, history, config, seed)


# --- Reading the archive ------------------------------------------------------------------------


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
    _check_digit(digit)
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
