"""The judge half of every check, and the toolkit the labs' judges are built from.

A :class:`Check` pairs a :class:`~coursepkg.grading.observe.Probe` (it runs the
student's code and returns plain observations: see :mod:`coursepkg.grading.observe`)
with a *judge*, which rebuilds the same inputs from the same seeds, runs the
``coursepkg`` reference on them and compares. In the notebook both halves run in the
student's kernel, which gives immediate feedback. Under the autograder the probes run
in a sandbox that holds no answer key and no judge, and the judges run here, in the
grader's own process, where nothing a student's cell did (``torch.allclose = ...``, a
patched ``coursepkg``) can reach them: see :mod:`coursepkg.grading.isolation`.

The judges' helpers:

* :func:`close` is the one tolerance policy; :func:`assert_matches` fails with
  one message shape and names the catalogued mistake the value matches, if any;
* :func:`final_activation`, :func:`require_plain_layers`, :func:`require_flags_restored`
  read what the probes' :func:`~coursepkg.grading.observe.after_last_linear`,
  :func:`~coursepkg.grading.observe.batch_behaviour` and
  :func:`~coursepkg.grading.observe.network_flags` recorded;
* :func:`gan_loss_mistakes` is the catalogue of GAN-loss mistakes, shared by the
  2D and MNIST labs.

The tolerance policy: ``got`` is close to ``expected`` when, element-wise on float64
copies, ``|got - expected| <= ATOL + RTOL * |expected|`` with ``RTOL = 1e-4`` and
``ATOL = 1e-5``; the shapes must be equal, an infinity matches only the same
infinity and NaN matches nothing. Why these numbers:

* students compute in float32 (machine epsilon 1.2e-7), and a correct answer
  written in another order (a loop instead of a broadcast, one concatenated batch,
  ``logsigmoid`` instead of BCE) rounds differently: over the thousands of terms
  of a loss, a network's output or an SGD update the relative drift reaches about
  1e-5, and ``RTOL`` leaves ten times that;
* ``ATOL`` serves the values that should be 0 (``mmd2(x, x)``, an untouched
  gradient, the lightness of a blank image), where a relative bound is no bound;
* every mistake a lab catalogues differs from the right answer on that lab's
  fixtures by more than the tolerance, mostly by hundreds of times it and at the
  least by four times (a saturating generator loss in the MNIST training step,
  whose gradient is nearly the right one while D(G(z)) is near 1/2), so a
  catalogued mistake is never accepted and is named;
  ``tests/test_grading_labs.py`` checks that none is close to the right answer.
"""

from __future__ import annotations

import contextlib
import io
import math
import numbers
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from coursepkg.grading.observe import Observations, Probe

__all__ = [
    "ATOL",
    "RTOL",
    "Check",
    "CheckFailed",
    "assert_close",
    "assert_matches",
    "assert_standard_normal",
    "bind",
    "check_pair",
    "close",
    "final_activation",
    "gan_loss_mistakes",
    "name_mistake",
    "registry",
    "require",
    "require_flags_restored",
    "require_number",
    "require_plain_layers",
    "require_tensor",
    "run_in_kernel",
]

#: Relative tolerance of :func:`close` (see the module's docstring for why).
RTOL = 1e-4
#: Absolute tolerance of :func:`close`, for the values that should be 0.
ATOL = 1e-5


class CheckFailed(AssertionError):
    """A check found the student's code wrong; the message says what and why."""


@dataclass(frozen=True)
class Check:
    """One gradable property of a student's code.

    Attributes:
        name: identifier used in the test cells, e.g. ``"discriminator_step"``.
        probe: runs the student's code (the lab's probes module defines it).
        judge: compares observations with the reference; raises
            :class:`CheckFailed` with a specific message, returns a short
            success message otherwise.
        hidden: whether the test cells call it between nbgrader's hidden-test
            markers, where students see its verdict but not its call.
    """

    name: str
    probe: Probe
    judge: Callable[[Observations], str]
    hidden: bool

    def observe(self, namespace: Mapping[str, Any]) -> Observations:
        """Run the probe in this process (the student's kernel, the tests)."""
        return self.probe.observe(namespace)

    def evaluate(self, observations: Observations) -> str:
        """Judge observations, failing first on an error the probe recorded."""
        if "error" in observations:
            raise CheckFailed(observations["error"])
        return self.judge(observations)


