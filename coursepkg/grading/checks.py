"""Checks that run a student's code (the probe) and judge what it did (the judge).

A :class:`Check` is split in two on purpose. The *probe* calls the student's
functions on fixed inputs and returns plain observations (tensors, floats,
strings). The *judge* rebuilds the same inputs from the same seeds, runs the
``coursepkg`` reference on them and compares. In the notebook both halves run in
the student's kernel, which gives immediate feedback. Under nbgrader's
autograder the probe runs again in a fresh process and the judge in the grader's
own process, where nothing a student's cell did (``torch.allclose = ...``, a
patched ``coursepkg``) can reach it: see :mod:`coursepkg.grading.isolation`.
"""

from __future__ import annotations

import contextlib
import io
import math
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "Check",
    "CheckFailed",
    "Observations",
    "as_number",
    "as_tensor",
    "assert_close",
    "assert_standard_normal",
    "bind",
    "check_pair",
    "describe_error",
    "fill_stale_gradients",
    "flat_gradients",
    "flat_parameters",
    "registry",
    "require",
    "require_number",
    "require_tensor",
    "run_in_kernel",
    "substituted",
]

#: What a probe returns: names mapped to tensors, numbers, strings, lists of them
#: or nested dicts of them (all of which ``torch.load(weights_only=True)`` reads).
Observations = dict[str, Any]


class CheckFailed(AssertionError):
    """A check found the student's code wrong; the message says what and why."""


@dataclass(frozen=True)
class Check:
    """One gradable property of a student's code.

    Attributes:
        name: identifier used in the test cells, e.g. ``"discriminator_step"``.
        needs: names the student's code must define (looked up in its namespace).
        probe: runs the student's code; ``probe(namespace) -> Observations``.
        judge: compares observations with the reference; raises
            :class:`CheckFailed` with a specific message, returns a short
            success message otherwise.
    """

    name: str
    needs: tuple[str, ...]
    probe: Callable[[Mapping[str, Any]], Observations]
    judge: Callable[[Observations], str]

    def observe(self, namespace: Mapping[str, Any]) -> Observations:
        """Run the probe, turning a missing definition or a crash into an observation."""
        missing = [name for name in self.needs if name not in namespace]
        if missing:
            return {"error": f"{', '.join(missing)} is not defined: run the cell that defines it first."}
        try:
            return self.probe(namespace)
        except Exception as error:  # the student's code may raise anything
            return {"error": describe_error(error)}

    def evaluate(self, observations: Observations) -> str:
        """Judge observations, failing first on an error the probe recorded."""
        if "error" in observations:
            raise CheckFailed(observations["error"])
        return self.judge(observations)


def check_pair(
    name: str,
    needs: tuple[str, ...],
    probe: Callable[[Mapping[str, Any]], Observations],
    judge: Callable[[Observations], str],
    judge_details: Callable[[Observations], str],
) -> tuple[Check, Check]:
    """A visible check ``name`` and its hidden companion ``name_details``, sharing one probe.

    The visible one runs in the student's test cell; the details run between
    nbgrader's hidden-test markers and usually judge more cases of the same observations.
    """
    return Check(name, needs, probe, judge), Check(f"{name}_details", needs, probe, judge_details)


def registry(*pairs: tuple[Check, Check]) -> dict[str, Check]:
    """A lab's ``CHECKS``: every check of the given pairs, by name."""
    return {check.name: check for pair in pairs for check in pair}


def describe_error(error: BaseException) -> str:
    """One paragraph on an exception raised by student code: type, message, last frame."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (line {frames[-1].lineno}: {frames[-1].line})" if frames and frames[-1].line else ""
    if isinstance(error, NotImplementedError):
        return "Your code raised NotImplementedError: replace `raise NotImplementedError()` with your solution."
    return f"Your code raised {type(error).__name__}: {error}{where}"


@contextlib.contextmanager
def _quiet_student_code() -> Iterator[list[str]]:
    """Keep student code's stderr and warnings off the test cell's output.

    nbgrader gives zero points to a test cell that writes to stderr, so a
    progress bar or a harmless warning would cost a correct solution its marks.
    They are collected and shown as notes on stdout instead.
    """
    notes: list[str] = []
    stderr = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(stderr):
        warnings.simplefilter("always")
        yield notes
    notes.extend(f"{w.category.__name__}: {w.message}" for w in caught)


def run_in_kernel(check: Check, namespace: Mapping[str, Any]) -> None:
    """Probe and judge in the current process, printing the verdict.

    Raises:
        CheckFailed: with the judge's message when the check fails.
    """
    with _quiet_student_code() as notes:
        observations = check.observe(namespace)
    for note in dict.fromkeys(notes):
        print(f"note: your code warned: {note}")
    print(f"✔ {check.name}: {check.evaluate(observations)}")


def bind(checks: Mapping[str, Check], chapter: str) -> Callable[[str, Mapping[str, Any]], None]:
    """Make the ``check(name, namespace)`` function that a lab's test cells call.

    Args:
        checks: the lab's checks by name.
        chapter: how messages name the lab ("the 2D GAN lab").

    Returns:
        ``check(name, namespace)``: runs one check on the definitions in
        ``namespace`` (pass ``globals()``) and prints the verdict; raises
        :class:`CheckFailed` with the judge's message, or ``KeyError`` for an
        unknown name.
    """

    def check(name: str, namespace: Mapping[str, Any]) -> None:
        """Run the check ``name`` on the definitions in ``namespace`` and print the verdict."""
        if name not in checks:
            raise KeyError(f"No check named {name!r} in {chapter}; its checks are {sorted(checks)}.")
        run_in_kernel(checks[name], namespace)

    return check


@contextlib.contextmanager
def substituted(function: Callable[..., Any], replacements: Mapping[str, Any]) -> Iterator[None]:
    """Let ``function`` see ``replacements`` instead of its own globals of those names.

    A check uses it to grade one exercise at a time: a student's function that
    calls the student's answer to an earlier exercise gets the reference
    instead, so one mistake costs the points of one exercise only.
    """
    scope = getattr(function, "__globals__", {})
    missing = object()
    saved = {name: scope.get(name, missing) for name in replacements}
    scope.update(replacements)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                scope.pop(name, None)
            else:
                scope[name] = value


def require(condition: bool, message: str) -> None:
    """Fail the check with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


