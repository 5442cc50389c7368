"""Probes of the Jensen-Shannon chapter (``solutions/lab_js_divergence``): how its checks run a student's code.

The judges are in :mod:`coursepkg.grading.lab_js_divergence`. Every exercise is a pure function of
discrete distributions: each probe calls the student's function positionally, on copies of the
fixed cases (:func:`pairs`, :data:`INVALID`), and records what came back
(:func:`~coursepkg.grading.observe.outcome`).

A function that calls the student's answer to an earlier exercise (``js_divergence`` calling
``kl_divergence`` or ``check_distributions``; ``identity_sides`` calling ``optimal_discriminator``,
``value_function`` and ``js_divergence``) gets a stand-in for it (:func:`_stand_in`): the reference of
that earlier exercise, taking the arguments as the student's function would and returning its value
in the type the student's returns. Those references are the answers to *other* exercises, named in
each probe's ``uses``; the sandbox hands a probe those alone (:func:`~coursepkg.grading.observe.reference`).
The ``D*`` of every pair, from which the ``value_function`` cases are built, is the
``optimal_discriminator`` reference, an earlier exercise too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch

from coursepkg.grading.observe import (
    Observations,
    Probe,
    carries_graph,
    guarded_call,
    outcome,
    probes,
    reference,
    seed,
    substituted,
)

__all__ = ["CASES", "INVALID", "PROBES", "pairs", "value_cases"]

#: The answer keys the probes hand the student's code: the references of the earlier exercises.
_KL = "coursepkg.theory.divergences:kl_divergence"
_JS = "coursepkg.theory.divergences:js_divergence"
_D_STAR = "coursepkg.theory.divergences:optimal_discriminator"
#: The stand-in for ``value_function``: V(D, G) for any ``d``, which lives with the judges (it is answer code).
_V = "coursepkg.grading.lab_js_divergence:_value_of_any_d"


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _random_pairs(count: int, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed(7))
    pairs = []
    for _ in range(count):
        p, q = torch.rand(size, generator=g, dtype=torch.float64), torch.rand(size, generator=g, dtype=torch.float64)
        pairs.append((p / p.sum(), q / q.sum()))
    return pairs


def pairs() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Named argument tuples shared by the probes and the judges: ``(p, q)``, each of shape ``(k,)``.

    The hand-made cases are fixed; the four random ones come from the fixtures' seed.
    """
    return {
        "basic": (_t(0.1, 0.4, 0.5), _t(0.3, 0.3, 0.4)),
        "asymmetric": (_t(0.7, 0.2, 0.1), _t(0.2, 0.3, 0.5)),
        "zeros in p": (_t(0.0, 0.5, 0.5), _t(0.2, 0.3, 0.5)),
        "zeros in q": (_t(0.2, 0.3, 0.5), _t(0.0, 0.5, 0.5)),
        "disjoint": (_t(0.5, 0.5, 0.0, 0.0), _t(0.0, 0.0, 0.4, 0.6)),
        "equal": (_t(0.25, 0.25, 0.5), _t(0.25, 0.25, 0.5)),
        # A point outside both supports: m_i = 0 there, and D* is 1/2 by the text's convention.
        "zero in both": (_t(0.5, 0.0, 0.5), _t(0.25, 0.0, 0.75)),
        **{f"random {i}": pair for i, pair in enumerate(_random_pairs(4, 6))},
    }


#: The names of :func:`pairs`' cases, in order.
CASES: tuple[str, ...] = tuple(pairs())
#: Inputs that are not pairs of distributions: each must raise ValueError.
INVALID: dict[str, tuple[torch.Tensor, torch.Tensor]] = {
    "not summing to 1": (_t(0.5, 0.6), _t(0.5, 0.5)),
    "negative entry": (_t(1.5, -0.5), _t(0.5, 0.5)),
    "shapes differ": (_t(0.5, 0.5), _t(0.2, 0.3, 0.5)),
}


