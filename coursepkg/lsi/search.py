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
which fills the tutorial's cells with about a quarter of its evaluations and runs its
emitters in two groups beside a worker process (:mod:`coursepkg.lsi.pipeline`;
see :mod:`coursepkg.lsi.benchmark`). :func:`illuminate` is the tutorial's
ask-evaluate-tell loop (the LSI lab's last exercise) and :func:`run_lsi` the whole
experiment in one call, used by the LSI chapter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace

import numpy as np
from ribs.archives import GridArchive
from ribs.emitters import EvolutionStrategyEmitter
from ribs.schedulers import Scheduler
from torch import nn
from tqdm.auto import tqdm

from coursepkg.lsi.cma_es import LeanCMAEvolutionStrategy
from coursepkg.lsi.evaluator import Evaluator
from coursepkg.lsi.measures import DIGIT_RANGE, MEASURE_RANGES
from coursepkg.lsi.pipeline import Checkpoint, EvaluationWorker, InlineWorker, Timings, illuminate_overlapped
from coursepkg.mnist.models import LATENT_DIM
from coursepkg.util.runtime import available_cores, torch_threads

__all__ = [
    "EVOLUTION_STRATEGIES",
    "OURS",
    "OURS_DIAGONAL",
    "OURS_FLOAT32",
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
        es: evolution strategy: pyribs' ``"cma_es"``, ``"sep_cma_es"`` (diagonal
            covariance), ``"lm_ma_es"`` (limited memory), ..., or ``"lean_cma_es"``,
            pyribs' CMA-ES without its per-call overheads (:mod:`coursepkg.lsi.cma_es`).
        selection_rule: ``"filter"`` (parents are the solutions the archive took) or ``"mu"``
            (the better half of each batch, by the ranker).
        restart_rule: ``"no_improvement"``, ``"basic"``, or restart every so many iterations.
        learning_rate: ``None`` for CMA-ME; a value in ``(0, 1]`` makes the archive
            anneal its cells' thresholds (CMA-MAE) and adds a plain result archive.
        threshold_min: the starting threshold of every cell under CMA-MAE.
        dtype: ``"float32"`` or ``"float64"``, for solutions and the evolution strategies.
        groups: :func:`run_lsi` splits the emitters into this many groups that take
            turns, one evaluated while the others are told and asked
            (:mod:`coursepkg.lsi.pipeline`); 1 is the tutorial's loop.
        precision: the networks' precision in the search's evaluations,
            ``"float32"``, ``"bfloat16"``, or ``"auto"``: bfloat16 where the CPU multiplies
            it natively, float32 elsewhere (:func:`~coursepkg.lsi.evaluator.resolve_precision`).
        eigen_gap: with ``es="lean_cma_es"``, evaluations between eigendecompositions
            of each covariance as a multiple of pyribs' gap (1 for pyribs' own).
        share_here: with ``groups > 1``, this share of each iteration's solutions, in
            ``[0, 1)`` (the last of the first group's, rounded to whole solutions), is
            evaluated by the search's own process in the time it would wait for its worker
            (``rows_here`` of :func:`~coursepkg.lsi.pipeline.illuminate_overlapped`); it
            balances the two cores when the networks take longer than pyribs.
        latent_bound: ``None``, or keep every latent coordinate within ``[-latent_bound, latent_bound]``
            (the emitters redraw samples outside it). The generator is piecewise linear far
            from the origin, so an unbounded emitter can drift to huge latents whose images
            are all saturated ink and fill nothing new.
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
    groups: int = 1
    precision: str = "float32"
    eigen_gap: float = 1.0
    share_here: float = 0.0
    latent_bound: float | None = None

    @property
    def evaluations_per_iteration(self) -> int:
        """Images generated and scored per ask/tell iteration: ``emitters * batch_size``."""
        return self.emitters * self.batch_size


#: The seed tutorial's CMA-ME: 5 CMA-ES emitters of 30, sigma0 0.2, two-stage improvement ranking.
SEED_CONFIG = LSIConfig("seed (CMA-ME)")
#: The course's configuration, CMA-MAE: the seed's five CMA-ES emitters and sigma0, with 60 solutions each;
#: an archive whose cell thresholds anneal with learning rate 0.1 from 0 (ranked by improvement over them,
#: ``"imp"``, the better half of each batch as parents), a plain result archive, float32 solutions kept
#: within [-5, 5] per coordinate; pyribs' CMA-ES made lean, eigendecomposing each covariance a quarter as
#: often, two groups of emitters taking turns beside a worker process (which leaves a quarter of each
#: iteration's solutions to the search's process), and the networks in bfloat16 where the CPU multiplies it
#: natively (AVX512-BF16 or AMX; float32 elsewhere, where bfloat16 is slower). See :mod:`coursepkg.lsi.benchmark`.
OURS = LSIConfig(
    "ours (CMA-MAE)",
    batch_size=60,
    ranker="imp",
    selection_rule="mu",
    learning_rate=0.1,
    threshold_min=0.0,
    latent_bound=5.0,
    dtype="float32",
    es="lean_cma_es",
    groups=2,
    precision="auto",
    eigen_gap=4.0,
    share_here=0.25,
)
#: :data:`OURS` with float32 networks: the archive bfloat16 is measured against.
OURS_FLOAT32 = replace(OURS, name="ours, float32", precision="float32")
#: :data:`OURS` with a diagonal CMA-ES (``"sep_cma_es"``, which has no eigendecomposition to space out):
#: cheaper iterations, fewer cells.
OURS_DIAGONAL = replace(OURS, name="ours, diagonal", es="sep_cma_es", eigen_gap=1.0)
#: Evolution strategies of the course, by the name an :class:`LSIConfig` gives them.
EVOLUTION_STRATEGIES = {"lean_cma_es": LeanCMAEvolutionStrategy}


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
    if config.latent_bound is not None and not config.latent_bound > 0:
        raise ValueError(f"latent_bound must be None or above 0, got {config.latent_bound} in {config}.")
    es_kwargs = None
    if config.es in EVOLUTION_STRATEGIES:
        es_kwargs = {"eigen_gap": config.eigen_gap}
    elif config.eigen_gap != 1:
        raise ValueError(f"eigen_gap goes with es='lean_cma_es' (pyribs' strategies keep their own), in {config}.")
    bounds = None if config.latent_bound is None else [(-config.latent_bound, config.latent_bound)] * solution_dim
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
            es=EVOLUTION_STRATEGIES.get(config.es, config.es),
            es_kwargs=es_kwargs,
            selection_rule=config.selection_rule,
            restart_rule=config.restart_rule,
            batch_size=config.batch_size,
            bounds=bounds,
            seed=emitter_seed,
        )
        for emitter_seed in seeds[2:]
    ]
    return Scheduler(archive, emitters, result_archive=result_archive)


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
            history.append(Checkpoint.of(result, iterations=iteration, evaluations=evaluations, start=start))
            bar.set_postfix(cells=history[-1].cells, qd=f"{history[-1].qd_score:.0f}", refresh=False)
            bar.update(iteration - bar.n)
    bar.close()
    return history


