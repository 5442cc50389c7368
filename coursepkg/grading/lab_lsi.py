"""Checks of the Latent Space Illumination lab (``solutions/lab_lsi``).

The measures are checked on hand-made images whose answers are known by
construction (pixels of exactly 0.5, a blank image, a full one, each a batch of
one) and on real digits; the objective on real digits with the shipped LeNet-5
(digits 0, 3, 8 and 9, and a batch of one); ``evaluate`` on fixed latent vectors
through the shipped generator. The ask/evaluate/tell loop runs on a small seeded
pyribs scheduler over a cheap quadratic problem, and must leave exactly the
archive that :func:`coursepkg.lsi.search.illuminate` leaves on an identical
scheduler. Wrong values are matched against the mistakes students make (``>``
for ``>=``, dividing by 784 or by ``boldness + 1``, log-probabilities, images
left in ``[-1, 1]`` or shifted by ``1 / 2``, measures swapped) to say which one was made.

What the exercise texts fix, and so what is checked (no more):

* the measures and ``digit_probability`` return ``n`` values, a tensor or a numpy
  array of shape ``(n,)`` of any dtype, also for a batch of one; they are called
  positionally, so their parameter names are free;
* ``digit_probability`` returns no autograd graph (the probe's LeNet-5, as the
  lab's, has parameters that require grad, so a missing ``torch.no_grad()`` shows),
  and leaves the classifier (its mode, its parameters' ``requires_grad``) and the
  images as it found them;
* ``evaluate`` is called as section 6 calls it, ``evaluate(latents,
  generator=..., classifier=..., digit=...)``: those three names are fixed. It
  returns a tuple or a list of two numpy arrays (float32 or float64) and leaves
  both networks as it found them;
* ``illuminate`` is called as section 6 calls it, with three positional
  arguments (names free, extra optional parameters allowed), and returns ``None``.

Each exercise is graded on its own: a later function that calls the student's
earlier ones (``lightness`` calling ``boldness``; ``evaluate`` calling
``boldness``, ``lightness`` and ``digit_probability``, directly or through a
helper in a cell the student added) runs with the references instead
(:func:`coursepkg.grading.checks.substituted`), called as the student's own are.
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

from coursepkg.grading.checks import (
    Check,
    CheckFailed,
    Observations,
    assert_matches,
    bind,
    carries_graph,
    check_pair,
    close,
    describe_error,
    network_flags,
    outcome,
    registry,
    require,
    substituted,
)
from coursepkg.lsi import measures as lsi_measures
from coursepkg.lsi import search as lsi_search
from coursepkg.mnist import data as mnist_data
from coursepkg.mnist import pretrained

__all__ = ["CHECKS", "ANSWER_KEYS", "check", "small_scheduler"]

#: The modules that hold this lab's answers (the measures, the objective and the search loop). The isolated re-run
#: makes them, and every
#: module that imports them, unimportable (:func:`coursepkg.grading.isolation.blocked_modules`).
ANSWER_KEYS: tuple[str, ...] = ("coursepkg.lsi.measures", "coursepkg.lsi.search")

_SEED = 2025

#: Added to a failure on a batch of one image (or one latent vector).
_KEEP_THE_BATCH = (
    "Each image gets its own value: return shape (n,), also (1,) for a batch of one "
    "(reduce along dim=1 only, and do not squeeze the batch dimension)."
)


# ---------------------------------------------------------------- fixed inputs


def _hand_made() -> dict[str, torch.Tensor]:
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


def _quantised_noise(count: int) -> torch.Tensor:
    """Random images whose pixels are multiples of 1/8, so that many are exactly 0.5."""
    g = torch.Generator().manual_seed(_SEED)
    return torch.randint(0, 9, (count, 1, 28, 28), generator=g).float() / 8


@cache
def _real_digits() -> torch.Tensor:
    """Sixteen held-out digits (two of each of 0-7), ``(16, 1, 28, 28)`` in [0, 1]."""
    images, labels = mnist_data.course_split("heldout")
    picks = torch.cat([torch.nonzero(labels == d)[:2, 0] for d in range(8)])
    return (images[picks] + 1) / 2


def _image_cases() -> dict[str, torch.Tensor]:
    """The measures' inputs by case name: the hand-made ones (each a batch of one), noise and real digits."""
    cases = dict(_hand_made())
    cases["noise"] = _quantised_noise(6)
    cases["real digits"] = _real_digits()
    return cases


