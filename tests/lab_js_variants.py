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


# ---------------------------------------------------------------- class 1: helpers in a cell the student added

XLOGY_HELPERS = """
TOLERANCE = 1e-6  # how far from 1 a sum of probabilities may be


def xlogy_ratio(a, b):
    \"\"\"a_i log(a_i / b_i) element-wise: 0 where a_i = 0, inf where b_i = 0 < a_i.\"\"\"
    return torch.where(a > 0, torch.special.xlogy(a, a) - torch.special.xlogy(a, b), 0.0)
"""

KL_WITH_ADDED_HELPERS = """
def check_distributions(p, q):
    if p.shape != q.shape:
        raise ValueError("p and q must have the same shape")
    if (p < 0).any() or (q < 0).any():
        raise ValueError("probabilities cannot be negative")
    if abs(float(p.sum()) - 1) > TOLERANCE or abs(float(q.sum()) - 1) > TOLERANCE:
        raise ValueError("probabilities must sum to 1")


def kl_divergence(p, q):
    check_distributions(p, q)
    return xlogy_ratio(p, q).sum()  # a 0-d tensor
"""

# Builds on kl_divergence returning a 0-d tensor: graded with the reference KL, it must still get one.
JS_ON_TENSOR_KL = """
def js_divergence(p, q):
    check_distributions(p, q)
    m = (p + q) / 2
    return (0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)).item()
"""

LOG2_HELPER = """
def log_ratio(a, b):
    \"\"\"log(a / b) element-wise.\"\"\"
    return torch.log2(a) - torch.log2(b)
"""

KL_WITH_ADDED_LOG_RATIO = """
def check_distributions(p, q):
    if p.shape != q.shape or (p < 0).any() or (q < 0).any():
        raise ValueError("p and q must be non-negative and of one shape")
    if abs(p.sum().item() - 1) > 1e-6 or abs(q.sum().item() - 1) > 1e-6:
        raise ValueError("p and q must sum to 1")


def kl_divergence(p, q):
    check_distributions(p, q)
    return torch.where(p > 0, p * log_ratio(p, q), 0.0).sum().item()
"""

# ---------------------------------------------------------------- class 2: freedom the text allows

# Renamed parameters, called by keyword from the later exercises; tensors, lists and numpy numbers returned.
RENAMED_D_AND_V = """
def optimal_discriminator(real, fake):
    return torch.nan_to_num(real / (real + fake), nan=0.5)


def value_function(disc, real, fake):
    return torch.special.xlogy(real, disc).sum() + torch.special.xlog1py(fake, -disc).sum()
"""

RENAMED_KL = """
import numpy as np


def check_distributions(first, second):
    if first.shape != second.shape:
        raise ValueError("shapes differ")
    for r in (first, second):
        if (r < 0).any() or not torch.isclose(r.sum(), torch.tensor(1.0, dtype=r.dtype), atol=1e-6, rtol=0):
            raise ValueError("not a probability vector")


def kl_divergence(P, Q):
    check_distributions(P, Q)
    support = P > 0
    return np.float64((P[support] * (P[support].log() - Q[support].log())).sum().item())
"""

JS_VIA_HELPER_AND_KEYWORDS = """
def half_kl(r, m):
    return kl_divergence(P=r, Q=m) / 2


def js_divergence(first, second):
    check_distributions(first=first, second=second)
    mixture = (first + second) / 2
    return half_kl(first, mixture) + half_kl(second, mixture)
"""

IDENTITY_KEYWORDS_LIST = """
def identity_sides(real, fake):
    d = optimal_discriminator(real=real, fake=fake)
    left = value_function(disc=d, real=real, fake=fake)
    right = 2 * js_divergence(first=real, second=fake) - 2 * math.log(2)
    return [left.reshape(1), torch.tensor([right])]
"""

IDENTITY_ONE_TENSOR = """
def identity_sides(p_data, p_g):
    d = p_data / (p_data + p_g)  # nan where both are 0, which the 0 log 0 terms of V ignore
    return torch.stack([torch.as_tensor(value_function(d, p_data, p_g)),
                        torch.as_tensor(2 * js_divergence(p_data, p_g) - math.log(4))])
"""