@dataclass
class LSIResult:
    """What :func:`run_lsi` found.

    Attributes:
        archive: the best latent vector found in each cell (the scheduler's result archive).
        history: checkpoints of the search.
        config: the configuration searched with, its precision the one that ran (``"auto"`` resolved).
        seed: its seed.
        timings: where the search's time went.
    """

    archive: GridArchive
    history: list[Checkpoint]
    config: LSIConfig
    seed: int
    timings: Timings

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
    overlap: bool | None = None,
    progress: bool = False,
    log_every: int = 100,
) -> LSIResult:
    """Illuminate the latent space of ``generator``: the whole seed experiment in one call.

    The emitters take turns in ``config.groups`` groups (:func:`~coursepkg.lsi.pipeline.illuminate_overlapped`),
    and the images are scored by an :class:`~coursepkg.lsi.evaluator.Evaluator` in
    ``config.precision``, in a worker process when ``overlap``.

    Args:
        generator: the GAN's generator (latent size 128).
        classifier: LeNet-5, returning log-probabilities.
        digit: the digit to search for, or ``None`` for every digit at once
            (:func:`~coursepkg.lsi.measures.evaluate_digits`; ``config.cells`` then needs three entries).
        iterations: ask/tell iterations (the seed ran 30,000).
        config: :data:`OURS` by default, or :data:`SEED_CONFIG`, or your own.
        seed: seeds the search; the same seed gives the same archive, with or without ``overlap``.
        discriminator: with a ``digit``, multiply the objective by the
            discriminator's probability that the image is real (see :func:`~coursepkg.lsi.measures.evaluate`).
        overlap: evaluate in a worker process (one torch thread) while this one runs
            pyribs (and evaluates ``config.share_here`` of each iteration's solutions on one thread); by
            default when ``config.groups > 1`` and this process may use two cores.
        progress: show a progress bar.
        log_every: iterations between checkpoints.

    Returns:
        An :class:`LSIResult`.

    Raises:
        ValueError: for a digit outside 0-9, ``iterations < 1``, a ``config`` whose
            cells do not fit the measures, or a ``share_here`` outside ``[0, 1)``.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}.")
    if not 0 <= config.share_here < 1:
        raise ValueError(f"share_here must be in [0, 1), got {config.share_here} in {config}.")
    evaluator = Evaluator(generator, classifier, digit=digit, discriminator=discriminator, precision=config.precision)
    config = replace(config, precision=evaluator.precision)  # "auto" made concrete, for the result
    ranges = MEASURE_RANGES if digit is not None else (*MEASURE_RANGES, DIGIT_RANGE)
    scheduler = make_scheduler(config, seed=seed, ranges=ranges, solution_dim=evaluator.latent_dim)
    if overlap is None:
        overlap = config.groups > 1 and available_cores() >= 2
    worker = EvaluationWorker(evaluator) if overlap else InlineWorker(evaluator)
    # With a worker process, this process's own share of the evaluation runs on one thread: the other core is busy.
    with worker, torch_threads(1) if overlap else nullcontext():
        history, timings = illuminate_overlapped(
            scheduler,
            worker,
            iterations=iterations,
            groups=config.groups,
            rows_here=round(config.share_here * config.evaluations_per_iteration),
            evaluate_here=evaluator,
            log_every=log_every,
            progress=progress,
            description=f"LSI {config.name}",
        )
    return LSIResult(scheduler.result_archive, history, config, seed, timings)