@cache
def _models() -> tuple[nn.Module, nn.Module]:
    """The shipped generator and LeNet-5, in eval mode, their parameters requiring grad as loaded."""
    return pretrained.load("generator").eval(), pretrained.load("lenet5").eval()


def _fresh_models() -> tuple[nn.Module, nn.Module]:
    """Copies of :func:`_models` for one call of student code, which may switch their mode or freeze them."""
    generator, lenet = _models()
    return copy.deepcopy(generator), copy.deepcopy(lenet)


def _latents(count: int) -> np.ndarray:
    """``(count, 128)`` float64 latent vectors, as ``scheduler.ask()`` hands them out."""
    return np.random.default_rng(_SEED).normal(size=(count, 128))


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


def _called_as(student: Any, reference: Callable[..., Any], prepare: Callable[..., tuple]) -> Callable[..., Any]:
    """The reference, callable the way the student's own function of the same name is called.

    The arguments of a call are bound to the student's signature (whatever its parameter
    names), taken in its order, and given to the reference positionally after ``prepare``.

    Args:
        student: the student's function, or anything else when it is not defined.
        reference: the answer key's function.
        prepare: maps the positional arguments to those the reference takes.
    """
    try:
        signature = inspect.signature(student)
    except (TypeError, ValueError):
        signature = inspect.signature(reference)

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            args = tuple(bound.arguments.values())
        except TypeError:
            pass  # called in a way the student's own would not accept: give the reference the arguments as they are
        return reference(*prepare(*args))

    return call


def _images(images: Any) -> torch.Tensor:
    """Images as the references take them: a float tensor with one row of 784 values per image."""
    images = torch.as_tensor(images)
    return images.reshape(len(images), -1).float()


def _references(namespace: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Callable[..., Any]]:
    """The references of the earlier exercises ``names``, to substitute for the student's own."""
    prepare: dict[str, Callable[..., tuple]] = {
        "boldness": lambda images, *_: (_images(images),),
        "lightness": lambda images, *_: (_images(images),),
        "digit_probability": lambda classifier, images, digit, *_: (classifier, _images(images), int(digit)),
    }
    return {name: _called_as(namespace.get(name), getattr(lsi_measures, name), prepare[name]) for name in names}


def _require_unchanged(flags: Mapping[str, list[bool]], network: nn.Module, name: str, call: str) -> None:
    """Fail unless :func:`network_flags` recorded after ``call`` are those of ``network`` as it was handed over.

    Args:
        flags: the flags of the copy the student's code got, after the call.
        network: the network as it was handed over (eval mode, parameters requiring grad).
        name: the network in the message ("the classifier").
        call: the call, as the message names it.
    """
    before = network_flags(network)
    changed = sum(a != b for a, b in zip(flags["requires_grad"], before["requires_grad"], strict=True))
    require(
        changed == 0,
        f"after {call}, {changed} of the {len(before['requires_grad'])} parameters of {name} have another "
        "requires_grad than before: leave the networks as you found them (torch.no_grad() is all it takes "
        "to build no graph).",
    )
    require(
        flags["training"] == before["training"],
        f"after {call}, {name} is in {'train' if any(flags['training']) else 'eval'}() mode; it was handed over "
        f"in {'train' if any(before['training']) else 'eval'}() mode: leave the networks as you found them "
        "(do not switch them to training mode with .train()).",
    )


# ---------------------------------------------------------------- boldness and lightness


def _probe_measure(name: str) -> Callable[[Mapping[str, Any]], Observations]:
    """Probe of ``boldness`` or ``lightness``: every image case, and the noise flattened to ``(6, 784)``."""
    earlier = ("boldness",) if name == "lightness" else ()

    def probe(namespace: Mapping[str, Any]) -> Observations:
        function = namespace[name]
        cases = _image_cases()
        cases["flat"] = cases["noise"].reshape(-1, 784)
        # Graded on its own: a lightness that calls boldness gets the reference's.
        with substituted(function, _references(namespace, earlier)):
            return {case: outcome(function, images.clone()) for case, images in cases.items()}

    return probe


def _flat(images: torch.Tensor) -> torch.Tensor:
    return images.reshape(len(images), -1).double()