D_AND_V_IN_PLACE = """
def optimal_discriminator(p_data, p_g):
    total = p_data + p_g
    total[total == 0] = 1.0  # in place
    d = p_data / total
    d[(p_data + p_g) == 0] = 0.5
    return d


def value_function(d, p_data, p_g):
    d.clamp_(1e-300, 1 - 1e-16)  # in place, on the caller's tensor
    return float((p_data * torch.log(d)).nansum() + (p_g * torch.log1p(-d)).nansum())
"""


# Library calls: Categorical's KL has the conventions built in, F.kl_div (log-probabilities first) has not:
# it gives nan where p_i = q_i = 0, as m_i is where both distributions are 0.
KL_WITH_CATEGORICAL = """
from torch.distributions import Categorical


def check_distributions(p, q):
    if p.shape != q.shape:
        raise ValueError(f"shapes {tuple(p.shape)} and {tuple(q.shape)} differ")
    for r in (p, q):
        if (r < 0).any() or abs(r.sum().item() - 1) > 1e-6:
            raise ValueError("not a probability vector")


def kl_divergence(p, q):
    check_distributions(p, q)
    return torch.distributions.kl_divergence(Categorical(probs=p), Categorical(probs=q))
"""

KL_WITH_KL_DIV = KL_WITH_CATEGORICAL.replace(
    "torch.distributions.kl_divergence(Categorical(probs=p), Categorical(probs=q))",
    'nn.functional.kl_div(q.log(), p, reduction="sum").item()',
)

JS_WITH_CATEGORICAL = """
from torch.distributions import Categorical, kl_divergence as kl


def js_divergence(p, q):
    check_distributions(p, q)
    m = Categorical(probs=(p + q) / 2)
    return (kl(Categorical(probs=p), m) + kl(Categorical(probs=q), m)) / 2
"""

# ---------------------------------------------------------------- class 3: one mistake, one exercise

JS_VIA_HELPER = """
def half_kl(r, m):
    return kl_divergence(p=r, q=m) / 2


def js_divergence(p, q):
    check_distributions(p, q)
    m = (p + q) / 2
    return half_kl(p, m) + half_kl(q, m)
"""

CHECK_MISSES_NEGATIVES = """
def check_distributions(p, q):
    if p.shape != q.shape:
        raise ValueError("p and q differ in shape")
    if abs(p.sum().item() - 1) > 1e-6 or abs(q.sum().item() - 1) > 1e-6:
        raise ValueError("p and q must sum to 1")


def kl_divergence(p, q):
    check_distributions(p, q)
    return torch.where(p > 0, p * torch.log(p / q), 0.0).sum().item()
"""

IDENTITY_VIA_KL = """
def identity_sides(p_data, p_g):
    m = (p_data + p_g) / 2
    left = value_function(optimal_discriminator(p_data, p_g), p_data, p_g)
    return left, kl_divergence(p_data, m) + kl_divergence(p_g, m) - math.log(4)
"""

# ---------------------------------------------------------------- classes 4-6: return types and graphs

KL_TERMS_NOT_SUMMED = KL_WRONG_DIRECTION.replace(
    "torch.where(q > 0, q * torch.log(q / p), 0.0).sum().item()", "torch.where(p > 0, p * torch.log(p / q), 0.0)"
)

KL_NO_RETURN = KL_WRONG_DIRECTION.replace(
    "return torch.where(q > 0, q * torch.log(q / p), 0.0).sum().item()",
    "divergence = torch.where(p > 0, p * torch.log(p / q), 0.0).sum().item()",
)

V_WITH_GRAPH = """
def optimal_discriminator(p_data, p_g):
    total = p_data + p_g
    return torch.where(total > 0, p_data / torch.where(total > 0, total, 1.0), 0.5)


def value_function(d, p_data, p_g):
    d = d.clone().requires_grad_(True)  # to look at dV/dd later
    real = torch.where(p_data > 0, p_data * torch.log(d), 0.0)
    fake = torch.where(p_g > 0, p_g * torch.log(1 - d), 0.0)
    return (real + fake).sum()
"""

IDENTITY_DIFFERENCE = """
def identity_sides(p_data, p_g):
    left = value_function(optimal_discriminator(p_data, p_g), p_data, p_g)
    return left - (2 * js_divergence(p_data, p_g) - math.log(4))
"""

