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

The probes, which run the student's code (and give it those stand-ins), are in
:mod:`coursepkg.grading.probes.lab_js_divergence`; the judges, here, compare what
they observed with the references. The stand-in for ``value_function``
(:func:`_value_of_any_d`) is answer code, so it lives here and is handed to the
one probe that needs it, by value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from coursepkg.grading.checks import (
    Check,
    CheckFailed,
    assert_matches,
    bind,
    check_pair,
    registry,
    require,
)
from coursepkg.grading.observe import Observations
from coursepkg.grading.probes.lab_js_divergence import CASES, INVALID, PROBES, pairs, value_cases
from coursepkg.theory import divergences as reference

# By name, not through the module: _value_of_any_d travels into the sandbox by value, where no answer key
# can be imported.
from coursepkg.theory.divergences import kl_divergence

__all__ = ["CHECKS", "ANSWER_KEYS", "check"]

#: The modules that hold this lab's answers (the divergences). The autograder's sandbox holds none
#: of them, nor any module that imports one (:func:`coursepkg.grading.isolation.blocked_modules`).
ANSWER_KEYS: tuple[str, ...] = ("coursepkg.theory.divergences",)

LOG2 = math.log(2)

_VISIBLE = ("basic", "asymmetric")
_ALL = CASES


def _call(name: str, *args: torch.Tensor) -> str:
    """A call as messages show it, positional like the checks make it: ``"kl_divergence([0.1, 0.9], [0.5, 0.5])"``."""
    return f"{name}({', '.join(str([round(v, 4) for v in a.tolist()]) for a in args)})"


# ---------------------------------------------------------------- the stand-in for value_function


def _value_of_any_d(d: torch.Tensor, p_data: torch.Tensor, p_g: torch.Tensor) -> float:
    """V(D, G) as the reference computes it, for any ``d`` of shape ``(k,)``, not only one in ``[0, 1]``.

    The stand-in for ``value_function``: an ``identity_sides`` that computes ``D*`` its
    own way (with ``nan`` where both probabilities are 0, which ``V`` ignores) is judged
    on the identity, not on ``D*``. The identity's probe gets it, by value, through
    :func:`~coursepkg.grading.observe.reference`.
    """
    kl_divergence(p_data, p_g)  # the reference's test that they are two distributions of one shape
    d = torch.as_tensor(d, dtype=torch.float64)
    real = torch.where(p_data > 0, p_data * torch.log(d), 0.0)
    fake = torch.where(p_g > 0, p_g * torch.log1p(-d), 0.0)
    return (real + fake).sum().item()


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
            p, q = pairs()[case]
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


_INVERTED = "the ratio is inverted: p_g / (p_data + p_g) instead of D* = p_data / (p_data + p_g)"


def _judge_optimal_discriminator_cases(observations: Observations, cases: tuple[str, ...]) -> None:
    for case in cases:
        p, q = pairs()[case]
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
    all_cases = value_cases()
    for case in cases:
        d, p, q = all_cases[case]
        call = f"{_call('value_function', d, p, q)} [{case}]"
        _assert_value(observations[case], reference.value_function(d, p, q), call, _value_mistakes(d, p, q))


def _judge_value_function(observations: Observations) -> str:
    _judge_value_cases(observations, ("half", "some d"))
    return "value_function matches the reference."


def _judge_value_function_details(observations: Observations) -> str:
    _judge_value_cases(observations, tuple(value_cases()))
    return "value_function is right where d is 0 or 1 and some probabilities are 0."


# ---------------------------------------------------------------- the identity


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
        p, q = pairs()[case]
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
        check_pair(PROBES[name], _judge_values(name, _VISIBLE, mistakes), _details(name, mistakes))
        for name, mistakes in (("kl_divergence", _kl_mistakes), ("js_divergence", _js_mistakes))
    ),
    check_pair(PROBES["optimal_discriminator"], _judge_optimal_discriminator, _judge_optimal_discriminator_details),
    check_pair(PROBES["value_function"], _judge_value_function, _judge_value_function_details),
    check_pair(PROBES["identity_sides"], _judge_identity, _judge_identity_details),
)


#: ``check(name, globals())``, called by the test cells.
check = bind(CHECKS, "the Jensen-Shannon chapter")