def value_cases() -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(d, p_data, p_g)`` per case: ``D*`` of every pair (0 or 1 where one probability is 0), and two more ``d``.

    ``D*`` is the ``optimal_discriminator`` reference, an earlier exercise: the probe of ``value_function``
    declares it in its :attr:`~coursepkg.grading.observe.Probe.uses`.
    """
    optimal_discriminator = reference(_D_STAR)
    named = pairs()
    cases = {case: (optimal_discriminator(p, q), p, q) for case, (p, q) in named.items()}
    cases["half"] = (_t(0.5, 0.5, 0.5), *named["basic"])
    cases["some d"] = (_t(0.9, 0.2, 0.6), *named["basic"])
    return cases


# ---------------------------------------------------------------- calling the student's code


def _copies(values: Any) -> Any:
    """Copies of the tensors and arrays among ``values`` (a tuple or a dict of arguments)."""
    if isinstance(values, dict):
        return {key: _copies(value) for key, value in values.items()}
    if isinstance(values, tuple):
        return tuple(_copies(value) for value in values)
    if isinstance(values, (torch.Tensor, np.ndarray)):
        return values.copy() if isinstance(values, np.ndarray) else values.clone()
    return values


def _observe(function: Callable[..., Any], *args: torch.Tensor, number: bool = True) -> Any:
    """:func:`outcome` of ``function`` called positionally on copies of ``args``.

    Args:
        function: the student's function.
        args: its arguments, ``(k,)`` tensors.
        number: whether the exercise asks for numbers, which must not keep an autograd
            graph; such a value is recorded as a sentence saying so.
    """
    returned: list[Any] = []

    def call() -> Any:
        returned.append(function(*_copies(args)))
        return returned[0]

    seen = outcome(call)
    if number and returned and carries_graph(returned[0]):
        return "returned a tensor that keeps its autograd graph (return a plain number: .item(), or .detach())"
    return seen


def _validate(p: torch.Tensor, q: torch.Tensor) -> None:
    """The reference's test that ``p`` and ``q`` are two distributions of one shape: raises ValueError if not."""
    reference(_KL)(p, q)


#: The reference version of each function a later exercise may call (its key, for
#: :func:`~coursepkg.grading.observe.reference`; ``check_distributions`` has none of its own and
#: gets :func:`_validate`), and how many positional arguments it takes.
_REFERENCES: dict[str, tuple[str | None, int]] = {
    "check_distributions": (None, 2),
    "kl_divergence": (_KL, 2),
    "js_divergence": (_JS, 2),
    "optimal_discriminator": (_D_STAR, 2),
    "value_function": (_V, 3),
}