# ---------------------------------------------------------------- class 8: conventions at the edges

D_STAR_NAN_WHERE_BOTH_ZERO = """
def optimal_discriminator(p_data, p_g):
    return p_data / (p_data + p_g)


def value_function(d, p_data, p_g):
    real = torch.where(p_data > 0, p_data * torch.log(d), 0.0)
    fake = torch.where(p_g > 0, p_g * torch.log(1 - d), 0.0)
    return (real + fake).sum().item()
"""

D_STAR_CLAMPED = D_STAR_NAN_WHERE_BOTH_ZERO.replace(
    "p_data / (p_data + p_g)", "p_data / (p_data + p_g).clamp_min(1e-12)"
)

V_NAIVE_ZEROS = """
def optimal_discriminator(p_data, p_g):
    total = p_data + p_g
    return torch.where(total > 0, p_data / torch.where(total > 0, total, 1.0), 0.5)


def value_function(d, p_data, p_g):
    return (p_data * torch.log(d) + p_g * torch.log(1 - d)).sum().item()
"""

KL_EPSILON = KL_WRONG_DIRECTION.replace(
    "torch.where(q > 0, q * torch.log(q / p), 0.0)", "torch.where(p > 0, p * torch.log(p / (q + 1e-10)), 0.0)"
)

# xlogy(p, p / m) is nan where p = m = 0: a point outside both supports (the uniform bins of section 8).
JS_XLOGY_OF_RATIO = """
def js_divergence(p, q):
    check_distributions(p, q)
    m = (p + q) / 2
    return 0.5 * (torch.xlogy(p, p / m).sum() + torch.xlogy(q, q / m).sum()).item()
"""

JS_MIXTURE_SUM = """
def js_divergence(p, q):
    check_distributions(p, q)
    return 0.5 * kl_divergence(p, p + q) + 0.5 * kl_divergence(q, p + q)
"""

VALIDATES_WITH_EQUALITY = """
def check_distributions(p, q):
    if p.shape != q.shape or (p < 0).any() or (q < 0).any() or p.sum() != 1 or q.sum() != 1:
        raise ValueError("not two distributions of one shape")


def kl_divergence(p, q):
    check_distributions(p, q)
    return torch.where(p > 0, p * torch.log(p / q), 0.0).sum().item()
"""

CORRECT: dict[str, Variant] = {
    "numpy_loops_and_entropy_form": Variant({"kl_solution": NUMPY_STYLE, "js_solution": JS_VIA_ENTROPY}),
    # Class 1: a constant and an xlogy helper in an inserted cell; KL returns a 0-d tensor, JS builds on that.
    "xlogy_helper_in_an_added_cell": Variant(
        {"kl_solution": KL_WITH_ADDED_HELPERS, "js_solution": JS_ON_TENSOR_KL},
        added={"kl_solution": XLOGY_HELPERS},
    ),
    # Class 2: parameters renamed and passed by keyword, numpy and tensor numbers, a list of (1,) tensors.
    "renamed_parameters_keywords_and_lists": Variant(
        {
            "discriminator_solution": RENAMED_D_AND_V,
            "kl_solution": RENAMED_KL,
            "js_solution": JS_VIA_HELPER_AND_KEYWORDS,
            "identity_solution": IDENTITY_KEYWORDS_LIST,
        }
    ),
    "library_calls": Variant({"kl_solution": KL_WITH_CATEGORICAL, "js_solution": JS_WITH_CATEGORICAL}),
    # Class 2: inputs changed in place (the checks pass copies), D* inline in the identity, a tensor of two values.
    "in_place_and_a_pair_in_one_tensor": Variant(
        {"discriminator_solution": D_AND_V_IN_PLACE, "identity_solution": IDENTITY_ONE_TENSOR}
    ),
}

