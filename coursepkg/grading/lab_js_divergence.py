"""Checks of the Jensen-Shannon chapter (``solutions/lab_js_divergence``).

Every exercise is a pure function of discrete distributions, so each check
calls the student's function on fixed cases and compares with
:mod:`coursepkg.theory.divergences`. Failing values are matched against the usual
mistakes (KL in the wrong direction, log base 2, a missing factor 1/2, an
inverted ``D*``) to say which one was made.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from coursepkg.grading.checks import (
    Check,
    Observations,
    assert_matches,
    bind,
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


#: Named argument tuples shared by the probes and the judges.
PAIRS: dict[str, tuple[torch.Tensor, torch.Tensor]] = {
    "basic": (_t(0.1, 0.4, 0.5), _t(0.3, 0.3, 0.4)),
    "asymmetric": (_t(0.7, 0.2, 0.1), _t(0.2, 0.3, 0.5)),
    "zeros in p": (_t(0.0, 0.5, 0.5), _t(0.2, 0.3, 0.5)),
    "zeros in q": (_t(0.2, 0.3, 0.5), _t(0.0, 0.5, 0.5)),
    "disjoint": (_t(0.5, 0.5, 0.0, 0.0), _t(0.0, 0.0, 0.4, 0.6)),
    "equal": (_t(0.25, 0.25, 0.5), _t(0.25, 0.25, 0.5)),
    **{f"random {i}": pair for i, pair in enumerate(_random_pairs(4, 6))},
}
#: Inputs that are not pairs of distributions: each must raise ValueError.
INVALID: dict[str, tuple[torch.Tensor, torch.Tensor]] = {
    "not summing to 1": (_t(0.5, 0.6), _t(0.5, 0.5)),
    "negative entry": (_t(1.5, -0.5), _t(0.5, 0.5)),
    "shapes differ": (_t(0.5, 0.5), _t(0.2, 0.3, 0.5)),
}


def _assert_value(got: Any, expected: float, call: str, mistakes: Mapping[str, float]) -> None:
    """Fail unless ``got`` is close to ``expected``; name the mistake it matches, or explain a nan."""
    nan = isinstance(got, float) and math.isnan(got)
    zeros = "Terms with p_i = 0 count as 0 (0 log 0 = 0): leave them out instead of computing 0 * log(0)."
    assert_matches(got, expected, call, mistakes, otherwise=zeros if nan else "")


# ---------------------------------------------------------------- KL and JS


def _probe_divergence(name: str) -> Callable[[Mapping[str, Any]], Observations]:
    def probe(namespace: Mapping[str, Any]) -> Observations:
        function = namespace[name]
        # js_divergence may call the student's kl_divergence: give it the reference.
        with substituted(function, {"kl_divergence": reference.kl_divergence}):
            return {
                "values": {case: outcome(function, p, q) for case, (p, q) in PAIRS.items()},
                "invalid": {case: outcome(function, p, q) for case, (p, q) in INVALID.items()},
            }

    return probe


def _kl_mistakes(p: torch.Tensor, q: torch.Tensor) -> dict[str, float]:
    return {
        "KL(q || p) instead of KL(p || q): the sum is weighted by p, sum_i p_i log(p_i / q_i)": reference.kl_divergence(
            q, p
        ),
        "log base 2; use the natural logarithm (torch.log)": reference.kl_divergence(p, q) / LOG2,
    }


def _js_mistakes(p: torch.Tensor, q: torch.Tensor) -> dict[str, float]:
    m = (p + q) / 2
    return {
        "the factor 1/2 is missing: JSD = (KL(p || m) + KL(q || m)) / 2": 2 * reference.js_divergence(p, q),
        "log base 2; use the natural logarithm (torch.log)": reference.js_divergence(p, q) / LOG2,
        "KL in the wrong direction: use KL(p || m) and KL(q || m), with m = (p + q) / 2": 0.5
        * (reference.kl_divergence(m, p) + reference.kl_divergence(m, q)),
        "this is KL(p || q), not the Jensen-Shannon divergence": reference.kl_divergence(p, q),
    }


def _judge_values(
    name: str, cases: tuple[str, ...], mistakes: Callable[..., dict[str, float]]
) -> Callable[[Observations], str]:
    function = getattr(reference, name)

    def judge(observations: Observations) -> str:
        for case in cases:
            p, q = PAIRS[case]
            call = f"{name}(p={p.tolist()}, q={q.tolist()}) [{case}]"
            _assert_value(observations["values"][case], function(p, q), call, mistakes(p, q))
        return f"{name} matches the reference on {len(cases)} cases."

    return judge


def _judge_invalid(name: str) -> Callable[[Observations], None]:
    def judge(observations: Observations) -> None:
        for case, seen in observations["invalid"].items():
            p, q = INVALID[case]
            require(
                isinstance(seen, str) and seen.startswith("raised ValueError:"),
                f"{name}(p={p.tolist()}, q={q.tolist()}) ({case}) should raise ValueError with a message saying "
                f"what is wrong; it {seen if isinstance(seen, str) else f'returned {seen}'}.",
            )

    return judge


_VISIBLE = ("basic", "asymmetric")
_ALL = tuple(PAIRS)


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
    return {case: outcome(function, p, q) for case, (p, q) in PAIRS.items()}


def _judge_optimal_discriminator_cases(observations: Observations, cases: tuple[str, ...]) -> None:
    for case in cases:
        p, q = PAIRS[case]
        got, expected = observations[case], reference.optimal_discriminator(p, q)
        call = f"optimal_discriminator(p_data={p.tolist()}, p_g={q.tolist()}) [{case}]"
        require(
            isinstance(got, torch.Tensor) and got.shape == expected.shape,
            f"{call} must return a tensor of shape {tuple(expected.shape)}; "
            f"it {got if isinstance(got, str) else f'returned {got}'}.",
        )
        defined = (p + q) > 0  # where both are 0, any value is optimal
        inverted = "the ratio is inverted: p_g / (p_data + p_g) instead of D* = p_data / (p_data + p_g)"
        assert_matches(got[defined], expected[defined], call, {inverted: 1 - expected[defined]})


def _judge_optimal_discriminator(observations: Observations) -> str:
    _judge_optimal_discriminator_cases(observations, _VISIBLE)
    return "optimal_discriminator matches p_data / (p_data + p_g)."


def _judge_optimal_discriminator_details(observations: Observations) -> str:
    _judge_optimal_discriminator_cases(observations, _ALL)
    return "optimal_discriminator is right with zeros and disjoint supports too."


def _value_cases() -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    cases = {case: (reference.optimal_discriminator(p, q), p, q) for case, (p, q) in PAIRS.items()}
    cases["half"] = (_t(0.5, 0.5, 0.5), *PAIRS["basic"])
    cases["some d"] = (_t(0.9, 0.2, 0.6), *PAIRS["basic"])
    return cases


def _probe_value_function(namespace: Mapping[str, Any]) -> Observations:
    function = namespace["value_function"]
    return {case: outcome(function, d, p, q) for case, (d, p, q) in _value_cases().items()}


def _value_mistakes(d: torch.Tensor, p: torch.Tensor, q: torch.Tensor) -> dict[str, float]:
    """The mistake in V(D, G): the two distributions swapped."""
    swapped = float((p * torch.log1p(-d) + q * torch.log(d)).nansum())
    return {"p_data and p_g are swapped: V = sum p_data log d + p_g log(1 - d)": swapped}


def _judge_value_cases(observations: Observations, cases: tuple[str, ...]) -> None:
    all_cases = _value_cases()
    for case in cases:
        d, p, q = all_cases[case]
        call = f"value_function(d={[round(v, 4) for v in d.tolist()]}, p_data={p.tolist()}, p_g={q.tolist()}) [{case}]"
        _assert_value(observations[case], reference.value_function(d, p, q), call, _value_mistakes(d, p, q))


def _judge_value_function(observations: Observations) -> str:
    _judge_value_cases(observations, ("half", "some d"))
    return "value_function matches the reference."


def _judge_value_function_details(observations: Observations) -> str:
    _judge_value_cases(observations, tuple(_value_cases()))
    return "value_function is right where d is 0 or 1 and some probabilities are 0."


# ---------------------------------------------------------------- the identity


def _probe_identity(namespace: Mapping[str, Any]) -> Observations:
    function = namespace["identity_sides"]
    # Graded on its own: the functions of the earlier exercises are the references.
    earlier = {name: getattr(reference, name) for name in ("optimal_discriminator", "value_function", "js_divergence")}
    with substituted(function, earlier):
        return {case: outcome(function, p, q) for case, (p, q) in PAIRS.items()}


def _identity_mistakes(p: torch.Tensor, q: torch.Tensor) -> dict[str, float]:
    """Mistakes in the right side of the identity, 2 JSD - log 4."""
    js = reference.js_divergence(p, q)
    return {
        "log 2 subtracted instead of log 4": 2 * js - LOG2,
        "the factor 2 in front of the JSD is missing": js - math.log(4),
    }


def _judge_identity_cases(observations: Observations, cases: tuple[str, ...]) -> None:
    for case in cases:
        p, q = PAIRS[case]
        got = observations[case]
        call = f"identity_sides(p_data={p.tolist()}, p_g={q.tolist()}) [{case}]"
        require(
            isinstance(got, list) and len(got) == 2,
            f"{call} must return a pair of floats (V(D*, G), 2 JSD - log 4); "
            f"it {got if isinstance(got, str) else f'returned {got}'}.",
        )
        left, right = reference.minimax_identity(p, q)
        _assert_value(got[0], left, f"the first value of {call}, V(D*, G),", {})
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