def _boldness_mistakes(images: torch.Tensor) -> dict[str, torch.Tensor]:
    x = _flat(images)
    return {
        "pixels > 0.5 counted; the bright pixels are those >= 0.5": (x > 0.5).sum(1).double(),
        "the values of the bright pixels were summed; boldness counts them": (x * (x >= 0.5)).sum(1),
        "the fraction of bright pixels; boldness is their number, in [0, 784]": (x >= 0.5).double().mean(1),
    }


def _lightness_mistakes(images: torch.Tensor) -> dict[str, torch.Tensor]:
    x = _flat(images)
    bright = x >= 0.5
    total = (x * bright).sum(1)
    count = bright.sum(1).double()
    return {
        "the sum was divided by 784; lightness averages the bright pixels only": total / 784,
        "the sum was divided by boldness + 1, as the original tutorial did; divide by the number of bright "
        "pixels (and return 0 where there are none)": total / (count + 1),
        "pixels > 0.5 averaged; the bright pixels are those >= 0.5": (x * (x > 0.5)).sum(1)
        / (x > 0.5).sum(1).clamp(min=1),
        "the mean of all pixels; lightness averages the bright pixels only": x.mean(1),
    }


def _assert_measure(got: Any, expected: torch.Tensor, call: str, mistakes: Mapping[str, torch.Tensor]) -> None:
    """Fail unless a measure returned ``expected``; name the mistake it matches, or explain a nan or a lost batch."""
    otherwise = ""
    if isinstance(got, torch.Tensor) and bool(got.isnan().any()):
        otherwise = "An image without bright pixels must give 0, not nan."
    elif not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(expected.shape):
        otherwise = _KEEP_THE_BATCH
    assert_matches(got, expected, call, mistakes, otherwise=otherwise)


def _judge_measure(
    name: str, cases: tuple[str, ...], mistakes: Callable[[torch.Tensor], dict[str, torch.Tensor]]
) -> Callable[[Observations], str]:
    reference = getattr(lsi_measures, name)

    def judge(observations: Observations) -> str:
        all_cases = _image_cases()
        all_cases["flat"] = all_cases["noise"].reshape(-1, 784)
        for case in cases:
            images = all_cases[case]
            what = "noise images flattened" if case == "flat" else f"{case} images"
            call = f"{name}(images) on {what} of shape {tuple(images.shape)}"
            _assert_measure(observations[case], reference(images).double(), call, mistakes(images))
        return f"{name} matches the reference on {len(cases)} kinds of images."

    return judge


#: The cases the visible checks of the measures judge; the details judge all of them.
_VISIBLE_MEASURE_CASES = ("pixels of exactly 0.5", "one bright pixel", "noise")
_ALL_MEASURE_CASES = (*_VISIBLE_MEASURE_CASES, "blank", "full", "real digits", "flat")


def _judge_measure_details(
    name: str, mistakes: Callable[[torch.Tensor], dict[str, torch.Tensor]]
) -> Callable[[Observations], str]:
    every = _judge_measure(name, _ALL_MEASURE_CASES, mistakes)

    def judge(observations: Observations) -> str:
        every(observations)
        return f"{name} is right on blank, full and flattened images too."

    return judge


# ---------------------------------------------------------------- the objective


#: The calls of digit_probability, by case name: (how many of the real digits, digit). The visible check judges "8".
_PROBABILITY_CASES: dict[str, tuple[int, int]] = {"8": (16, 8), "3": (16, 3), "0": (16, 0), "9": (16, 9), "one": (1, 8)}


def _probe_probability(namespace: Mapping[str, Any]) -> Observations:
    function = namespace["digit_probability"]
    seen = {}
    for case, (count, digit) in _PROBABILITY_CASES.items():
        _, lenet = _fresh_models()
        images = _real_digits()[:count].clone()
        seen[case] = _returned(function, lenet, images, digit)
        seen[case]["flags"] = network_flags(lenet)
        seen[case]["images changed"] = not torch.equal(images, _real_digits()[:count])
    return seen