WRONG: dict[str, Variant] = {
    "d_star_inverted": _wrong("discriminator_solution", D_STAR_INVERTED, "test_optimal_discriminator", "inverted"),
    "kl_wrong_direction": _wrong("kl_solution", KL_WRONG_DIRECTION, "test_kl_divergence", "KL(q || p)"),
    "kl_log_base_2": _wrong("kl_solution", KL_LOG2, "test_kl_divergence", "log base 2"),
    "kl_nan_on_zeros": _wrong("kl_solution", KL_NAIVE_ZEROS, "test_kl_divergence", "0 log 0 = 0"),
    "js_missing_one_half": _wrong("js_solution", JS_NO_HALF, "test_js_divergence", "factor 1/2"),
    "js_without_validation": _wrong("js_solution", JS_NO_VALIDATION, "test_js_divergence", "should raise ValueError"),
    "identity_with_log_2": _wrong("identity_solution", IDENTITY_LOG2, "test_identity_sides", "log 2 subtracted"),
    # Class 1: the mistake is in a helper of an inserted cell.
    "log_base_2_in_an_added_helper": Variant(
        {"kl_solution": KL_WITH_ADDED_LOG_RATIO},
        frozenset({"test_kl_divergence"}),
        "log base 2",
        added={"kl_solution": LOG2_HELPER},
    ),
    # Class 3: a KL mistake must not cost JS (called via a helper, by keyword) or the identity (which calls KL).
    "kl_wrong_direction_js_via_helper": Variant(
        {"kl_solution": KL_WRONG_DIRECTION, "js_solution": JS_VIA_HELPER, "identity_solution": IDENTITY_VIA_KL},
        frozenset({"test_kl_divergence"}),
        "KL(q || p)",
    ),
    "check_distributions_misses_negatives": _wrong(
        "kl_solution", CHECK_MISSES_NEGATIVES, "test_kl_divergence", "(negative entry) should raise ValueError"
    ),
    "d_star_nan_where_both_zero": _wrong(
        "discriminator_solution", D_STAR_NAN_WHERE_BOTH_ZERO, "test_optimal_discriminator", "0 / 0 = nan"
    ),
    # Classes 4-6: return types and graphs.
    "kl_terms_not_summed": _wrong("kl_solution", KL_TERMS_NOT_SUMMED, "test_kl_divergence", "expected one number"),
    "kl_without_return": _wrong("kl_solution", KL_NO_RETURN, "test_kl_divergence", "is the `return` missing?"),
    "value_function_keeps_its_graph": _wrong(
        "discriminator_solution", V_WITH_GRAPH, "test_value_function", "keeps its autograd graph"
    ),
    "identity_returns_the_difference": _wrong(
        "identity_solution", IDENTITY_DIFFERENCE, "test_identity_sides", "must return a pair of numbers"
    ),
    # Class 8: conventions at the edges, probed by the hidden checks.
    "d_star_zero_where_both_zero": _wrong(
        "discriminator_solution", D_STAR_CLAMPED, "test_optimal_discriminator", "the exercise's convention is 1/2"
    ),
    "value_function_nan_on_zeros": _wrong(
        "discriminator_solution", V_NAIVE_ZEROS, "test_value_function", "0 log 0 = 0"
    ),
    "kl_epsilon_finite_where_q_is_zero": _wrong("kl_solution", KL_EPSILON, "test_kl_divergence", "is +inf when"),
    "kl_div_nan_outside_both_supports": _wrong("kl_solution", KL_WITH_KL_DIV, "test_kl_divergence", "0 log 0 = 0"),
    "js_nan_outside_both_supports": _wrong("js_solution", JS_XLOGY_OF_RATIO, "test_js_divergence", "0 log 0 = 0"),
    "js_mixture_is_the_sum": _wrong("js_solution", JS_MIXTURE_SUM, "test_js_divergence", "m = (p + q) / 2 is one"),
    "validation_with_equality": _wrong("kl_solution", VALIDATES_WITH_EQUALITY, "test_kl_divergence", "not with =="),
}

#: Which checks each test cell of the chapter runs.
TEST_CELL_CHECKS: dict[str, tuple[str, ...]] = {
    "test_optimal_discriminator": ("optimal_discriminator", "optimal_discriminator_details"),
    "test_value_function": ("value_function", "value_function_details"),
    "test_kl_divergence": ("kl_divergence", "kl_divergence_details"),
    "test_js_divergence": ("js_divergence", "js_divergence_details"),
    "test_identity_sides": ("identity_sides", "identity_sides_details"),
}