def check_pair(
    probe: Probe, judge: Callable[[Observations], str], judge_details: Callable[[Observations], str]
) -> tuple[Check, Check]:
    """A visible check named like ``probe`` and its hidden companion ``<name>_details``, sharing the probe.

    The visible one runs in the student's test cell; the details run between
    nbgrader's hidden-test markers and usually judge more cases of the same observations.
    """
    return (
        Check(probe.name, probe, judge, hidden=False),
        Check(f"{probe.name}_details", probe, judge_details, hidden=True),
    )


def registry(*pairs: tuple[Check, Check]) -> dict[str, Check]:
    """A lab's ``CHECKS``: every check of the given pairs, by name."""
    return {check.name: check for pair in pairs for check in pair}


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


def require(condition: bool, message: str) -> None:
    """Fail the check with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


# ---------------------------------------------------------------- comparing with the reference


def _float64(value: Any) -> torch.Tensor | None:
    """A float64 copy of a number or a tensor; ``None`` for anything else (a string, a list)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float64)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    return None


def _matches(got: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """Element-wise verdict of the tolerance policy on tensors of the same shape."""
    within = (got - expected).abs() <= ATOL + RTOL * expected.abs()  # False wherever got or expected is NaN
    return torch.where(torch.isfinite(expected), within, got == expected)


def close(got: Any, expected: Any) -> bool:
    """Whether ``got`` matches ``expected`` under the one tolerance policy of the checks.

    Args:
        got: the student's value: a number, a tensor, or whatever an observation holds.
        expected: the reference value, a number or a tensor.

    Returns:
        True when both are numbers or tensors of the same shape and, element-wise,
        ``|got - expected| <= ATOL + RTOL * |expected|``; an infinity matches only the
        same infinity, NaN matches nothing, and anything else (a string saying the
        call raised) is never close.
    """
    got_t, expected_t = _float64(got), _float64(expected)
    if got_t is None or expected_t is None or got_t.shape != expected_t.shape:
        return False
    return bool(_matches(got_t, expected_t).all())


def name_mistake(got: Any, mistakes: Mapping[str, Any]) -> str | None:
    """The first catalogued mistake whose value ``got`` is :func:`close` to, or ``None``.

    Args:
        got: the student's value.
        mistakes: what each mistake is (the text a student reads) mapped to the value it gives.
    """
    return next((mistake for mistake, value in mistakes.items() if close(got, value)), None)


def _shown(value: torch.Tensor) -> str:
    """A value for a message, to six decimals (finer than ``ATOL``); a large tensor by its shape."""
    if value.ndim == 0:
        return f"{value.item():.6f}"
    if value.numel() > 6:
        return f"a tensor of shape {tuple(value.shape)}"
    return "[" + ", ".join(f"{v:.6f}" for v in value.flatten().tolist()) + "]"


def _difference(got: Any, expected: Any, what: str) -> str:
    """The sentence that says how ``got`` differs from ``expected``."""
    got_t, expected_t = _float64(got), _float64(expected)
    if isinstance(got, str):  # an outcome: "raised ...", "returned ..."
        return f"{what} {got.rstrip('.')}; expected {_shown(expected_t)}."
    if got_t is None:
        return f"{what} returned {f'{type(got).__name__} {got!r}'[:120]}; expected {_shown(expected_t)}."
    if got_t.shape != expected_t.shape:
        return f"{what} returned shape {tuple(got_t.shape)}; expected shape {tuple(expected_t.shape)}."
    if got_t.ndim == 0:
        return f"{what} returned {_shown(got_t)}; expected {_shown(expected_t)}."
    distance = (got_t - expected_t).abs().nan_to_num(nan=math.inf).masked_fill(_matches(got_t, expected_t), 0)
    index = tuple(int(i) for i in torch.unravel_index(distance.argmax(), got_t.shape))
    at = index[0] if len(index) == 1 else index
    values = _shown(expected_t) if expected_t.numel() <= 6 else "other values"
    return (
        f"{what} returned {_shown(got_t)}; expected {values} (largest difference at index {at}: "
        f"{got_t[index].item():.6f} instead of {expected_t[index].item():.6f})."
    )


def assert_matches(got: Any, expected: Any, what: str, mistakes: Mapping[str, Any], *, otherwise: str = "") -> None:
    """Fail unless ``got`` is :func:`close` to ``expected``, naming the mistake it matches if any.

    The message says what came back and what was expected; when ``got`` is close to
    one of ``mistakes`` it goes on with "Your value matches a common mistake: ...".

    Args:
        got: the student's value, or an :func:`outcome` string saying what came instead.
        expected: the reference value.
        what: the call or the value, as the subject of "returned"
            ("mmd2(x, y, bandwidth=0.7)").
        mistakes: the catalogued mistakes, each text mapped to the value it gives.
        otherwise: a hint added when no catalogued mistake matches.

    Raises:
        CheckFailed: when ``got`` is not close to ``expected``.
    """
    if close(got, expected):
        return
    message = _difference(got, expected, what)
    mistake = name_mistake(got, mistakes)
    if mistake is not None:
        message += f" Your value matches a common mistake: {mistake}."
    elif otherwise:
        message += f" {otherwise}"
    raise CheckFailed(message)


def assert_close(got: Any, expected: Any, what: str) -> None:
    """Fail unless ``got`` is :func:`close` to ``expected``: :func:`assert_matches` with no catalogue."""
    assert_matches(got, expected, what, {})


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


# ---------------------------------------------------------------- observing student code


def require_flags_restored(flags: Mapping[str, list[bool]], network: str, after: str) -> None:
    """Fail unless the flags show ``network`` in training mode with every parameter trainable.

    Args:
        flags: :func:`~coursepkg.grading.observe.network_flags` of the network, recorded after the student's code ran.
        network: its name in the message ("the discriminator").
        after: what ran ("generator_step").
    """
    frozen = flags["requires_grad"].count(False)
    require(
        frozen == 0,
        f"after {after}, {frozen} of the {len(flags['requires_grad'])} parameters of {network} have "
        "requires_grad=False: a step must leave the other player trainable. If you freeze it during the step, "
        "set requires_grad back to True before returning (or simply let the optimizer update only its own network).",
    )
    require(
        all(flags["training"]),
        f"after {after}, {network} is in eval() mode: a step must leave both networks in training mode "
        "(call .train() again if you switch to .eval()).",
    )


#: What a network may apply after its last linear layer, by the name a message uses.
_FINAL_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "nothing": lambda t: t,
    "tanh": torch.tanh,
    "a sigmoid": torch.sigmoid,
    "a ReLU": torch.relu,
    "a LeakyReLU(0.2)": lambda t: F.leaky_relu(t, 0.2),
    "a LeakyReLU(0.01)": lambda t: F.leaky_relu(t, 0.01),
    "an ELU": F.elu,
    "a softplus": F.softplus,
    "a hardtanh": F.hardtanh,
}


