"""Checks of the Latent Space Illumination lab (``solutions/lab_lsi``).

The measures are checked on hand-made images whose answers are known by
construction (pixels of exactly 0.5, a blank image, a full one) and on real
digits; the objective on real digits with the shipped LeNet-5; ``evaluate`` on
fixed latent vectors through the shipped generator. The ask/evaluate/tell loop
runs on a small seeded pyribs scheduler over a cheap quadratic problem, and must
leave exactly the archive that :func:`coursepkg.lsi.search.illuminate` leaves on an
identical scheduler. Wrong values are matched against the mistakes students
make (``>`` for ``>=``, dividing by 784 or by ``boldness + 1``, log-probabilities,
images left in ``[-1, 1]``, measures swapped) to say which one was made.
"""

from __future__ import annotations

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
    check_pair,
    close,
    describe_error,
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
    cases = dict(_hand_made())
    cases["noise"] = _quantised_noise(6)
    cases["real digits"] = _real_digits()
    return cases


@cache
def _models() -> tuple[nn.Module, nn.Module]:
    """The shipped generator and LeNet-5, in eval mode."""
    return pretrained.load("generator").eval(), pretrained.load("lenet5").eval()


def _latents(count: int) -> np.ndarray:
    return np.random.default_rng(_SEED).normal(size=(count, 128))


# ---------------------------------------------------------------- boldness and lightness


def _probe_measure(name: str) -> Callable[[Mapping[str, Any]], Observations]:
    def probe(namespace: Mapping[str, Any]) -> Observations:
        function = namespace[name]
        cases = _image_cases()
        seen = {case: outcome(function, images) for case, images in cases.items()}
        seen["flat"] = outcome(function, cases["noise"].reshape(-1, 784))
        return seen

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
    """Fail unless a measure returned ``expected``; name the mistake it matches, or explain a nan."""
    nan = isinstance(got, torch.Tensor) and bool(got.isnan().any())
    blank = "An image without bright pixels must give 0, not nan."
    assert_matches(got, expected, call, mistakes, otherwise=blank if nan else "")


def _judge_measure(
    name: str, cases: tuple[str, ...], mistakes: Callable[[torch.Tensor], dict[str, torch.Tensor]]
) -> Callable[[Observations], str]:
    reference = getattr(lsi_measures, name)

    def judge(observations: Observations) -> str:
        all_cases = _image_cases()
        for case in cases:
            images = all_cases[case]
            call = f"{name}(images) on {case} images of shape {tuple(images.shape)}"
            _assert_measure(observations[case], reference(images).double(), call, mistakes(images))
        return f"{name} matches the reference on {len(cases)} kinds of images."

    return judge


def _judge_measure_details(
    name: str, mistakes: Callable[[torch.Tensor], dict[str, torch.Tensor]]
) -> Callable[[Observations], str]:
    visible = _judge_measure(name, tuple(_image_cases()), mistakes)
    reference = getattr(lsi_measures, name)

    def judge(observations: Observations) -> str:
        visible(observations)
        noise = _quantised_noise(6)
        _assert_measure(
            observations["flat"], reference(noise).double(), f"{name} on images of shape (6, 784)", mistakes(noise)
        )
        return f"{name} is right on blank, full and flattened images too."

    return judge


# ---------------------------------------------------------------- the objective


def _probe_probability(namespace: Mapping[str, Any]) -> Observations:
    function = namespace["digit_probability"]
    _, lenet = _models()
    images = _real_digits()
    return {str(digit): outcome(function, lenet, images, digit) for digit in (8, 3)}


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


def _judge_probability_cases(observations: Observations, digits: tuple[int, ...]) -> None:
    _, lenet = _models()
    images = _real_digits()
    for digit in digits:
        call = f"digit_probability(lenet, images, {digit}) on 16 real digits"
        expected = lsi_measures.digit_probability(lenet, images, digit).double()
        assert_matches(observations[str(digit)], expected, call, _probability_mistakes(images, digit))


def _judge_probability(observations: Observations) -> str:
    _judge_probability_cases(observations, (8,))
    return "digit_probability matches the reference for eights."


def _judge_probability_details(observations: Observations) -> str:
    _judge_probability_cases(observations, (8, 3))
    return "digit_probability is right for another digit too."


# ---------------------------------------------------------------- evaluate


_STUDENT_MEASURES = ("boldness", "lightness", "digit_probability")


