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
(:func:`coursepkg.grading.observe.substituted`), called as the student's own are.

The probes, which run the student's code, are in
:mod:`coursepkg.grading.probes.lab_lsi`; the judges, here, compare what they
observed with the references.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from ribs.schedulers import Scheduler
from torch import nn

from coursepkg.grading.checks import (
    Check,
    CheckFailed,
    assert_matches,
    bind,
    check_pair,
    close,
    registry,
    require,
)
from coursepkg.grading.observe import Observations, network_flags, seed
from coursepkg.grading.probes.lab_lsi import (
    EVALUATE_CASES,
    LOOPS,
    PROBABILITY_CASES,
    PROBES,
    CountingProblem,
    fixed_latents,
    image_cases,
    real_digits,
    run_loop,
    shipped_models,
    small_scheduler,
)
from coursepkg.lsi import measures as lsi_measures
from coursepkg.lsi import search as lsi_search
from coursepkg.mnist import data as mnist_data

__all__ = ["CHECKS", "ANSWER_KEYS", "check", "small_scheduler"]

#: The modules that hold this lab's answers (the measures, the objective and the search loop). The autograder's
#: sandbox holds none of them, nor any module that imports one
#: (:func:`coursepkg.grading.isolation.blocked_modules`).
ANSWER_KEYS: tuple[str, ...] = ("coursepkg.lsi.measures", "coursepkg.lsi.search")

#: Added to a failure on a batch of one image (or one latent vector).
_KEEP_THE_BATCH = (
    "Each image gets its own value: return shape (n,), also (1,) for a batch of one "
    "(reduce along dim=1 only, and do not squeeze the batch dimension)."
)


# ---------------------------------------------------------------- the networks, as handed over


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
        all_cases = image_cases()
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


def _probability_mistakes(images: torch.Tensor, digit: int) -> dict[str, torch.Tensor]:
    _, lenet = shipped_models()
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
    _, lenet = shipped_models()
    for case in cases:
        count, digit = PROBABILITY_CASES[case]
        images = real_digits()[:count]
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
    _judge_probability_cases(observations, tuple(PROBABILITY_CASES))
    return "digit_probability is right for the digits 0, 3 and 9 and for a batch of one image too."


# ---------------------------------------------------------------- evaluate


def _evaluate_call(digit: int, count: int) -> str:
    return f"evaluate(latents of shape ({count}, 128), generator=generator, classifier=lenet, digit={digit})"


def _evaluate_mistakes(latents: np.ndarray, digit: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    generator, lenet = shipped_models()
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
    generator, lenet = shipped_models()
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
        latents = fixed_latents(count)
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
    _judge_evaluate_cases(observations, EVALUATE_CASES[:1])
    return "evaluate returns the reference's objectives and measures."


def _judge_evaluate_details(observations: Observations) -> str:
    _judge_evaluate_cases(observations, EVALUATE_CASES)
    return "evaluate uses its digit argument and any number of latent vectors, one included."


# ---------------------------------------------------------------- the ask/evaluate/tell loop


def _reference_loop(scheduler: Scheduler, problem: CountingProblem, iterations: int) -> None:
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


def _judge_loop(observations: Observations, iterations: int, start: int) -> int:
    """Judge the loop run for ``iterations`` from the scheduler seeded ``start`` (shifted by the salt)."""
    expected = run_loop(_reference_loop, iterations, seed(start))
    seen = observations[f"{iterations} {start}"]
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
    elites = _judge_loop(observations, *LOOPS[0])
    return f"illuminate leaves the reference's archive ({elites} elites after {LOOPS[0][0]} iterations)."


def _judge_illuminate_details(observations: Observations) -> str:
    for iterations, start in LOOPS:
        _judge_loop(observations, iterations, start)
    return f"illuminate is right for {', '.join(str(i) for i, _ in LOOPS)} iterations."


# ---------------------------------------------------------------- registry

CHECKS: dict[str, Check] = registry(
    *(
        check_pair(
            PROBES[name],
            _judge_measure(name, _VISIBLE_MEASURE_CASES, mistakes),
            _judge_measure_details(name, mistakes),
        )
        for name, mistakes in (("boldness", _boldness_mistakes), ("lightness", _lightness_mistakes))
    ),
    check_pair(PROBES["digit_probability"], _judge_probability, _judge_probability_details),
    check_pair(PROBES["evaluate"], _judge_evaluate, _judge_evaluate_details),
    check_pair(PROBES["illuminate"], _judge_illuminate, _judge_illuminate_details),
)


#: ``check(name, globals())``, called by the test cells.
check = bind(CHECKS, "the LSI lab")
