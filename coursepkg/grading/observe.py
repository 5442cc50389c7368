"""Observing student code: the probe half of every check, the half that runs the student's code.

A check (:class:`coursepkg.grading.checks.Check`) is split in two on purpose. Its
:class:`Probe`, built from the helpers here, calls the student's functions on
fixed inputs and returns plain observations (tensors, numbers, strings, lists and
dicts of them). Its judge compares those with the references. In the notebook both
halves run in the student's kernel. Under the autograder the probes run in a
sandbox (:mod:`coursepkg.grading.probe`) that holds neither the lab's answer keys
nor any judge, and the judges run outside it, in the grader's own process.

Every fixture's randomness goes through :func:`seed`. The autograder observes each
probe twice: as in the notebook, and with the fixtures' seeds shifted by a *salt*
drawn anew for every submission (:func:`salted`). A student who records what a
correct answer's probe returns, with the public course package, and makes the
sandbox send that back, still fails: the recorded values answer the notebook's
inputs, not the autograder's.

So this module, and every lab's probes module (``coursepkg.grading.probes.<lab>``),
imports no answer key and no judge (``tests/test_answer_keys.py`` holds them to it).
A probe that must call an answer key, the reference of an *earlier* exercise that
the student's function calls or a fixture model, names it in :attr:`Probe.uses`
and gets it from :func:`reference`: in the sandbox that object alone is handed in,
for that probe's run alone, so the answer to the exercise being checked is never
within the student's reach.
"""

from __future__ import annotations

import contextlib
import importlib
import numbers
import os
import pickle
import select
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "Observations",
    "Probe",
    "ReferenceUnavailable",
    "after_last_linear",
    "as_float",
    "as_number",
    "as_tensor",
    "batch_behaviour",
    "carries_graph",
    "describe_error",
    "fill_stale_gradients",
    "flat_gradients",
    "flat_parameters",
    "guarded_call",
    "linear_traffic",
    "network_flags",
    "outcome",
    "probes",
    "reference",
    "salted",
    "seed",
    "substituted",
]

#: What a probe returns: names mapped to tensors, numbers, strings, lists of them
#: or nested dicts of them (all of which ``torch.load(weights_only=True)`` reads).
Observations = dict[str, Any]


class ReferenceUnavailable(RuntimeError):
    """A probe asked, in the sandbox, for a reference its :attr:`Probe.uses` does not name."""


@dataclass(frozen=True)
class Probe:
    """How a check runs the student's code.

    Attributes:
        name: its key in the lab's ``PROBES``, e.g. ``"discriminator_step"``.
        needs: names the student's code must define (looked up in its namespace).
        run: runs the student's code; ``run(namespace) -> Observations``.
        uses: the answer-key objects it calls, as ``"module:name"`` (``"coursepkg.toy2d.gan:GAN"``):
            references of earlier exercises and fixture models, never the answer it checks.
        module: the probes module that defines it (set by :func:`probes`).
    """

    name: str
    needs: tuple[str, ...]
    run: Callable[[Mapping[str, Any]], Observations]
    uses: tuple[str, ...] = ()
    module: str = ""

    def observe(self, namespace: Mapping[str, Any]) -> Observations:
        """Run the probe, turning a missing definition or a crash into an observation."""
        missing = [name for name in self.needs if name not in namespace]
        if missing:
            return {"error": f"{', '.join(missing)} is not defined: run the cell that defines it first."}
        try:
            return self.run(namespace)
        except ReferenceUnavailable:
            raise  # the course's mistake, not the student's: the tests must see it
        except Exception as error:  # the student's code may raise anything
            return {"error": describe_error(error)}


def probes(module: str, *found: Probe) -> dict[str, Probe]:
    """A lab's ``PROBES``: its probes by name, each told the module that defines it."""
    return {probe.name: replace(probe, module=module) for probe in found}


#: Set by the sandbox's runner: the references the current run may use. ``None`` outside the sandbox.
_handed_in: dict[str, Any] | None = None
#: Added to every fixture's seed (:func:`seed`): 0 in the notebook, the autograder's salt in its second look.
_salt = 0


def seed(base: int) -> int:
    """The seed of a fixture whose notebook seed is ``base``: ``base`` itself, shifted by the autograder's salt."""
    return (base + 1_000_003 * _salt) % (2**63 - 1)


@contextlib.contextmanager
def salted(salt: int) -> Iterator[None]:
    """Shift every fixture's seed by ``salt`` (:func:`seed`), for the probe and its judge alike."""
    global _salt
    saved, _salt = _salt, salt
    try:
        yield
    finally:
        _salt = saved


def reference(key: str) -> Any:
    """An answer-key object that a probe calls, ``"module:name"``.

    Outside the sandbox (the student's notebook, the tests) it is imported. In the
    sandbox only the objects that the running probe's :attr:`Probe.uses` names were
    handed in, by value: anything else raises.

    Raises:
        ReferenceUnavailable: in the sandbox, for a key the running probe did not declare.
    """
    if _handed_in is not None:
        if key not in _handed_in:
            raise ReferenceUnavailable(f"{key} is not among the references this probe declares: add it to its uses.")
        return _handed_in[key]
    module, _, name = key.partition(":")
    return getattr(importlib.import_module(module), name)


@contextlib.contextmanager
def handed_in(references: Mapping[str, Any]) -> Iterator[None]:
    """Make :func:`reference` answer from ``references`` only (the sandbox's runner, and tests)."""
    global _handed_in
    saved, _handed_in = _handed_in, dict(references)
    try:
        yield
    finally:
        _handed_in = saved


def guarded_call(function: Callable[..., Any], *args: Any, timeout: float = 10.0, **kwargs: Any) -> tuple[bool, Any]:
    """Call student code in a forked copy of this process: a crash, a segfault or a hang costs that call only.

    For a call whose result is only a hint (the type a student's own function returns, which a
    stand-in mimics), where the student's function failing must not take the check down with it.
    Outside Linux-like systems it calls ``function`` directly.

    Returns:
        ``(True, what it returned)``, or ``(False, None)`` when it raised, died or ran past ``timeout`` s.
    """
    if not hasattr(os, "fork"):
        try:
            return True, function(*args, **kwargs)
        except Exception:  # the student's code may raise anything
            return False, None
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # no process left to fork (the student's code used them up): no hint
        os.close(read_end)
        os.close(write_end)
        return False, None
    if pid == 0:  # the copy: call, send the result back, leave without running anything else
        os.close(read_end)
        try:
            data = pickle.dumps((True, function(*args, **kwargs)))
        except BaseException:  # noqa: BLE001 - whatever happens, the copy only reports failure
            data = pickle.dumps((False, None))
        with contextlib.suppress(OSError):
            with os.fdopen(write_end, "wb") as stream:
                stream.write(data)
        os._exit(0)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + timeout
    with os.fdopen(read_end, "rb") as stream:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = stream.read1(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    try:
        return pickle.loads(b"".join(chunks))
    except Exception:  # it died before it sent anything whole
        return False, None


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
