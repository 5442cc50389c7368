"""Checks of the Jensen-Shannon chapter (``solutions/lab_js_divergence``).

Every exercise is a pure function of discrete distributions, so each check calls
the student's function on fixed cases and compares with
:mod:`coursepkg.theory.divergences`. Failing values are matched against the usual
mistakes (KL in the wrong direction, log base 2, a missing factor 1/2, an
inverted ``D*``) to say which one was made.

What the exercise texts fix, and so all that the checks hold a submission to:

* inputs are 1D ``float64`` tensors, passed positionally: parameter names are free,
  and every call gets copies, so a function that changes its inputs in place cannot
  change the cases;
* ``kl_divergence``, ``js_divergence`` and ``value_function`` return one number: a
  Python float, or a tensor holding that one number, without an autograd graph;
  ``optimal_discriminator`` a tensor of shape ``(k,)``; ``identity_sides`` two
  such numbers, as a tuple or a list;
* the conventions at the edges: ``0 log 0 = 0`` (a term whose probability is 0 is
  0), ``KL(p || q) = +inf`` where some ``q_i = 0 < p_i``, ``D* = 1/2`` where both
  probabilities are 0; the hidden checks probe them, and disjoint supports
  (``JSD = log 2``) and equal distributions (``JSD = 0``);
* KL and JS raise ``ValueError`` for inputs that are not two distributions of one shape.

Each exercise is graded on its own. A function that calls the student's answer to
an earlier exercise (``js_divergence`` calling ``kl_divergence`` or
``check_distributions``; ``identity_sides`` calling ``optimal_discriminator``,
``value_function`` and ``js_divergence``) gets a stand-in for it: the reference,
taking the arguments as the student's function would (keywords bound by its
signature) and returning its value in the type the student's returns (a float, a
0-d tensor...), so that code built on the student's own answer keeps working and a
mistake costs the points of one exercise only.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch

from coursepkg.grading.checks import (
    Check,
    CheckFailed,
    Observations,
    assert_matches,
    bind,
    carries_graph,
    check_pair,
    outcome,
    registry,
    require,
    substituted,
)
from coursepkg.theory import divergences as reference

__all__ = ["CHECKS", "ANSWER_KEYS", "check"]

#: The modules that hold this lab's answers (the divergences). The isolated re-run
#: makes them, and every
#: module that imports them, unimportable (:func:`coursepkg.grading.isolation.blocked_modules`).
ANSWER_KEYS: tuple[str, ...] = ("coursepkg.theory.divergences",)

LOG2 = math.log(2)


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _random_pairs(count: int, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(7)
    pairs = []
    for _ in range(count):
        p, q = torch.rand(size, generator=g, dtype=torch.float64), torch.rand(size, generator=g, dtype=torch.float64)
        pairs.append((p / p.sum(), q / q.sum()))
    return pairs


#: Named argument tuples shared by the probes and the judges: ``(p, q)``, each of shape ``(k,)``.
PAIRS: dict[str, tuple[torch.Tensor, torch.Tensor]] = {
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
#: Inputs that are not pairs of distributions: each must raise ValueError.
INVALID: dict[str, tuple[torch.Tensor, torch.Tensor]] = {
    "not summing to 1": (_t(0.5, 0.6), _t(0.5, 0.5)),
    "negative entry": (_t(1.5, -0.5), _t(0.5, 0.5)),
    "shapes differ": (_t(0.5, 0.5), _t(0.2, 0.3, 0.5)),
}

_VISIBLE = ("basic", "asymmetric")
_ALL = tuple(PAIRS)


def _call(name: str, *args: torch.Tensor) -> str:
    """A call as messages show it, positional like the checks make it: ``"kl_divergence([0.1, 0.9], [0.5, 0.5])"``."""
    return f"{name}({', '.join(str([round(v, 4) for v in a.tolist()]) for a in args)})"


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
    reference.kl_divergence(p, q)


def _value_of_any_d(d: torch.Tensor, p_data: torch.Tensor, p_g: torch.Tensor) -> float:
    """V(D, G) as the reference computes it, for any ``d`` of shape ``(k,)``, not only one in ``[0, 1]``.

    The stand-in for ``value_function``: an ``identity_sides`` that computes ``D*`` its
    own way (with ``nan`` where both probabilities are 0, which ``V`` ignores) is judged
    on the identity, not on ``D*``.
    """
    _validate(p_data, p_g)
    d = torch.as_tensor(d, dtype=torch.float64)
    real = torch.where(p_data > 0, p_data * torch.log(d), 0.0)
    fake = torch.where(p_g > 0, p_g * torch.log1p(-d), 0.0)
    return (real + fake).sum().item()


#: The reference version of each function a later exercise may call, and how many
#: positional arguments it takes.
_REFERENCES: dict[str, tuple[Callable[..., Any], int]] = {
    "check_distributions": (_validate, 2),
    "kl_divergence": (reference.kl_divergence, 2),
    "js_divergence": (reference.js_divergence, 2),
    "optimal_discriminator": (reference.optimal_discriminator, 2),
    "value_function": (_value_of_any_d, 3),
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
    """The reference's ``value`` in the type of ``mine``, what the student's own function returned.

    A float becomes a tensor of ``mine``'s shape and dtype (a 0-d or a ``(1,)`` tensor)
    or a numpy number; a ``D*`` tensor takes ``mine``'s dtype. ``None`` (from the stand-in
    for ``check_distributions``) gives ``mine`` itself: what the student's validation
    returns, the inputs as tensors perhaps.
    """
    if value is None:
        return mine
    if isinstance(mine, torch.Tensor):
        dtype = mine.dtype if mine.is_floating_point() else torch.float64
        typed = torch.as_tensor(value, dtype=dtype)
        return typed.reshape(mine.shape) if typed.numel() == mine.numel() else value
    if isinstance(mine, np.generic) and isinstance(value, float):
        return np.float64(value)
    if isinstance(mine, np.ndarray):
        typed = np.asarray(value, dtype=np.float64)
        return typed.reshape(mine.shape) if typed.size == mine.size else value
    return value


def _stand_in(name: str, own: Any) -> Callable[..., Any]:
    """What a later exercise calls instead of the student's ``name`` (their ``own`` function, if any).

    The reference, called with the arguments as ``own`` would take them, its value
    returned in the type that ``own`` returns for the same call; an invalid input
    raises the reference's ValueError.
    """
    function, arity = _REFERENCES[name]
    own = own if callable(own) else None

    def stand_in(*args: Any, **kwargs: Any) -> Any:
        try:
            value = function(*_positional(own or function, args, kwargs)[:arity])
        except ValueError as error:  # said as ours, not from a line of the reference's source
            refusal = f"{name} (ours, standing in for yours) refused its arguments: {error}"
            raise ValueError(refusal) from None
        if own is None:
            return value
        try:
            mine = own(*_copies(args), **_copies(kwargs))
        except Exception:  # the student's own answer may be broken: the reference's type then
            return value
        return _typed_like(mine, value)

    stand_in.__name__ = stand_in.__qualname__ = name
    return stand_in


def _graded_alone(
    function: Callable[..., Any], namespace: Mapping[str, Any], earlier: tuple[str, ...]
) -> AbstractContextManager[None]:
    """Run ``function`` with stand-ins for the student's answers to the ``earlier`` exercises."""
    return substituted(function, {name: _stand_in(name, namespace.get(name)) for name in earlier})