def _probability_mistakes(images: torch.Tensor, digit: int) -> dict[str, torch.Tensor]:
    _, lenet = _models()
    normalised = (images - 0.1307) / 0.3081
    with torch.no_grad():
        log_p = lenet(normalised)[:, digit].double()
        raw = lenet(images)[:, digit].double()
        as_gan = lenet(mnist_data.lenet_input(images))[:, digit].double()
    return {
        "log-probabilities; LeNet-5 returns log_softmax, so take torch.exp of it": log_p,
        "the images were not normalised with LeNet-5's mean 0.1307 and std 0.3081": raw.exp(),
        "the images were rescaled from [-1, 1]; they are already in [0, 1]": as_gan.exp(),
    }


def _judge_probability_cases(observations: Observations, cases: tuple[str, ...]) -> None:
    _, lenet = _models()
    for case in cases:
        count, digit = _PROBABILITY_CASES[case]
        images = _real_digits()[:count]
        what = "one real digit" if count == 1 else f"{count} real digits"
        call = f"digit_probability(lenet, images, {digit}) on {what}"
        seen = observations[case]
        expected = lsi_measures.digit_probability(lenet, images, digit).double()
        got = seen["value"]
        lost_batch = not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(expected.shape)
        otherwise = _KEEP_THE_BATCH if count == 1 and lost_batch else ""
        assert_matches(got, expected, call, _probability_mistakes(images, digit), otherwise=otherwise)
        require(
            not seen["graph"],
            f"{call} returned a {seen['kinds']} with its autograd graph (LeNet-5's parameters require grad): "
            "compute the probabilities under torch.no_grad(), as the exercise says.",
        )
        _require_unchanged(seen["flags"], lenet, "the classifier", call)
        require(
            not seen["images changed"],
            f"{call} changed the images it was given (an in-place operation such as images -= ... or "
            "images.sub_(...)): normalise a new tensor, (images - 0.1307) / 0.3081, and leave the input as it was.",
        )


def _judge_probability(observations: Observations) -> str:
    _judge_probability_cases(observations, ("8",))
    return "digit_probability matches the reference for eights."


def _judge_probability_details(observations: Observations) -> str:
    _judge_probability_cases(observations, tuple(_PROBABILITY_CASES))
    return "digit_probability is right for the digits 0, 3 and 9 and for a batch of one image too."


# ---------------------------------------------------------------- evaluate


_STUDENT_MEASURES = ("boldness", "lightness", "digit_probability")
#: (digit, number of latent vectors) of the calls of evaluate; the visible check judges the first.
_EVALUATE_CASES = ((8, 12), (5, 7), (9, 1), (0, 3))


def _evaluate_call(digit: int, count: int) -> str:
    return f"evaluate(latents of shape ({count}, 128), generator=generator, classifier=lenet, digit={digit})"


def _probe_evaluate(namespace: Mapping[str, Any]) -> Observations:
    function = namespace["evaluate"]
    seen = {}
    # Graded on its own: the functions of the earlier exercises are the references.
    with substituted(function, _references(namespace, _STUDENT_MEASURES)):
        for digit, count in _EVALUATE_CASES:
            generator, lenet = _fresh_models()
            # As section 6 calls it: the latents positionally, the rest by the names the exercise gives.
            case = _returned(function, _latents(count), generator=generator, classifier=lenet, digit=digit)
            case["flags"] = {"the generator": network_flags(generator), "the classifier": network_flags(lenet)}
            seen[f"{digit} {count}"] = case
    return seen