def _probe_evaluate(namespace: Mapping[str, Any]) -> Observations:
    function = namespace["evaluate"]
    generator, lenet = _models()
    # Graded on its own: the functions of the earlier exercises are the references.
    with substituted(function, {name: getattr(lsi_measures, name) for name in _STUDENT_MEASURES}):
        return {
            str(digit): outcome(function, _latents(count), generator, lenet, digit=digit)
            for digit, count in ((8, 12), (5, 7))
        }


def _evaluate_mistakes(latents: np.ndarray, digit: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    generator, lenet = _models()
    with torch.no_grad():
        raw = generator(torch.as_tensor(latents, dtype=torch.float32)).reshape(-1, 1, 28, 28)
    objectives, measures = lsi_measures.evaluate(latents, generator, lenet, digit=digit)
    return {
        "the generator's images were used as they are, in [-1, 1]; map them to [0, 1] with (x + 1) / 2 first": (
            lsi_measures.digit_probability(lenet, raw, digit).double(),
            lsi_measures.measures(raw).double(),
        ),
        "the measures are in the wrong order; the archive's first axis is boldness, the second lightness": (
            torch.from_numpy(objectives),
            torch.from_numpy(measures[:, ::-1].copy()),
        ),
    }


def _judge_evaluate_cases(observations: Observations, cases: tuple[tuple[int, int], ...]) -> None:
    generator, lenet = _models()
    for digit, count in cases:
        got = observations[str(digit)]
        call = f"evaluate(latents of shape ({count}, 128), generator, lenet, digit={digit})"
        require(not isinstance(got, str), f"{call} {got}")
        require(
            isinstance(got, list) and len(got) == 2 and all(isinstance(v, torch.Tensor) for v in got),
            f"{call} must return a pair of numpy arrays (objectives, measures); it returned {got}.",
        )
        latents = _latents(count)
        objectives, measures = (
            torch.from_numpy(v) for v in lsi_measures.evaluate(latents, generator, lenet, digit=digit)
        )
        mistakes = _evaluate_mistakes(latents, digit)
        assert_matches(got[0], objectives, f"the objectives of {call}", {m: v[0] for m, v in mistakes.items()})
        require(
            tuple(got[1].shape) == (count, 2),
            f"the measures of {call} have shape {tuple(got[1].shape)}; expected ({count}, 2): boldness and lightness "
            "of each image, side by side.",
        )
        assert_matches(got[1], measures, f"the measures of {call}", {m: v[1] for m, v in mistakes.items()})


def _judge_evaluate(observations: Observations) -> str:
    _judge_evaluate_cases(observations, ((8, 12),))
    return "evaluate returns the reference's objectives and measures."


def _judge_evaluate_details(observations: Observations) -> str:
    _judge_evaluate_cases(observations, ((8, 12), (5, 7)))
    return "evaluate uses its digit argument and any number of latent vectors."


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


def _run_loop(function: Callable[..., Any], iterations: int, seed: int) -> Observations:
    scheduler, problem = small_scheduler(seed), _CountingProblem()
    try:
        function(scheduler, problem, iterations=iterations)
    except Exception as error:  # the student's code may raise anything
        return {"raised": describe_error(error), "batch_sizes": problem.batch_sizes}
    return {"archive": _archive_contents(scheduler.archive), "batch_sizes": problem.batch_sizes}


#: (iterations, seed) of the loops run: the visible check judges the first.
_LOOPS = ((7, _SEED), (1, _SEED + 1), (20, _SEED + 2))


def _probe_illuminate(namespace: Mapping[str, Any]) -> Observations:
    return {f"{iterations} {seed}": _run_loop(namespace["illuminate"], iterations, seed) for iterations, seed in _LOOPS}


def _judge_loop(observations: Observations, iterations: int, seed: int) -> int:
    expected = _run_loop(lsi_search.illuminate, iterations, seed)
    seen = observations[f"{iterations} {seed}"]
    call = f"illuminate(scheduler, evaluate, iterations={iterations}) on a small seeded scheduler"
    calls = seen["batch_sizes"]
    if "raised" in seen:
        hint = ""
        if "objective" in seen["raised"] and "shape" in seen["raised"]:
            hint = " Pass the objectives first and the measures second: scheduler.tell(objectives, measures)."
        elif "ask cannot be called immediately after ask" in seen["raised"]:
            hint = (
                " Every scheduler.ask() must be followed by exactly one scheduler.tell(objectives, measures) "
                "before the next ask."
            )
        raise CheckFailed(f"{call}: {seen['raised']}{hint}")
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
            _judge_measure(name, ("pixels of exactly 0.5", "one bright pixel", "noise"), mistakes),
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