# ---------------------------------------------------------------- judging numbers


def _one_number(got: Any, call: str) -> float | str:
    """An observation of a function that returns one number, as a float.

    Raises:
        CheckFailed: when it returned several numbers or ``None``. What ``outcome``
            wrote for anything else ("raised ...", "returned str ...") is passed on.
    """
    if isinstance(got, torch.Tensor):
        require(
            got.numel() == 1,
            f"{call} returned a tensor of shape {tuple(got.shape)}; expected one number, a Python float: "
            "sum the terms over i (then .item()).",
        )
        return float(got.reshape(()))
    if isinstance(got, list):
        raise CheckFailed(f"{call} returned a tuple or list of {len(got)} values; expected one number, a Python float.")
    if got == "returned NoneType None":
        raise CheckFailed(f"{call} returned None; expected one number: is the `return` missing?")
    return got


_ZEROS = (
    "Terms whose probability is 0 count as 0 (0 log 0 = 0): leave them out, e.g. "
    "torch.where(p > 0, p * torch.log(...), 0.0), instead of computing 0 * log(0) = nan."
)
_INFINITE = "KL(p || q) is +inf when some q_i = 0 < p_i, as the exercise says: do not add an epsilon to q or clamp it."
_REJECTED = (
    "These are two valid distributions (entries >= 0, zeros allowed, each summing to 1 up to 1e-6): accept them. "
    "Compare a sum with 1 within 1e-6, not with ==."
)
#: The hint for a ValueError on valid inputs, where the function differs from :data:`_REJECTED`.
_REJECTED_BY = {
    "js_divergence": (
        "p and q are two valid distributions: if a kl_divergence call raised this, it was given something that "
        "is not a distribution (the mixture m = (p + q) / 2 is one, it sums to 1); otherwise compare each sum "
        "with 1 within 1e-6, not with ==."
    ),
}


