"""Submissions to the Jensen-Shannon chapter: correct ones written unlike ours, and real mistakes."""

from __future__ import annotations

from tests.lab_2d_variants import Variant, _wrong

NUMPY_STYLE = """
import numpy as np


def check_distributions(p, q):
    p, q = np.asarray(p), np.asarray(q)
    if p.shape != q.shape or (p < 0).any() or (q < 0).any():
        raise ValueError("p and q must be probability vectors of one shape")
    if not (np.isclose(p.sum(), 1) and np.isclose(q.sum(), 1)):
        raise ValueError("probabilities must sum to 1")


def kl_divergence(p, q):
    check_distributions(p, q)
    total = 0.0
    for pi, qi in zip(p.tolist(), q.tolist()):
        if pi > 0:
            total += pi * np.log(pi / qi) if qi > 0 else np.inf
    return float(total)
"""

JS_VIA_ENTROPY = """
def js_divergence(p, q):
    check_distributions(p, q)

    def entropy(r):
        return -torch.where(r > 0, r * torch.log(r), 0.0).sum().item()

    return entropy((p + q) / 2) - (entropy(p) + entropy(q)) / 2
"""

D_STAR_INVERTED = """
def optimal_discriminator(p_data, p_g):
    total = p_data + p_g
    return torch.where(total > 0, p_g / torch.where(total > 0, total, 1.0), 0.5)


def value_function(d, p_data, p_g):
    real = torch.where(p_data > 0, p_data * torch.log(d), 0.0)
    fake = torch.where(p_g > 0, p_g * torch.log(1 - d), 0.0)
    return (real + fake).sum().item()
"""

KL_WRONG_DIRECTION = """
def check_distributions(p, q):
    if p.shape != q.shape or (p < 0).any() or (q < 0).any() or abs(p.sum() - 1) > 1e-6 or abs(q.sum() - 1) > 1e-6:
        raise ValueError("not two distributions of one shape")


def kl_divergence(p, q):
    check_distributions(p, q)
    return torch.where(q > 0, q * torch.log(q / p), 0.0).sum().item()
"""

KL_LOG2 = KL_WRONG_DIRECTION.replace(
    "torch.where(q > 0, q * torch.log(q / p), 0.0)", "torch.where(p > 0, p * torch.log2(p / q), 0.0)"
)

KL_NAIVE_ZEROS = KL_WRONG_DIRECTION.replace("torch.where(q > 0, q * torch.log(q / p), 0.0)", "(p * torch.log(p / q))")

JS_NO_HALF = """
def js_divergence(p, q):
    check_distributions(p, q)
    m = (p + q) / 2
    return kl_divergence(p, m) + kl_divergence(q, m)
"""

JS_NO_VALIDATION = """
def js_divergence(p, q):
    m = (p + q) / 2
    return 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)
"""

IDENTITY_LOG2 = """
def identity_sides(p_data, p_g):
    left = value_function(optimal_discriminator(p_data, p_g), p_data, p_g)
    return left, 2 * js_divergence(p_data, p_g) - math.log(2)
"""

CORRECT: dict[str, Variant] = {
    "numpy_loops_and_entropy_form": Variant({"kl_solution": NUMPY_STYLE, "js_solution": JS_VIA_ENTROPY}),
}

WRONG: dict[str, Variant] = {
    "d_star_inverted": _wrong("discriminator_solution", D_STAR_INVERTED, "test_optimal_discriminator", "inverted"),
    "kl_wrong_direction": _wrong("kl_solution", KL_WRONG_DIRECTION, "test_kl_divergence", "KL(q || p)"),
    "kl_log_base_2": _wrong("kl_solution", KL_LOG2, "test_kl_divergence", "log base 2"),
    "kl_nan_on_zeros": _wrong("kl_solution", KL_NAIVE_ZEROS, "test_kl_divergence", "0 log 0 = 0"),
    "js_missing_one_half": _wrong("js_solution", JS_NO_HALF, "test_js_divergence", "factor 1/2"),
    "js_without_validation": _wrong("js_solution", JS_NO_VALIDATION, "test_js_divergence", "should raise ValueError"),
    "identity_with_log_2": _wrong("identity_solution", IDENTITY_LOG2, "test_identity_sides", "log 2 subtracted"),
}

#: Which checks each test cell of the chapter runs.
TEST_CELL_CHECKS: dict[str, tuple[str, ...]] = {
    "test_optimal_discriminator": ("optimal_discriminator", "optimal_discriminator_details"),
    "test_value_function": ("value_function", "value_function_details"),
    "test_kl_divergence": ("kl_divergence", "kl_divergence_details"),
    "test_js_divergence": ("js_divergence", "js_divergence_details"),
    "test_identity_sides": ("identity_sides", "identity_sides_details"),
}
