"""The quality-diversity search of Latent Space Illumination, with pyribs.

Fontaine et al. (2021) search a GAN's latent space with a quality-diversity
algorithm: among the latent vectors whose images a classifier calls an eight,
keep the best one in each cell of a grid over two image measures
(:mod:`coursepkg.lsi.measures`). The pyribs tutorial "Illuminating the Latent
Space of an MNIST GAN" does it with CMA-ME (Fontaine et al. 2020): a 200 x 200
:class:`~ribs.archives.GridArchive`, five
:class:`~ribs.emitters.EvolutionStrategyEmitter` (CMA-ES, ``sigma0=0.2``,
two-stage improvement ranking, 30 solutions each) and a
:class:`~ribs.schedulers.Scheduler`, for 30,000 iterations.

:data:`SEED_CONFIG` is that setting and :data:`OURS` the course's CMA-MAE,
which fills the tutorial's cells with a sixth of its evaluations
(:data:`OURS_DIAGONAL` trades cells for speed; see :mod:`coursepkg.lsi.benchmark`).
:func:`illuminate` is the ask-evaluate-tell loop (the LSI lab's last exercise)
and :func:`run_lsi` the whole experiment in one call, used by the LSI chapter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import NamedTuple

import numpy as np
from ribs.archives import GridArchive
from ribs.emitters import EvolutionStrategyEmitter
from ribs.schedulers import Scheduler
from torch import nn
from tqdm.auto import tqdm

from coursepkg.lsi.measures import DIGIT_RANGE, MEASURE_RANGES, check_digit, evaluate, evaluate_digits
from coursepkg.mnist.models import LATENT_DIM

__all__ = [
    "OURS",
    "OURS_DIAGONAL",
    "SEED_CONFIG",
    "Checkpoint",
    "LSIConfig",
    "LSIResult",
    "illuminate",
    "make_scheduler",
    "run_lsi",
]


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
#: a plain result archive, and float32. See :mod:`coursepkg.lsi.benchmark` for the comparison.
OURS = LSIConfig("ours (CMA-MAE)", ranker="imp", learning_rate=0.01, threshold_min=0.0, dtype="float32")
#: :data:`OURS` with a diagonal CMA-ES (``"sep_cma_es"``): iterations 30 % shorter, a quarter fewer cells.
OURS_DIAGONAL = replace(OURS, name="ours, diagonal", es="sep_cma_es")


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
        check_digit(digit)
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