def _hint(got: float | str, expected: float, name: str) -> str:
    """What to add when ``name``'s ``got`` matches no catalogued mistake: the convention or the test it breaks."""
    if isinstance(got, float) and math.isnan(got):
        return _ZEROS
    if isinstance(got, float) and math.isinf(expected) and math.isfinite(got):
        return _INFINITE
    if isinstance(got, str) and got.startswith("raised ValueError"):
        return _REJECTED_BY.get(name, _REJECTED)
    return ""


def _assert_value(got: Any, expected: float, call: str, mistakes: Mapping[str, float], name: str = "") -> None:
    """Fail unless ``got`` is one number close to ``expected``; name the mistake it matches, or the convention.

    Args:
        got: the observation of ``call``.
        expected: the reference value.
        call: the call, as the subject of "returned".
        mistakes: the catalogued mistakes, each text mapped to the value it gives.
        name: the function called, which picks the hint for a ValueError on valid inputs.
    """
    got = _one_number(got, call)
    assert_matches(got, expected, call, mistakes, otherwise=_hint(got, expected, name))


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
                "values": {case: _observe(function, p, q) for case, (p, q) in PAIRS.items()},
                "invalid": {case: _observe(function, p, q) for case, (p, q) in INVALID.items()},
            }

    return probe


def _kl_mistakes(p: torch.Tensor, q: torch.Tensor) -> dict[str, float]:
    kl = reference.kl_divergence(p, q)
    return {
        "KL(q || p) instead of KL(p || q): the sum is weighted by p, sum_i p_i log(p_i / q_i)": reference.kl_divergence(
            q, p
        ),
        "log base 2; use the natural logarithm (torch.log)": kl / LOG2,
        "the sign is flipped: the terms are p_i log(p_i / q_i), not p_i log(q_i / p_i)": -kl,
        "the terms are averaged (a mean, or F.kl_div's default reduction); KL is their sum": kl / len(p),
    }


def _js_mistakes(p: torch.Tensor, q: torch.Tensor) -> dict[str, float]:
    m = (p + q) / 2
    js = reference.js_divergence(p, q)
    return {
        "the factor 1/2 is missing: JSD = (KL(p || m) + KL(q || m)) / 2": 2 * js,
        "log base 2; use the natural logarithm (torch.log)": js / LOG2,
        "KL in the wrong direction: use KL(p || m) and KL(q || m), with m = (p + q) / 2": 0.5
        * (reference.kl_divergence(m, p) + reference.kl_divergence(m, q)),
        "this is KL(p || q), not the Jensen-Shannon divergence": reference.kl_divergence(p, q),
        "m is the sum p + q; the mixture is their average, m = (p + q) / 2": js - LOG2,
        "this is the Jensen-Shannon distance sqrt(JSD) (what scipy's jensenshannon returns); "
        "the divergence is its square": math.sqrt(js),
    }


def _judge_values(
    name: str, cases: tuple[str, ...], mistakes: Callable[..., dict[str, float]]
) -> Callable[[Observations], str]:
    function = getattr(reference, name)

    def judge(observations: Observations) -> str:
        for case in cases:
            p, q = PAIRS[case]
            call = f"{_call(name, p, q)} [{case}]"
            _assert_value(observations["values"][case], function(p, q), call, mistakes(p, q), name)
        return f"{name} matches the reference on {len(cases)} cases."

    return judge