def _positional(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """The arguments of a call of ``function``, keywords bound to their positions by its signature."""
    if not kwargs:
        return args
    try:
        bound = inspect.signature(function).bind(*args, **kwargs)
    except (TypeError, ValueError):  # no signature, or the call does not fit it
        return args + tuple(kwargs.values())
    bound.apply_defaults()
    return bound.args


def _typed_like(mine: Any, value: Any) -> Any:
    """The reference's ``value`` in the type of ``mine``, what the student's own function returns.

    A float becomes a tensor of ``mine``'s dtype (0-d or ``(1,)`` as ``mine`` is) or a numpy
    number; a ``D*`` tensor takes ``mine``'s dtype.
    """
    if isinstance(mine, torch.Tensor):
        dtype = mine.dtype if mine.is_floating_point() else torch.float64
        typed = torch.as_tensor(value, dtype=dtype)
        return typed.reshape(mine.shape) if typed.numel() == 1 == mine.numel() else typed
    if isinstance(mine, np.generic) and isinstance(value, float):
        return np.float64(value)
    if isinstance(mine, np.ndarray):
        typed = np.asarray(value, dtype=np.float64)
        return typed.reshape(mine.shape) if typed.size == 1 == mine.size else typed
    return value


def _stand_in(name: str, own: Any) -> Callable[..., Any]:
    """What a later exercise calls instead of the student's ``name`` (their ``own`` function, if any).

    The reference, called with the arguments as ``own`` would take them, its value
    returned in the type that ``own`` returns (a float, a 0-d tensor, a numpy number);
    an invalid input raises the reference's ValueError. ``own`` is asked for its type on
    the first call, in a copy of this process (:func:`~coursepkg.grading.observe.guarded_call`):
    a broken answer, even one that crashes its process, leaves the reference's type. For
    ``check_distributions``, whose reference returns nothing, a student's that returns
    something (the inputs as tensors, say) is asked on every call.
    """
    key, arity = _REFERENCES[name]
    function = _validate if key is None else reference(key)
    own = own if callable(own) else None
    first: list[tuple[bool, Any]] = []  # what ``own`` gave on the first call

    def stand_in(*args: Any, **kwargs: Any) -> Any:
        try:
            value = function(*_positional(own or function, args, kwargs)[:arity])
        except ValueError as error:  # said as ours, not from a line of the reference's source
            refusal = f"{name} (ours, standing in for yours) refused its arguments: {error}"
            raise ValueError(refusal) from None
        if own is None:
            return value
        if not first:
            first.append(guarded_call(own, *_copies(args), **_copies(kwargs)))
        ran, mine = first[0]
        if not ran:
            return value
        if value is None:  # check_distributions: what theirs returns for these arguments
            if mine is None:
                return None
            ran, mine = guarded_call(own, *_copies(args), **_copies(kwargs))
            return mine if ran else None
        return _typed_like(mine, value)

    stand_in.__name__ = stand_in.__qualname__ = name
    return stand_in


def _graded_alone(
    function: Callable[..., Any], namespace: Mapping[str, Any], earlier: tuple[str, ...]
) -> AbstractContextManager[None]:
    """Run ``function`` with stand-ins for the student's answers to the ``earlier`` exercises."""
    return substituted(function, {name: _stand_in(name, namespace.get(name)) for name in earlier})


# ---------------------------------------------------------------- KL and JS


#: Per divergence, the earlier exercises its function may call: graded with their stand-ins.
_EARLIER: dict[str, tuple[str, ...]] = {
    "kl_divergence": (),
    "js_divergence": ("check_distributions", "kl_divergence"),
}


def _probe_divergence(name: str) -> Callable[[Mapping[str, Any]], Observations]:
    def probe(namespace: Mapping[str, Any]) -> Observations:
        function = namespace[name]
        with _graded_alone(function, namespace, _EARLIER[name]):
            return {
                "values": {case: _observe(function, p, q) for case, (p, q) in pairs().items()},
                "invalid": {case: _observe(function, p, q) for case, (p, q) in INVALID.items()},
            }

    return probe


# ---------------------------------------------------------------- D* and V


def _probe_optimal_discriminator(namespace: Mapping[str, Any]) -> Observations:
    function = namespace["optimal_discriminator"]
    return {case: _observe(function, p, q, number=False) for case, (p, q) in pairs().items()}


def _probe_value_function(namespace: Mapping[str, Any]) -> Observations:
    function = namespace["value_function"]
    return {case: _observe(function, d, p, q) for case, (d, p, q) in value_cases().items()}


# ---------------------------------------------------------------- the identity


#: The earlier exercises ``identity_sides`` may call: graded with their stand-ins.
_BEFORE_THE_IDENTITY = (
    "check_distributions",
    "kl_divergence",
    "js_divergence",
    "optimal_discriminator",
    "value_function",
)


def _probe_identity(namespace: Mapping[str, Any]) -> Observations:
    function = namespace["identity_sides"]
    with _graded_alone(function, namespace, _BEFORE_THE_IDENTITY):
        return {case: _observe(function, p, q) for case, (p, q) in pairs().items()}


PROBES: dict[str, Probe] = probes(
    __name__,
    Probe("kl_divergence", ("kl_divergence",), _probe_divergence("kl_divergence")),
    # check_distributions' stand-in is the KL reference's validation.
    Probe("js_divergence", ("js_divergence",), _probe_divergence("js_divergence"), (_KL,)),
    Probe("optimal_discriminator", ("optimal_discriminator",), _probe_optimal_discriminator),
    Probe("value_function", ("value_function",), _probe_value_function, (_D_STAR,)),
    Probe("identity_sides", ("identity_sides",), _probe_identity, (_KL, _JS, _D_STAR, _V)),
)
