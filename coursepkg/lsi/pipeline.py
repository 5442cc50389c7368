"""The LSI search with evaluation and search on different cores: groups of emitters take turns.

In the tutorial's loop (:func:`coursepkg.lsi.search.illuminate`) one core waits
while the other works: pyribs' ask and tell run in Python on one core, then the
networks run, then pyribs again. Here the emitters are split into groups (two by
default: three emitters and two) that share the archive and take turns: while a
:class:`EvaluationWorker` process evaluates one group's solutions, this process
tells the archive and the emitters of the previous group and asks them again.

The networks take more time than pyribs, so the worker would be the bottleneck
while this process waits for it. To balance the two cores, this process can
evaluate the last few solutions of the first group itself (``rows_here``) in the
time it would have waited; the worker always has the next batch queued.

The order of every ask, archive insertion and tell is fixed by the loop, not by
which process finishes first, and each batch is cut the same way (the worker's
part and this process's share) whether the worker is a process
(:class:`EvaluationWorker`) or not (:class:`InlineWorker`), so a seed gives the
same archive either way. Every
solution asked is evaluated once and told once.

Used by :func:`coursepkg.lsi.search.run_lsi` (the LSI chapter) and the LSI benchmark.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import NamedTuple, Protocol

import numpy as np
import torch
from ribs.archives import ArchiveBase
from ribs.emitters import EmitterBase
from ribs.schedulers import Scheduler
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

__all__ = ["Checkpoint", "EvaluationWorker", "InlineWorker", "Timings", "Worker", "illuminate_overlapped"]

Evaluate = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class Checkpoint(NamedTuple):
    """The result archive's state after some iterations of a search."""

    iterations: int
    evaluations: int
    cells: int  #: occupied cells (coverage times the number of cells)
    qd_score: float  #: sum of the elites' objectives
    best: float  #: best objective in the archive
    seconds: float  #: wall-clock time since the loop started

    @classmethod
    def of(cls, archive: ArchiveBase, *, iterations: int, evaluations: int, start: float) -> Checkpoint:
        """The checkpoint of ``archive`` now, ``start`` being the loop's :func:`time.perf_counter`."""
        stats = archive.stats
        seconds = time.perf_counter() - start
        return cls(iterations, evaluations, stats.num_elites, float(stats.qd_score), float(stats.obj_max), seconds)


class Worker(Protocol):
    """Evaluates batches in the order submitted: :meth:`submit` each, then collect each with :meth:`result`."""

    seconds: float  #: time spent evaluating so far (for an :class:`EvaluationWorker`, its child's CPU seconds)

    def submit(self, latents: np.ndarray) -> None: ...

    def result(self) -> tuple[np.ndarray, np.ndarray]: ...


class InlineWorker:
    """A :class:`Worker` that evaluates in this process when asked for a result: nothing overlaps.

    Batches are evaluated in the order submitted, like a worker process's queue.

    Args:
        evaluate: ``(n, d)`` latents to ``(objectives (n,), measures (n, m))``.
    """

    def __init__(self, evaluate: Evaluate) -> None:
        self.evaluate = evaluate
        self.seconds = 0.0
        self._pending: deque[np.ndarray] = deque()

    def submit(self, latents: np.ndarray) -> None:
        self._pending.append(latents)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        start = time.perf_counter()
        try:
            return self.evaluate(self._pending.popleft())
        finally:
            self.seconds += time.perf_counter() - start

    def __enter__(self) -> InlineWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class EvaluationWorker:
    """A :class:`Worker` in a child process with its own torch threads, so evaluation overlaps the search.

    Batches are evaluated in the order submitted; several may wait in its queue.
    Use it as a context manager: leaving the ``with`` block stops the process.

    Args:
        evaluate: a picklable ``(n, d) -> (objectives (n,), measures (n, m))``, e.g. an
            :class:`~coursepkg.lsi.evaluator.Evaluator`; it is sent to the child once.
        threads: torch threads of the child (one: the other core is this process's).

    Raises:
        RuntimeError: from :meth:`result`, when the evaluation raised in the child
            (with its traceback) or the child died.
    """

    def __init__(self, evaluate: Evaluate, *, threads: int = 1) -> None:
        # Fork on Linux: the caller's script is not imported again. A forked child that uses one
        # torch thread does not touch the OpenMP pool it inherits (PyTorch's DataLoader workers
        # rely on the same). Elsewhere spawn, which imports a script again: guard its search with
        # `if __name__ == "__main__":`.
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, evaluate, threads), daemon=True)
        self._process.start()
        child.close()
        self.seconds = 0.0

    def submit(self, latents: np.ndarray) -> None:
        self._connection.send(latents)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        try:
            reply = self._connection.recv()
        except (EOFError, OSError):
            raise RuntimeError(f"The evaluation worker died (exit code {self._process.exitcode}).") from None
        if isinstance(reply, str):
            raise RuntimeError(f"The evaluation failed in the worker process:\n{reply}")
        objectives, measures, seconds = reply
        self.seconds += seconds
        return objectives, measures

    def close(self) -> None:
        """Stop the child process (it finishes the batch it is on)."""
        if self._process.is_alive():
            try:
                self._connection.send(None)
            except OSError:
                pass
            self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._connection.close()

    def __enter__(self) -> EvaluationWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(connection: Connection, evaluate: Evaluate, threads: int) -> None:
    """The child's loop: evaluate each batch received, reply with the results and the CPU seconds taken."""
    torch.set_num_threads(threads)
    while True:
        try:
            latents = connection.recv()
        except EOFError:  # the parent is gone
            return
        if latents is None:
            return
        start = time.process_time()
        try:
            objectives, measures = evaluate(latents)
        except Exception:  # the parent raises it, with this traceback
            connection.send(traceback.format_exc())
            continue
        connection.send((objectives, measures, time.process_time() - start))


