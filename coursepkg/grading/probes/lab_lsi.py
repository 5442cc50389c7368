"""Probes of the Latent Space Illumination lab (``solutions/lab_lsi``): how its checks run a student's code.

The judges are in :mod:`coursepkg.grading.lab_lsi`. The probes call the measures on hand-made images
and real digits (:func:`image_cases`), ``digit_probability`` and ``evaluate`` with copies of the shipped
generator and LeNet-5 (:func:`shipped_models`, which import no answer key), and ``illuminate`` on a small
seeded pyribs scheduler over a cheap problem (:func:`small_scheduler`, :class:`CountingProblem`).

A later function that calls the student's earlier ones (``lightness`` calling ``boldness``; ``evaluate``
calling ``boldness``, ``lightness`` and ``digit_probability``, directly or through a helper in a cell the
student added) runs with the references instead (:func:`~coursepkg.grading.observe.substituted`), called
as the student's own are. Those are the answers to *other* exercises, named in each probe's ``uses``; the
sandbox hands a probe those alone (:func:`~coursepkg.grading.observe.reference`).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import numpy as np
import torch
from ribs.archives import GridArchive
from ribs.emitters import EvolutionStrategyEmitter
from ribs.schedulers import Scheduler
from torch import nn

from coursepkg.grading.observe import (
    Observations,
    Probe,
    carries_graph,
    describe_error,
    network_flags,
    outcome,
    probes,
    reference,
    seed,
    substituted,
)
from coursepkg.mnist import data as mnist_data
from coursepkg.mnist import pretrained

__all__ = [
    "EVALUATE_CASES",
    "LOOPS",
    "PROBABILITY_CASES",
    "PROBES",
    "SEED",
    "CountingProblem",
    "fixed_latents",
    "hand_made",
    "image_cases",
    "quantised_noise",
    "real_digits",
    "run_loop",
    "shipped_models",
    "small_scheduler",
]

#: Where the references of the measures and of the objective are, for :func:`reference`.
_MEASURES = "coursepkg.lsi.measures"

SEED = 2025


# ---------------------------------------------------------------- fixed inputs


def hand_made() -> dict[str, torch.Tensor]:
    """``(1, 1, 28, 28)`` images in [0, 1] whose measures are known by construction."""
    blank = torch.zeros(1, 1, 28, 28)
    full = torch.ones(1, 1, 28, 28)
    exact = torch.zeros(1, 1, 28, 28)
    exact[0, 0, 10, 5:15] = 0.5  # ten pixels of exactly 0.5: they count
    exact[0, 0, 12, 5:9] = 1.0
    exact[0, 0, 20, :] = 0.49  # just below the threshold: they do not
    one = torch.zeros(1, 1, 28, 28)
    one[0, 0, 14, 14] = 0.75
    return {"blank": blank, "full": full, "pixels of exactly 0.5": exact, "one bright pixel": one}


def quantised_noise(count: int) -> torch.Tensor:
    """Random images whose pixels are multiples of 1/8, so that many are exactly 0.5."""
    g = torch.Generator().manual_seed(seed(SEED))
    return torch.randint(0, 9, (count, 1, 28, 28), generator=g).float() / 8


def real_digits() -> torch.Tensor:
    """Sixteen held-out digits (two of each of 0-7, picked by the fixtures' seed), ``(16, 1, 28, 28)`` in [0, 1]."""
    return _real_digits(seed(SEED))


@cache
def _real_digits(chosen: int) -> torch.Tensor:
    images, labels = mnist_data.course_split("heldout")
    g = torch.Generator().manual_seed(chosen)
    picks = []
    for digit in range(8):
        indices = torch.nonzero(labels == digit)[:, 0]
        picks.append(indices[torch.randperm(len(indices), generator=g)[:2]])
    return (images[torch.cat(picks)] + 1) / 2


def image_cases() -> dict[str, torch.Tensor]:
    """The measures' inputs by case name: the hand-made ones (each a batch of one), noise and real digits."""
    cases = dict(hand_made())
    cases["noise"] = quantised_noise(6)
    cases["real digits"] = real_digits()
    return cases


@cache
def shipped_models() -> tuple[nn.Module, nn.Module]:
    """The shipped generator and LeNet-5, in eval mode, their parameters requiring grad as loaded."""
    return pretrained.load("generator").eval(), pretrained.load("lenet5").eval()


def _fresh_models() -> tuple[nn.Module, nn.Module]:
    """Copies of :func:`shipped_models` for one call of student code, which may switch their mode or freeze them."""
    generator, lenet = shipped_models()
    return copy.deepcopy(generator), copy.deepcopy(lenet)


def fixed_latents(count: int) -> np.ndarray:
    """``(count, 128)`` float64 latent vectors, as ``scheduler.ask()`` hands them out."""
    return np.random.default_rng(seed(SEED)).normal(size=(count, 128))


# ---------------------------------------------------------------- observing student code


def _kind(value: Any) -> str:
    """What kind of value a student returned, as a message names it."""
    if isinstance(value, np.ndarray):
        return "numpy array"
    if isinstance(value, torch.Tensor):
        return "torch tensor"
    return type(value).__name__


def _returned(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Observations:
    """Call student code and record what came back.

    Unlike :func:`outcome` on the whole value, each entry of a returned tuple or list
    keeps its shape (an ``(1,)`` array of a batch of one stays an array).

    Returns:
        ``{"value": ...}``: what :func:`outcome` makes of the value (of each entry of a
        tuple or list, as a list), or the sentence saying what the call raised;
        ``"kinds"``: :func:`_kind` of the value (a list for a tuple or list);
        ``"graph"``: whether it is part of an autograd graph.
    """
    try:
        value = function(*args, **kwargs)
    except Exception as error:  # the student's code may raise anything: outcome describes it
        return {"value": outcome(_reraise, error), "kinds": "nothing", "graph": False}
    if isinstance(value, (tuple, list)):
        return {
            "value": [outcome(lambda v=v: v) for v in value],
            "kinds": [_kind(v) for v in value],
            "graph": carries_graph(value),
        }
    return {"value": outcome(lambda: value), "kinds": _kind(value), "graph": carries_graph(value)}


def _reraise(error: Exception) -> None:
    """Raise ``error`` again, for :func:`outcome` to describe (its traceback still ends in the student's code)."""
    raise error


def _called_as(student: Any, answer: Callable[..., Any], prepare: Callable[..., tuple]) -> Callable[..., Any]:
    """The reference, callable the way the student's own function of the same name is called.

    The arguments of a call are bound to the student's signature (whatever its parameter
    names), taken in its order, and given to the reference positionally after ``prepare``.

    Args:
        student: the student's function, or anything else when it is not defined.
        answer: the answer key's function.
        prepare: maps the positional arguments to those the reference takes.
    """
    try:
        signature = inspect.signature(student)
    except (TypeError, ValueError):
        signature = inspect.signature(answer)

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            args = tuple(bound.arguments.values())
        except TypeError:
            pass  # called in a way the student's own would not accept: give the reference the arguments as they are
        return answer(*prepare(*args))

    return call


def _images(images: Any) -> torch.Tensor:
    """Images as the references take them: a float tensor with one row of 784 values per image."""
    images = torch.as_tensor(images)
    return images.reshape(len(images), -1).float()


def _key(name: str) -> str:
    """The key of the reference of the exercise ``name``, for :func:`reference` and :attr:`Probe.uses`."""
    return f"{_MEASURES}:{name}"


def _references(namespace: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Callable[..., Any]]:
    """The references of the earlier exercises ``names``, to substitute for the student's own."""
    prepare: dict[str, Callable[..., tuple]] = {
        "boldness": lambda images, *_: (_images(images),),
        "lightness": lambda images, *_: (_images(images),),
        "digit_probability": lambda classifier, images, digit, *_: (classifier, _images(images), int(digit)),
    }
    return {name: _called_as(namespace.get(name), reference(_key(name)), prepare[name]) for name in names}


# ---------------------------------------------------------------- boldness and lightness


#: Per measure, the earlier exercises its function may call: graded with their references.
_EARLIER: dict[str, tuple[str, ...]] = {"boldness": (), "lightness": ("boldness",)}


def _probe_measure(name: str) -> Callable[[Mapping[str, Any]], Observations]:
    """Probe of ``boldness`` or ``lightness``: every image case, and the noise flattened to ``(6, 784)``."""
    earlier = _EARLIER[name]

    def probe(namespace: Mapping[str, Any]) -> Observations:
        function = namespace[name]
        cases = image_cases()
        cases["flat"] = cases["noise"].reshape(-1, 784)
        # Graded on its own: a lightness that calls boldness gets the reference's.
        with substituted(function, _references(namespace, earlier)):
            return {case: outcome(function, images.clone()) for case, images in cases.items()}

    return probe


# ---------------------------------------------------------------- the objective


#: The calls of digit_probability, by case name: (how many of the real digits, digit). The visible check judges "8".
PROBABILITY_CASES: dict[str, tuple[int, int]] = {"8": (16, 8), "3": (16, 3), "0": (16, 0), "9": (16, 9), "one": (1, 8)}


def _probe_probability(namespace: Mapping[str, Any]) -> Observations:
    function = namespace["digit_probability"]
    seen = {}
    for case, (count, digit) in PROBABILITY_CASES.items():
        _, lenet = _fresh_models()
        images = real_digits()[:count].clone()
        seen[case] = _returned(function, lenet, images, digit)
        seen[case]["flags"] = network_flags(lenet)
        seen[case]["images changed"] = not torch.equal(images, real_digits()[:count])
    return seen


# ---------------------------------------------------------------- evaluate


_STUDENT_MEASURES = ("boldness", "lightness", "digit_probability")
#: (digit, number of latent vectors) of the calls of evaluate; the visible check judges the first.
EVALUATE_CASES = ((8, 12), (5, 7), (9, 1), (0, 3))


def _probe_evaluate(namespace: Mapping[str, Any]) -> Observations:
    function = namespace["evaluate"]
    seen = {}
    # Graded on its own: the functions of the earlier exercises are the references.
    with substituted(function, _references(namespace, _STUDENT_MEASURES)):
        for digit, count in EVALUATE_CASES:
            generator, lenet = _fresh_models()
            # As section 6 calls it: the latents positionally, the rest by the names the exercise gives.
            case = _returned(function, fixed_latents(count), generator=generator, classifier=lenet, digit=digit)
            case["flags"] = {"the generator": network_flags(generator), "the classifier": network_flags(lenet)}
            seen[f"{digit} {count}"] = case
    return seen


# ---------------------------------------------------------------- the ask/evaluate/tell loop


def small_scheduler(seed: int = SEED) -> Scheduler:
    """A small seeded CMA-ME: a 10 x 10 archive over a 4-d search space, two emitters of batch 6."""
    archive = GridArchive(solution_dim=4, dims=[10, 10], ranges=[(-1, 1), (-1, 1)], seed=seed)
    emitters = [
        EvolutionStrategyEmitter(archive, x0=np.zeros(4), sigma0=0.5, ranker="2imp", batch_size=6, seed=seed + i)
        for i in range(2)
    ]
    return Scheduler(archive, emitters)


class CountingProblem:
    """A cheap problem for the loop: objective ``-|x|^2``, measures the first two coordinates."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def __call__(self, solutions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        solutions = np.asarray(solutions)
        self.batch_sizes.append(len(solutions))
        return -np.sum(solutions**2, axis=1), solutions[:, :2].copy()


def _archive_contents(archive: GridArchive) -> dict[str, torch.Tensor]:
    data = archive.data()
    order = np.argsort(data["index"])
    return {
        field: torch.from_numpy(np.asarray(data[field])[order]).double()
        for field in ("index", "objective", "measures", "solution")
    }


def run_loop(loop: Callable[[Scheduler, CountingProblem, int], Any], iterations: int, seed: int) -> Observations:
    """Run ``loop(scheduler, problem, iterations)`` on a fresh small scheduler; record the archive and the calls."""
    scheduler, problem = small_scheduler(seed), CountingProblem()
    try:
        returned = loop(scheduler, problem, iterations)
    except Exception as error:  # the student's code may raise anything
        return {"raised": describe_error(error), "batch_sizes": problem.batch_sizes}
    return {
        "archive": _archive_contents(scheduler.archive),
        "batch_sizes": problem.batch_sizes,
        "returned": _kind(returned),
    }


#: (iterations, seed) of the loops run: the visible check judges the first.
LOOPS = ((7, SEED), (1, SEED + 1), (20, SEED + 2))


def _probe_illuminate(namespace: Mapping[str, Any]) -> Observations:
    function = namespace["illuminate"]
    # As section 6 calls it: three positional arguments.

    def loop(scheduler: Scheduler, evaluate: CountingProblem, iterations: int) -> Any:
        return function(scheduler, evaluate, iterations)

    return {f"{iterations} {start}": run_loop(loop, iterations, seed(start)) for iterations, start in LOOPS}


PROBES: dict[str, Probe] = probes(
    __name__,
    *(
        Probe(name, (name,), _probe_measure(name), tuple(_key(e) for e in _EARLIER[name]))
        for name in ("boldness", "lightness")
    ),
    Probe("digit_probability", ("digit_probability",), _probe_probability),
    Probe("evaluate", ("evaluate",), _probe_evaluate, tuple(_key(name) for name in _STUDENT_MEASURES)),
    Probe("illuminate", ("illuminate",), _probe_illuminate),
)