def _evaluate_mistakes(latents: np.ndarray, digit: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    generator, lenet = _models()
    with torch.no_grad():
        raw = generator(torch.as_tensor(latents, dtype=torch.float32)).reshape(-1, 1, 28, 28)
    shifted = raw + 0.5  # x + 1 / 2: division before addition
    objectives, measures = lsi_measures.evaluate(latents, generator, lenet, digit=digit)
    return {
        "the generator's images were used as they are, in [-1, 1]; map them to [0, 1] with (x + 1) / 2 first": (
            lsi_measures.digit_probability(lenet, raw, digit).double(),
            lsi_measures.measures(raw).double(),
        ),
        "the images were shifted by 1/2 only (x + 1 / 2 divides first); map them to [0, 1] with (x + 1) / 2": (
            lsi_measures.digit_probability(lenet, shifted, digit).double(),
            lsi_measures.measures(shifted).double(),
        ),
        "the measures are in the wrong order; the archive's first axis is boldness, the second lightness": (
            torch.from_numpy(objectives),
            torch.from_numpy(measures[:, ::-1].copy()),
        ),
    }


def _hint_for_error(error: str) -> str:
    """What to do about an error raised by evaluate, when it is a usual one."""
    if "numpy()" in error and "requires grad" in error:
        return (
            " The generator's parameters require grad: decode and score under torch.no_grad() "
            "(or .detach() before .numpy())."
        )
    if "unexpected keyword argument" in error:
        return (
            " Section 6 calls evaluate(solutions, generator=..., classifier=..., digit=...): "
            "keep these parameter names."
        )
    if "dtype" in error or "Double" in error:
        return " scheduler.ask() gives float64 arrays; the generator takes float32: convert with .float()."
    return ""


def _judge_evaluate_cases(observations: Observations, cases: tuple[tuple[int, int], ...]) -> None:
    generator, lenet = _models()
    for digit, count in cases:
        seen = observations[f"{digit} {count}"]
        got, kinds = seen["value"], seen["kinds"]
        call = _evaluate_call(digit, count)
        if isinstance(got, str):
            raise CheckFailed(f"{call} {got.rstrip('.')}.{_hint_for_error(got)}")
        require(
            isinstance(got, list) and len(got) == 2,
            f"{call} must return a pair of numpy arrays (objectives, measures); it returned a {kinds}.",
        )
        latents = _latents(count)
        objectives, measures = (
            torch.from_numpy(v) for v in lsi_measures.evaluate(latents, generator, lenet, digit=digit)
        )
        # A mistake is named only when both the objectives and the measures match it.
        mistakes = _evaluate_mistakes(latents, digit)
        batch = _KEEP_THE_BATCH if count == 1 else ""
        for position, (what, expected) in enumerate((("objectives", objectives), ("measures", measures))):
            value = got[position]
            require(
                not isinstance(value, str),
                f"the {what} of {call} came as a {kinds[position]}; return numpy arrays.",
            )
            if what == "measures" and isinstance(value, torch.Tensor):
                require(
                    tuple(value.shape) == (count, 2),
                    f"the measures of {call} have shape {tuple(value.shape)}; expected ({count}, 2): boldness and "
                    "lightness of each image, side by side.",
                )
            lost = not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(expected.shape)
            assert_matches(
                value,
                expected,
                f"the {what} of {call}",
                {m: v[position] for m, v in mistakes.items() if close(got[1 - position], v[1 - position])},
                otherwise=batch if lost else "",
            )
        require(
            kinds == ["numpy array", "numpy array"],
            f"{call} returned a {kinds[0]} and a {kinds[1]}; pyribs' scheduler.tell works on numpy arrays, "
            "so return both as numpy arrays (tensor.numpy()).",
        )
        for name, flags in seen["flags"].items():
            network = generator if name == "the generator" else lenet
            _require_unchanged(flags, network, name, call)


def _judge_evaluate(observations: Observations) -> str:
    _judge_evaluate_cases(observations, _EVALUATE_CASES[:1])
    return "evaluate returns the reference's objectives and measures."


def _judge_evaluate_details(observations: Observations) -> str:
    _judge_evaluate_cases(observations, _EVALUATE_CASES)
    return "evaluate uses its digit argument and any number of latent vectors, one included."


# ---------------------------------------------------------------- the ask/evaluate/tell loop


def small_scheduler(seed: int = _SEED) -> Scheduler:
    """A small seeded CMA-ME: a 10 x 10 archive over a 4-d search space, two emitters of batch 6."""
    archive = GridArchive(solution_dim=4, dims=[10, 10], ranges=[(-1, 1), (-1, 1)], seed=seed)
    emitters = [
        EvolutionStrategyEmitter(archive, x0=np.zeros(4), sigma0=0.5, ranker="2imp", batch_size=6, seed=seed + i)
        for i in range(2)
    ]
    return Scheduler(archive, emitters)


class _CountingProblem:
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


def _run_loop(loop: Callable[[Scheduler, _CountingProblem, int], Any], iterations: int, seed: int) -> Observations:
    """Run ``loop(scheduler, problem, iterations)`` on a fresh small scheduler; record the archive and the calls."""
    scheduler, problem = small_scheduler(seed), _CountingProblem()
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
_LOOPS = ((7, _SEED), (1, _SEED + 1), (20, _SEED + 2))


def _probe_illuminate(namespace: Mapping[str, Any]) -> Observations:
    function = namespace["illuminate"]
    # As section 6 calls it: three positional arguments.

    def loop(scheduler: Scheduler, evaluate: _CountingProblem, iterations: int) -> Any:
        return function(scheduler, evaluate, iterations)

    return {f"{iterations} {seed}": _run_loop(loop, iterations, seed) for iterations, seed in _LOOPS}


def _reference_loop(scheduler: Scheduler, problem: _CountingProblem, iterations: int) -> None:
    lsi_search.illuminate(scheduler, problem, iterations=iterations)


def _loop_hint(raised: str, evaluated: int) -> str:
    """What to do about an error raised by illuminate, when it is a usual one."""
    if "objective" in raised and "shape" in raised:
        return " Pass the objectives first and the measures second: scheduler.tell(objectives, measures)."
    if "ask cannot be called immediately after ask" in raised:
        return (
            " Every scheduler.ask() must be followed by exactly one scheduler.tell(objectives, measures) "
            "before the next ask."
        )
    if "positional argument" in raised and "were given" in raised and not evaluated:
        return " Section 6 calls illuminate(scheduler, evaluate, iterations) with three positional arguments."
    if "missing" in raised and not evaluated:
        return (
            " Evaluate the solutions with the function illuminate is given as its second argument, "
            "evaluate(solutions), not with the evaluate of exercise 3."
        )
    return ""


def _judge_loop(observations: Observations, iterations: int, seed: int) -> int:
    expected = _run_loop(_reference_loop, iterations, seed)
    seen = observations[f"{iterations} {seed}"]
    call = f"illuminate(scheduler, evaluate, {iterations}) on a small seeded scheduler"
    calls = seen["batch_sizes"]
    if "raised" in seen:
        raise CheckFailed(f"{call}: {seen['raised']}{_loop_hint(seen['raised'], len(calls))}")
    require(
        len(calls) == iterations,
        f"{call} called evaluate {len(calls)} times; expected {iterations}, once per iteration.",
    )
    require(
        calls == expected["batch_sizes"],
        f"{call} evaluated batches of {calls} solutions; every call should get all "
        f"{expected['batch_sizes'][0]} solutions of one scheduler.ask().",
    )
    got, want = seen["archive"], expected["archive"]
    require(
        len(got["index"]) > 0,
        f"{call} left the archive empty: after evaluating, give the results back with "
        "scheduler.tell(objectives, measures).",
    )
    require(
        all(close(got[field], want[field]) for field in want),
        f"{call} left {len(got['index'])} elites in the archive; the reference loop leaves {len(want['index'])}, "
        "with other values. Each iteration must ask once, evaluate exactly the solutions asked for, and tell their "
        "objectives and measures back in the same order.",
    )
    return len(want["index"])


def _judge_illuminate(observations: Observations) -> str:
    elites = _judge_loop(observations, *_LOOPS[0])
    return f"illuminate leaves the reference's archive ({elites} elites after {_LOOPS[0][0]} iterations)."


def _judge_illuminate_details(observations: Observations) -> str:
    for iterations, seed in _LOOPS:
        _judge_loop(observations, iterations, seed)
    return f"illuminate is right for {', '.join(str(i) for i, _ in _LOOPS)} iterations."


# ---------------------------------------------------------------- registry

CHECKS: dict[str, Check] = registry(
    *(
        check_pair(
            name,
            (name,),
            _probe_measure(name),
            _judge_measure(name, _VISIBLE_MEASURE_CASES, mistakes),
            _judge_measure_details(name, mistakes),
        )
        for name, mistakes in (("boldness", _boldness_mistakes), ("lightness", _lightness_mistakes))
    ),
    check_pair(
        "digit_probability", ("digit_probability",), _probe_probability, _judge_probability, _judge_probability_details
    ),
    check_pair("evaluate", ("evaluate",), _probe_evaluate, _judge_evaluate, _judge_evaluate_details),
    check_pair("illuminate", ("illuminate",), _probe_illuminate, _judge_illuminate, _judge_illuminate_details),
)


#: ``check(name, globals())``, called by the test cells.
check = bind(CHECKS, "the LSI lab")