@dataclass
class Timings:
    """Where the wall-clock time of :func:`illuminate_overlapped` went, in seconds.

    ``ask``, ``archive``, ``tell`` and ``here`` run in this process; ``evaluate``
    in the worker, overlapping them (its CPU seconds); ``wait`` is this process
    waiting for the worker.
    """

    ask: float = 0.0  #: the emitters' ask (CMA-ES sampling and eigendecompositions)
    archive: float = 0.0  #: inserting batches into the archive and the result archive
    tell: float = 0.0  #: the emitters' tell (ranking, CMA-ES updates, restarts)
    wait: float = 0.0  #: waiting for the worker's results
    evaluate: float = 0.0  #: the worker's CPU time in the networks and measures
    here: float = 0.0  #: this process's time evaluating its share (``rows_here``)
    total: float = 0.0  #: the whole loop
    asked: int = 0  #: solutions the emitters asked for
    told: int = 0  #: solutions told back, with their objectives and measures

    @property
    def search(self) -> float:
        """Seconds of pyribs in this process: ask, archive and tell."""
        return self.ask + self.archive + self.tell


def illuminate_overlapped(
    scheduler: Scheduler,
    worker: Worker,
    *,
    iterations: int,
    groups: int = 2,
    rows_here: int = 0,
    evaluate_here: Evaluate | None = None,
    log_every: int = 100,
    progress: bool = False,
    description: str = "LSI",
) -> tuple[list[Checkpoint], Timings]:
    """Run the scheduler's emitters in ``groups`` that take turns, one evaluated while the next is told and asked.

    One iteration asks, evaluates and tells every emitter once, as
    :func:`~coursepkg.lsi.search.illuminate` does, but group by group: group
    ``g``'s results are told and its emitters asked again while the worker
    evaluates the groups queued after it.

    Args:
        scheduler: from :func:`~coursepkg.lsi.search.make_scheduler`; its archive,
            result archive and emitters are used directly (not its ask and tell).
        worker: an :class:`EvaluationWorker` (overlapping) or :class:`InlineWorker`;
            both give the same archive.
        iterations: at least 1; each evaluates every emitter's batch once.
        groups: how many groups the emitters are split into, from 1 (the tutorial's
            order, nothing to overlap) to the number of emitters.
        rows_here: the last this many solutions of the first group's batches (its
            last emitters' batches side by side) are evaluated by ``evaluate_here`` in
            this process, when their results are due, instead of by the worker: fewer
            than that group's solutions.
        evaluate_here: how this process evaluates them (the worker's evaluation);
            needed when ``rows_here > 0``.
        log_every: record a :class:`Checkpoint` every so many iterations (and after the last).
        progress: show a tqdm bar.
        description: label of the progress bar.

    Returns:
        The checkpoints of the result archive, and the :class:`Timings`.

    Raises:
        ValueError: for ``iterations`` or ``log_every`` below 1, ``groups`` outside
            1 to the number of emitters, or ``rows_here`` not below the first
            group's solutions (or without ``evaluate_here``).
    """
    emitters = list(scheduler.emitters)
    if iterations < 1 or log_every < 1:
        raise ValueError(f"iterations and log_every must be at least 1, got {iterations} and {log_every}.")
    if not 1 <= groups <= len(emitters):
        raise ValueError(f"groups must be from 1 to the {len(emitters)} emitters, got {groups}.")
    teams = [list(team) for team in np.array_split(np.array(emitters, dtype=object), groups)]
    first_rows = sum(emitter.batch_size for emitter in teams[0])
    if not 0 <= rows_here < first_rows or (rows_here and evaluate_here is None):
        raise ValueError(
            f"rows_here must be from 0 to {first_rows - 1} (the first group asks for {first_rows} "
            f"solutions) and come with evaluate_here, got {rows_here}."
        )
    # How many solutions at the end of each group's batches this process evaluates; the worker, the rest.
    shares_here = [rows_here if g == 0 else 0 for g in range(groups)]
    archive, result = scheduler.archive, scheduler.result_archive
    timings = Timings()
    history: list[Checkpoint] = []
    start = time.perf_counter()
    bar = tqdm(total=iterations, desc=description, disable=not progress, mininterval=1.0)

    def ask_and_submit(g: int) -> tuple[list[np.ndarray], np.ndarray]:
        """Group ``g``'s batches, one per emitter, and the same side by side; the worker's part submitted."""
        began = time.perf_counter()
        batches = [emitter.ask() for emitter in teams[g]]
        timings.ask += time.perf_counter() - began
        solutions = np.concatenate(batches)
        timings.asked += len(solutions)
        worker.submit(solutions[: len(solutions) - shares_here[g]])
        return batches, solutions

    def evaluated(g: int, solutions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        here = None
        if shares_here[g]:  # first this process's share, while the worker works on its own
            began = time.perf_counter()
            here = evaluate_here(solutions[-shares_here[g] :])
            timings.here += time.perf_counter() - began
        began = time.perf_counter()
        objectives, measures = worker.result()
        timings.wait += time.perf_counter() - began
        if here is None:
            return objectives, measures
        return np.concatenate([objectives, here[0]]), np.concatenate([measures, here[1]])

    with threadpool_limits(limits=1, user_api="blas"):  # 128 x 128 matrices: one thread is fastest
        asked = [ask_and_submit(g) for g in range(groups)]  # the worker's queue: every group
        for iteration in range(1, iterations + 1):
            for g, team in enumerate(teams):
                batches, solutions = asked[g]
                objectives, measures = evaluated(g, solutions)
                _tell(team, batches, solutions, objectives, measures, archive, result, timings)
                if iteration < iterations:
                    asked[g] = ask_and_submit(g)  # queued behind the other groups
            if iteration % log_every == 0 or iteration == iterations:
                history.append(Checkpoint.of(result, iterations=iteration, evaluations=timings.told, start=start))
                bar.set_postfix(cells=history[-1].cells, qd=f"{history[-1].qd_score:.0f}", refresh=False)
                bar.update(iteration - bar.n)
    bar.close()
    timings.evaluate = worker.seconds
    timings.total = time.perf_counter() - start
    return history, timings


def _tell(
    team: Sequence[EmitterBase],
    batches: Sequence[np.ndarray],
    solutions: np.ndarray,
    objectives: np.ndarray,
    measures: np.ndarray,
    archive: ArchiveBase,
    result: ArchiveBase,
    timings: Timings,
) -> None:
    """pyribs' ``Scheduler.tell`` for one group: add the batch to both archives, tell each emitter its share.

    ``solutions`` are the emitters' ``batches`` side by side, as the worker evaluated them.
    """
    began = time.perf_counter()
    add_info = archive.add(solution=solutions, objective=objectives, measures=measures)
    if result is not archive:
        result.add(solution=solutions, objective=objectives, measures=measures)
    told = time.perf_counter()
    timings.archive += told - began
    position = 0
    for emitter, batch in zip(team, batches):
        share = slice(position, position + len(batch))
        emitter.tell(
            batch, objectives[share], measures[share], add_info={name: value[share] for name, value in add_info.items()}
        )
        position += len(batch)
    timings.tell += time.perf_counter() - told
    timings.told += len(solutions)