def final_activation(observations: Observations) -> str:
    """What :func:`after_last_linear` saw applied after the last linear layer.

    Returns:
        ``"nothing"`` (the output is that layer's output), ``"tanh"``, ``"a sigmoid"``,
        ``"a ReLU"``, ``"a LeakyReLU(0.2)"``, ... or ``"something else"``.
    """
    output, last = observations["output"], observations["last_linear"]
    if not isinstance(output, torch.Tensor) or not isinstance(last, torch.Tensor) or output.numel() != last.numel():
        return "something else"
    got = output.reshape(-1)
    return next(
        (name for name, f in _FINAL_ACTIVATIONS.items() if close(got, f(last.reshape(-1).double()))),
        "something else",
    )


def require_plain_layers(observations: Observations, what: str, allowed: str) -> None:
    """Fail when :func:`batch_behaviour` shows dropout or batch normalisation.

    Args:
        observations: what :func:`batch_behaviour` recorded.
        what: the network ("the generator").
        allowed: what the exercise specifies ("linear layers and activations").
    """
    first, again, half = observations["first"], observations["again"], observations["half"]
    if not all(isinstance(t, torch.Tensor) for t in (first, again, half)):
        return  # the shape checks report a network that does not return tensors
    extras = [
        name
        for name in observations["layers"]
        if name.startswith(("Dropout", "BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm"))
    ]
    named = f" ({', '.join(extras)})" if extras else ""
    require(
        close(again, first),
        f"{what} gives different outputs for the same input in training mode: it looks like dropout{named}. "
        f"The exercise specifies {allowed}; leave out the extra layers.",
    )
    require(
        close(half, first[: len(half)]),
        f"{what}'s output for one sample depends on the other samples of the batch: it looks like batch "
        f"normalisation{named}. The exercise specifies {allowed}; leave out the extra layers.",
    )