def _judge_invalid(name: str) -> Callable[[Observations], None]:
    def judge(observations: Observations) -> None:
        for case, seen in observations["invalid"].items():
            p, q = INVALID[case]
            require(
                isinstance(seen, str) and seen.startswith("raised ValueError:"),
                f"{_call(name, p, q)} ({case}) should raise ValueError with a message saying "
                f"what is wrong; it {seen if isinstance(seen, str) else f'returned {seen}'}.",
            )

    return judge


def _details(name: str, mistakes: Callable[..., dict[str, float]]) -> Callable[[Observations], str]:
    values, invalid = _judge_values(name, _ALL, mistakes), _judge_invalid(name)

    def judge(observations: Observations) -> str:
        values(observations)
        invalid(observations)
        return f"{name} handles zeros, disjoint supports and invalid inputs."

    return judge


# ---------------------------------------------------------------- D* and V


def _probe_optimal_discriminator(namespace: Mapping[str, Any]) -> Observations:
    function = namespace["optimal_discriminator"]
    return {case: _observe(function, p, q, number=False) for case, (p, q) in PAIRS.items()}


_INVERTED = "the ratio is inverted: p_g / (p_data + p_g) instead of D* = p_data / (p_data + p_g)"


def _judge_optimal_discriminator_cases(observations: Observations, cases: tuple[str, ...]) -> None:
    for case in cases:
        p, q = PAIRS[case]
        got, expected = observations[case], reference.optimal_discriminator(p, q)
        call = f"{_call('optimal_discriminator', p, q)} [{case}]"
        require(
            isinstance(got, torch.Tensor) and got.shape == expected.shape,
            f"{call} must return a tensor of shape {tuple(expected.shape)}; "
            f"it {got if isinstance(got, str) else f'returned {got}'}.",
        )
        # First where a point occurs (elsewhere taken as right for now), then the convention where none does.
        occurs = (p + q) > 0
        where_it_occurs = torch.where(occurs, got, expected)
        assert_matches(where_it_occurs, expected, call, {_INVERTED: torch.where(occurs, 1 - expected, expected)})
        hint = (
            "Where p_data and p_g are both 0, p_data / (p_data + p_g) is 0 / 0 = nan: return 1/2 there, "
            "as the exercise says (torch.where(total > 0, p_data / total, 0.5))."
            if got[~occurs].isnan().any()
            else "Where p_data and p_g are both 0 any value is optimal, and the exercise's convention is 1/2."
        )
        assert_matches(got, expected, call, {}, otherwise=hint)


def _judge_optimal_discriminator(observations: Observations) -> str:
    _judge_optimal_discriminator_cases(observations, _VISIBLE)
    return "optimal_discriminator matches p_data / (p_data + p_g)."


def _judge_optimal_discriminator_details(observations: Observations) -> str:
    _judge_optimal_discriminator_cases(observations, _ALL)
    return "optimal_discriminator is right with zeros, disjoint supports and 1/2 where both are 0."