def _format(value: torch.Tensor | float) -> str:
    if isinstance(value, torch.Tensor) and value.numel() > 6:
        return f"tensor of shape {tuple(value.shape)}"
    if isinstance(value, torch.Tensor):
        return str([round(v, 6) for v in value.flatten().tolist()])
    return f"{value:.6g}"


def assert_close(
    got: torch.Tensor | float,
    expected: torch.Tensor | float,
    what: str,
    *,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> None:
    """Fail unless ``got`` matches ``expected`` element-wise within tolerance.

    Args:
        got: the student's value.
        expected: the reference value.
        what: what the value is, for the message ("the loss of the first call").
        rtol: relative tolerance.
        atol: absolute tolerance.
    """
    got_t = torch.as_tensor(got, dtype=torch.float64)
    expected_t = torch.as_tensor(expected, dtype=torch.float64)
    require(
        got_t.shape == expected_t.shape,
        f"{what}: expected shape {tuple(expected_t.shape)}, got {tuple(got_t.shape)}.",
    )
    error = (got_t - expected_t).abs()
    bound = atol + rtol * expected_t.abs()
    require(
        bool(torch.isfinite(got_t).all()) and bool((error <= bound).all()),
        f"{what}: expected {_format(expected)}, got {_format(got)}"
        + (f" (largest difference {error.max().item():.3g})." if got_t.numel() > 1 else "."),
    )


def assert_standard_normal(z: torch.Tensor, what: str) -> None:
    """Fail unless the entries of ``z`` look like independent N(0, 1) draws.

    Uses the Kolmogorov-Smirnov distance to the standard normal CDF with the
    1e-6 critical value ``sqrt(-log(5e-7) / 2) / sqrt(n)``: a correct sampler
    fails about once in a million seeds, a uniform or scaled one never passes
    with the sample sizes the checks use (several thousand values).
    """
    values = z.detach().double().flatten().sort().values
    n = values.numel()
    require(n >= 100, f"{what}: too few values ({n}) to test.")
    cdf = 0.5 * (1 + torch.erf(values / math.sqrt(2)))
    ranks = torch.arange(1, n + 1, dtype=torch.float64)
    distance = torch.maximum(ranks / n - cdf, cdf - (ranks - 1) / n).max().item()
    critical = math.sqrt(-math.log(5e-7) / 2) / math.sqrt(n)
    require(
        distance <= critical,
        f"{what} should be standard normal N(0, 1) (use torch.randn), but its values have "
        f"mean {values.mean().item():.3f}, std {values.std().item():.3f}, "
        f"range [{values[0].item():.2f}, {values[-1].item():.2f}] "
        f"(Kolmogorov-Smirnov distance {distance:.3f} > {critical:.3f}).",
    )


# ---------------------------------------------------------------- observing torch code


def flat_parameters(module: nn.Module) -> torch.Tensor:
    """All parameters of ``module``, detached and concatenated into one vector."""
    return torch.cat([p.detach().flatten() for p in module.parameters()]).clone()


def flat_gradients(module: nn.Module) -> torch.Tensor:
    """All ``.grad`` of ``module`` in one vector, zeros where a gradient is ``None``."""
    return torch.cat(
        [torch.zeros(p.numel()) if p.grad is None else p.grad.detach().flatten() for p in module.parameters()]
    )


def fill_stale_gradients(module: nn.Module, value: float) -> None:
    """Leave ``value`` in every ``.grad`` of ``module``, as the other player's step would."""
    for p in module.parameters():
        p.grad = torch.full_like(p, value)


def as_number(value: Any) -> float | str:
    """The float a student returned, or a description of what came back instead."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return f"{type(value).__name__} {value!r}"[:120]


def as_tensor(value: Any) -> torch.Tensor | str:
    """A detached copy of a tensor a student returned, or a description of what came back instead."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    return f"{type(value).__name__}, not a tensor"


def require_number(value: float | str, what: str) -> float:
    """Fail unless :func:`as_number` found a float; return it."""
    require(isinstance(value, float), f"{what} must return the loss as a float (loss.item()); it returned {value}.")
    return value


def require_tensor(value: torch.Tensor | str, what: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Fail unless :func:`as_tensor` found a float32 tensor of ``shape``; return it."""
    require(isinstance(value, torch.Tensor), f"{what} must return a tensor of shape {shape}; it returned a {value}.")
    require(
        tuple(value.shape) == shape,
        f"{what} returned shape {tuple(value.shape)}; expected {shape}.",
    )
    require(value.dtype == torch.float32, f"{what} returned dtype {value.dtype}; expected torch.float32.")
    return value