def require_number(value: float | str, what: str) -> float:
    """Fail unless :func:`~coursepkg.grading.observe.as_number` found a float; return it."""
    require(isinstance(value, float), f"{what} must return the loss as a float (loss.item()); it returned {value}.")
    return value


def require_tensor(value: torch.Tensor | str, what: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Fail unless :func:`~coursepkg.grading.observe.as_tensor` found a float32 tensor of ``shape``; return it."""
    require(isinstance(value, torch.Tensor), f"{what} must return a tensor of shape {shape}; it returned a {value}.")
    require(
        tuple(value.shape) == shape,
        f"{what} returned shape {tuple(value.shape)}; expected {shape}.",
    )
    require(value.dtype == torch.float32, f"{what} returned dtype {value.dtype}; expected torch.float32.")
    return value


# ---------------------------------------------------------------- GAN losses


def gan_loss_mistakes(
    kind: Literal["discriminator", "generator"], real_logits: torch.Tensor, fake_logits: torch.Tensor
) -> dict[str, float]:
    """The usual mistakes in a GAN loss and the value each gives on the given logits.

    Shared by the 2D and MNIST labs, which call the loss on their own fixtures.

    Args:
        kind: whose loss: the discriminator's ``BCE(D(x_real), 1) + BCE(D(G(z)), 0)``
            or the generator's non-saturating ``BCE(D(G(z)), 1)``.
        real_logits: the discriminator's logits on real points (the generator's loss ignores them).
        fake_logits: its logits on generated points.

    Returns:
        What each mistake is, in the words a student reads, mapped to the loss it gives.
    """

    def bce(logits: torch.Tensor, label: float) -> float:
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label)).item()

    real, fake = real_logits.detach(), fake_logits.detach()
    sigmoid_first = "a sigmoid is applied before BCE-with-logits, which applies its own: pass raw logits"
    mistakes = {
        "discriminator": {
            "the real and fake labels are swapped: real points get label 1, fakes label 0": bce(real, 0) + bce(fake, 1),
            sigmoid_first: bce(torch.sigmoid(real), 1) + bce(torch.sigmoid(fake), 0),
            "the two terms are averaged; add them: BCE(D(x_real), 1) + BCE(D(G(z)), 0)": (bce(real, 1) + bce(fake, 0))
            / 2,
            "only the real term is there: add BCE(D(G(z)), 0)": bce(real, 1),
            "only the fake term is there: add BCE(D(x_real), 1)": bce(fake, 0),
        },
        "generator": {
            "this is the saturating loss mean(log(1 - D(G(z)))); "
            "use the non-saturating -mean(log D(G(z))) = BCE(D(G(z)), 1)": -bce(fake, 0),
            "this is BCE(D(G(z)), 0), the discriminator's target for fakes; "
            "the generator wants its fakes labelled real (1)": bce(fake, 0),
            sigmoid_first: bce(torch.sigmoid(fake), 1),
        },
    }
    return mistakes[kind]