def _value_cases() -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(d, p_data, p_g)`` per case: ``D*`` of every pair (0 or 1 where one probability is 0), and two more ``d``."""
    cases = {case: (reference.optimal_discriminator(p, q), p, q) for case, (p, q) in PAIRS.items()}
    cases["half"] = (_t(0.5, 0.5, 0.5), *PAIRS["basic"])
    cases["some d"] = (_t(0.9, 0.2, 0.6), *PAIRS["basic"])
    return cases


def _probe_value_function(namespace: Mapping[str, Any]) -> Observations:
    function = namespace["value_function"]
    return {case: _observe(function, d, p, q) for case, (d, p, q) in _value_cases().items()}


def _value_mistakes(d: torch.Tensor, p: torch.Tensor, q: torch.Tensor) -> dict[str, float]:
    """The usual mistakes in V(D, G) and the value each gives."""
    swapped = float((p * torch.log1p(-d) + q * torch.log(d)).nansum())
    value = reference.value_function(d, p, q)
    return {
        "p_data and p_g are swapped: V = sum p_data log d + p_g log(1 - d)": swapped,
        "the sign is flipped: this is -V, the discriminator's loss; V itself is at most 0": -value,
        "the terms are averaged over the k points; V is their sum": value / len(d),
    }


def _judge_value_cases(observations: Observations, cases: tuple[str, ...]) -> None:
    all_cases = _value_cases()
    for case in cases:
        d, p, q = all_cases[case]
        call = f"{_call('value_function', d, p, q)} [{case}]"
        _assert_value(observations[case], reference.value_function(d, p, q), call, _value_mistakes(d, p, q))


def _judge_value_function(observations: Observations) -> str:
    _judge_value_cases(observations, ("half", "some d"))
    return "value_function matches the reference."


def _judge_value_function_details(observations: Observations) -> str:
    _judge_value_cases(observations, tuple(_value_cases()))
    return "value_function is right where d is 0 or 1 and some probabilities are 0."


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
        return {case: _observe(function, p, q) for case, (p, q) in PAIRS.items()}


def _identity_mistakes(p: torch.Tensor, q: torch.Tensor) -> dict[str, float]:
    """Mistakes in the right side of the identity, 2 JSD - log 4."""
    js = reference.js_divergence(p, q)
    return {
        "log 2 subtracted instead of log 4": 2 * js - LOG2,
        "the factor 2 in front of the JSD is missing": js - math.log(4),
        "log 4 added instead of subtracted": 2 * js + math.log(4),
    }


def _identity_left_mistakes(p: torch.Tensor, q: torch.Tensor) -> dict[str, float]:
    """Mistakes in the left side of the identity, V(D*, G)."""
    d = reference.optimal_discriminator(p, q)
    return {
        "V is taken at d = 1/2; take it at D* = optimal_discriminator(p_data, p_g)": reference.value_function(
            torch.full_like(p, 0.5), p, q
        ),
        "D* is computed with p_data and p_g swapped: optimal_discriminator(p_data, p_g)": reference.value_function(
            1 - d, p, q
        ),
    }


def _judge_identity_cases(observations: Observations, cases: tuple[str, ...]) -> None:
    for case in cases:
        p, q = PAIRS[case]
        got = observations[case]
        call = f"{_call('identity_sides', p, q)} [{case}]"
        if isinstance(got, torch.Tensor) and got.shape == (2,):  # two numbers in one tensor: a pair too
            got = got.tolist()
        require(
            isinstance(got, list) and len(got) == 2,
            f"{call} must return a pair of numbers (V(D*, G), 2 JSD - log 4), as a tuple or a list; "
            f"it {got if isinstance(got, str) else f'returned {got}'}.",
        )
        left, right = reference.minimax_identity(p, q)
        _assert_value(got[0], left, f"the first value of {call}, V(D*, G),", _identity_left_mistakes(p, q))
        _assert_value(got[1], right, f"the second value of {call}, 2 JSD - log 4,", _identity_mistakes(p, q))


def _judge_identity(observations: Observations) -> str:
    _judge_identity_cases(observations, ("basic",))
    return "both sides of the identity match the reference."


def _judge_identity_details(observations: Observations) -> str:
    _judge_identity_cases(observations, _ALL)
    return "the identity holds on every case, -log 4 for equal distributions."


# ---------------------------------------------------------------- registry

CHECKS: dict[str, Check] = registry(
    *(
        check_pair(
            name, (name,), _probe_divergence(name), _judge_values(name, _VISIBLE, mistakes), _details(name, mistakes)
        )
        for name, mistakes in (("kl_divergence", _kl_mistakes), ("js_divergence", _js_mistakes))
    ),
    check_pair(
        "optimal_discriminator",
        ("optimal_discriminator",),
        _probe_optimal_discriminator,
        _judge_optimal_discriminator,
        _judge_optimal_discriminator_details,
    ),
    check_pair(
        "value_function",
        ("value_function",),
        _probe_value_function,
        _judge_value_function,
        _judge_value_function_details,
    ),
    check_pair("identity_sides", ("identity_sides",), _probe_identity, _judge_identity, _judge_identity_details),
)


#: ``check(name, globals())``, called by the test cells.
check = bind(CHECKS, "the Jensen-Shannon chapter")
