"""Checks that run a student's code (the probe) and judge what it did (the judge).

A :class:`Check` is split in two on purpose. The *probe* calls the student's
functions on fixed inputs and returns plain observations (tensors, floats,
strings). The *judge* rebuilds the same inputs from the same seeds, runs the
``coursepkg`` reference on them and compares. In the notebook both halves run in
the student's kernel, which gives immediate feedback. Under nbgrader's
autograder the probe runs again in a fresh process and the judge in the grader's
own process, where nothing a student's cell did (``torch.allclose = ...``, a
patched ``coursepkg``) can reach it: see :mod:`coursepkg.grading.isolation`.

The helpers here are the only way the labs look at what a student's code did:

* :func:`outcome` calls a student's function and turns what it gave into a plain
  observation (a float, a float64 tensor, a list of them, or a sentence saying
  what came instead);
* :func:`close` is the one tolerance policy; :func:`assert_matches` fails with
  one message shape and names the catalogued mistake the value matches, if any;
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
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ATOL",
    "RTOL",
    "Check",
    "CheckFailed",
    "Observations",
    "as_number",
    "as_tensor",
    "assert_close",
    "assert_matches",
    "after_last_linear",
    "as_float",
    "assert_standard_normal",
    "batch_behaviour",
    "bind",
    "carries_graph",
    "check_pair",
    "close",
    "describe_error",
    "fill_stale_gradients",
    "final_activation",
    "flat_gradients",
    "flat_parameters",
    "gan_loss_mistakes",
    "linear_traffic",
    "name_mistake",
    "network_flags",
    "outcome",
    "registry",
    "require",
    "require_flags_restored",
    "require_number",
    "require_plain_layers",
    "require_tensor",
    "run_in_kernel",
    "substituted",
]

#: What a probe returns: names mapped to tensors, numbers, strings, lists of them
#: or nested dicts of them (all of which ``torch.load(weights_only=True)`` reads).
Observations = dict[str, Any]

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
        needs: names the student's code must define (looked up in its namespace).
        probe: runs the student's code; ``probe(namespace) -> Observations``.
        judge: compares observations with the reference; raises
            :class:`CheckFailed` with a specific message, returns a short
            success message otherwise.
        hidden: whether the test cells call it between nbgrader's hidden-test
            markers, where students see its verdict but not its call.
    """

    name: str
    needs: tuple[str, ...]
    probe: Callable[[Mapping[str, Any]], Observations]
    judge: Callable[[Observations], str]
    hidden: bool

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
    return (
        Check(name, needs, probe, judge, hidden=False),
        Check(f"{name}_details", needs, probe, judge_details, hidden=True),
    )


def registry(*pairs: tuple[Check, Check]) -> dict[str, Check]:
    """A lab's ``CHECKS``: every check of the given pairs, by name."""
    return {check.name: check for pair in pairs for check in pair}


def describe_error(error: BaseException) -> str:
    """One paragraph on an exception raised by student code: type, message, last frame."""
    return f"Your code {_raised(error)}"


def _raised(error: BaseException) -> str:
    """An exception as the rest of a sentence about a call: ``"raised ValueError: ... (line 3: ...)"``.

    The exception is named by its nearest built-in class (a student's ``class
    BadInput(ValueError)`` or numpy's ``AxisError`` reads "ValueError"), so that a
    judge, which only sees this string, can tell the kinds of error apart.
    """
    if isinstance(error, NotImplementedError):
        return "raised NotImplementedError: replace `raise NotImplementedError()` with your solution."
    kind = next(cls for cls in type(error).__mro__ if cls.__module__ == "builtins")
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (line {frames[-1].lineno}: {frames[-1].line})" if frames and frames[-1].line else ""
    said = f": {error}" if str(error) else " (with no message)"
    return f"raised {kind.__name__}{said}{where}"


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


def outcome(function: Callable[..., Any], *args: Any, **kwargs: Any) -> float | torch.Tensor | list[Any] | str:
    """Call student code and return what it gave as a plain observation.

    Args:
        function: the student's function.
        args, kwargs: what to call it with.

    Returns:
        A float for a number or a 0-d tensor; a detached float64 copy of a tensor or
        of a numeric numpy array; a list of those for a tuple or a list (where an entry
        with one element counts as that number: a pair of values may come as ``(1,)``
        tensors); otherwise the rest of a sentence about the call:
        ``"raised ValueError: ... (line 3: ...)"`` or ``"returned str 'abc'"``.
    """
    try:
        value = function(*args, **kwargs)
    except Exception as error:  # the student's code may raise anything
        return _raised(error)
    if isinstance(value, (tuple, list)):
        return [_observed(v, scalar=True) for v in value]
    return _observed(value)


def _observed(value: Any, *, scalar: bool = False) -> float | torch.Tensor | str:
    """One returned value as :func:`outcome` records it; ``scalar``: one element counts as a number."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
        value = torch.from_numpy(value.astype(np.float64))
    if isinstance(value, torch.Tensor):
        copy = value.detach().to(torch.float64).clone()
        return float(copy) if copy.ndim == 0 or (scalar and copy.numel() == 1) else copy
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return f"returned {type(value).__name__} {value!r}"[:200]


def as_float(value: Any) -> float | str:
    """A Python number a student returned, as a float; a description of anything else.

    Stricter than :func:`as_number`: a tensor, even one with one element, is not a
    float. Use it where the exercise text asks for ``loss.item()``: a loss tensor kept
    in a history list keeps its whole autograd graph alive.
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, torch.Tensor):
        graph = " with its autograd graph" if value.requires_grad else ""
        return f"a tensor{graph} ({value.detach().flatten()[:3].tolist()}...), not a Python float: return loss.item()"
    return f"{type(value).__name__} {value!r}"[:120]


def carries_graph(value: Any) -> bool:
    """Whether a returned value (a tensor, or a tuple, list or dict of them) is part of an autograd graph."""
    if isinstance(value, torch.Tensor):
        return value.requires_grad or value.grad_fn is not None
    if isinstance(value, (tuple, list)):
        return any(carries_graph(v) for v in value)
    if isinstance(value, dict):
        return any(carries_graph(v) for v in value.values())
    return False


def network_flags(module: nn.Module) -> dict[str, list[bool]]:
    """What a step must leave as it found it: each submodule's ``training``, each parameter's ``requires_grad``."""
    return {
        "training": [m.training for m in module.modules()],
        "requires_grad": [p.requires_grad for p in module.parameters()],
    }


def require_flags_restored(flags: Mapping[str, list[bool]], network: str, after: str) -> None:
    """Fail unless :func:`network_flags` show ``network`` in training mode with every parameter trainable.

    Args:
        flags: :func:`network_flags` of the network, recorded after the student's code ran.
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


def linear_traffic(call: Callable[[], Any], network: nn.Module) -> Observations:
    """Run ``call()`` (a forward pass through ``network``), recording what enters and leaves each ``nn.Linear``.

    Args:
        call: runs the forward pass, e.g. ``lambda: gan.discriminate(x)``.
        network: the module whose ``nn.Linear`` layers to watch.

    Returns:
        ``{"inputs", "outputs"}``: lists of ``(n, in)`` and ``(n, out)`` tensors in the order
        the layers ran, and ``"output"``: what ``call()`` returned (:func:`as_tensor`).
    """
    inputs: list[torch.Tensor] = []
    outputs: list[torch.Tensor] = []

    def record(_module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
        inputs.append(args[0].detach().clone())
        outputs.append(out.detach().clone())

    hooks = [m.register_forward_hook(record) for m in network.modules() if isinstance(m, nn.Linear)]
    try:
        with torch.no_grad():
            output = as_tensor(call())
    finally:
        for hook in hooks:
            hook.remove()
    return {"inputs": inputs, "outputs": outputs, "output": output}


def after_last_linear(call: Callable[[], Any], network: nn.Module) -> Observations:
    """Run ``call()`` (a forward pass through ``network``) and record its last ``nn.Linear``'s output.

    The judge then tells what the code applied after that layer (:func:`final_activation`),
    whatever the network's layout: ``nn.Sequential``, layers as attributes, or functional
    activations in ``forward``.

    Args:
        call: runs the forward pass, e.g. ``lambda: gan.discriminate(x)``.
        network: the module whose ``nn.Linear`` layers to watch.

    Returns:
        ``{"output": tensor, "last_linear": tensor}``, either a sentence when there is none.
    """
    traffic = linear_traffic(call, network)
    outputs = traffic["outputs"]
    return {"output": traffic["output"], "last_linear": outputs[-1] if outputs else "no nn.Linear layer ran"}


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


def batch_behaviour(network: nn.Module, inputs: torch.Tensor) -> Observations:
    """Run ``network`` in training mode twice on ``inputs`` and once on their first half.

    A network of linear layers and activations gives the same outputs each time, row
    by row; dropout gives different outputs for the same input, batch normalisation
    outputs for one row that depend on the other rows. Parameters are left untouched;
    batch-norm running statistics are restored afterwards.

    Returns:
        ``{"first", "again", "half"}`` output tensors, and ``"layers"``: the names of
        the submodules' classes.
    """
    state = {k: v.clone() for k, v in network.state_dict().items()}
    was_training = network.training
    network.train()
    try:
        with torch.no_grad():
            torch.manual_seed(0)
            first = as_tensor(network(inputs))
            torch.manual_seed(1)
            again = as_tensor(network(inputs))
            half = as_tensor(network(inputs[: len(inputs) // 2]))
    finally:
        network.load_state_dict(state)
        network.train(was_training)
    return {
        "first": first,
        "again": again,
        "half": half,
        "layers": sorted({type(m).__name__ for m in network.modules() if m is not network}),
    }


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
