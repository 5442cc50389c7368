"""Submissions to the LSI lab: correct ones written unlike ours, and real mistakes."""

from __future__ import annotations

from tests.lab_2d_variants import Variant, _wrong

TEST_CELL_CHECKS: dict[str, tuple[str, ...]] = {
    "test_boldness": ("boldness", "boldness_details"),
    "test_lightness": ("lightness", "lightness_details"),
    "test_digit_probability": ("digit_probability", "digit_probability_details"),
    "test_evaluate": ("evaluate", "evaluate_details"),
    "test_illuminate": ("illuminate", "illuminate_details"),
}


def _boldness(body: str) -> str:
    return f"""
def boldness(images):
    x = images.reshape(len(images), -1)
    return {body}
"""


def _lightness(body: str) -> str:
    return f"""
def lightness(images):
    x = images.reshape(len(images), -1)
    mask = x >= 0.5
    count = mask.sum(dim=1)
    total = (x * mask).sum(dim=1)
    return {body}
"""


def _probability(body: str) -> str:
    return f"""
def digit_probability(classifier, images, digit):
    with torch.no_grad():
        return {body}
"""


def _evaluate(
    images: str = "(generator(z) + 1) / 2",
    measures: str = "[boldness(images), lightness(images)]",
    digit: str = "digit",
) -> str:
    return f"""
def evaluate(latents, generator, classifier, digit=8):
    with torch.no_grad():
        z = torch.from_numpy(np.asarray(latents, dtype=np.float32))
        images = {images}
        objectives = digit_probability(classifier, images.reshape(-1, 1, 28, 28), {digit})
        columns = {measures}
    return objectives.numpy().astype(np.float64), np.column_stack([c.numpy() for c in columns])
"""


def _illuminate(body: str) -> str:
    return f"""
def illuminate(scheduler, evaluate, iterations):
{body}
"""


_LOOP = """    for _ in range(iterations):
        solutions = scheduler.ask()
        objectives, measures = evaluate(solutions)
        scheduler.tell(objectives, measures)"""

CORRECT: dict[str, Variant] = {
    "count_nonzero_nan_to_num_softmax_while_loop": Variant(
        {
            "boldness_solution": _boldness("torch.count_nonzero(x >= 0.5, dim=1).to(torch.float32)"),
            "lightness_solution": _lightness("torch.nan_to_num(total / count, nan=0.0)"),
            "probability_solution": _probability(
                "torch.softmax(classifier((images - 0.1307) / 0.3081), dim=1)[:, digit]"
            ),
            "evaluate_solution": _evaluate(images="generator(z).view(-1, 784) * 0.5 + 0.5"),
            "illuminate_solution": _illuminate(
                """    done = 0
    while done < iterations:
        asked = scheduler.ask()
        scheduler.tell(*evaluate(asked))
        done += 1"""
            ),
        }
    ),
    "numpy_measures": Variant(
        {
            "boldness_solution": """
def boldness(images):
    pixels = images.detach().cpu().numpy().reshape(images.shape[0], -1)
    return torch.tensor((pixels >= 0.5).sum(axis=1), dtype=torch.float32)
""",
            "lightness_solution": """
def lightness(images):
    pixels = images.detach().cpu().numpy().reshape(images.shape[0], -1)
    bright = np.where(pixels >= 0.5, pixels, 0.0)
    count = (pixels >= 0.5).sum(axis=1)
    mean = np.divide(bright.sum(axis=1), count, out=np.zeros(len(pixels)), where=count > 0)
    return torch.tensor(mean, dtype=torch.float32)
""",
        }
    ),
}

WRONG: dict[str, Variant] = {
    "boldness_strictly_above": _wrong(
        "boldness_solution", _boldness("(x > 0.5).sum(dim=1).float()"), "test_boldness", "pixels > 0.5"
    ),
    "boldness_sums_values": _wrong(
        "boldness_solution", _boldness("(x * (x >= 0.5)).sum(dim=1)"), "test_boldness", "were summed"
    ),
    "boldness_fraction": _wrong(
        "boldness_solution", _boldness("(x >= 0.5).float().mean(dim=1)"), "test_boldness", "fraction"
    ),
    "boldness_whole_batch": _wrong(
        "boldness_solution", _boldness("(x >= 0.5).sum().float()"), "test_boldness", "shape"
    ),
    "lightness_over_784": _wrong("lightness_solution", _lightness("total / 784"), "test_lightness", "784"),
    "lightness_tutorial_plus_one": _wrong(
        "lightness_solution", _lightness("total / (count + 1)"), "test_lightness", "boldness + 1"
    ),
    "lightness_nan_when_blank": _wrong("lightness_solution", _lightness("total / count"), "test_lightness", "nan"),
    "probability_log": _wrong(
        "probability_solution",
        _probability("classifier((images - 0.1307) / 0.3081)[:, digit]"),
        "test_digit_probability",
        "log-probabilities",
    ),
    "probability_not_normalised": _wrong(
        "probability_solution",
        _probability("classifier(images).exp()[:, digit]"),
        "test_digit_probability",
        "not normalised",
    ),
    "probability_rescaled_as_gan": _wrong(
        "probability_solution",
        _probability("classifier(((images + 1) / 2 - 0.1307) / 0.3081).exp()[:, digit]"),
        "test_digit_probability",
        "[-1, 1]",
    ),
    "probability_always_eight": _wrong(
        "probability_solution",
        _probability("classifier((images - 0.1307) / 0.3081).exp()[:, 8]"),
        "test_digit_probability",
        "digit_probability(lenet, images, 3)",
    ),
    "evaluate_without_rescaling": _wrong(
        "evaluate_solution", _evaluate(images="generator(z)"), "test_evaluate", "[-1, 1]"
    ),
    "evaluate_measures_swapped": _wrong(
        "evaluate_solution", _evaluate(measures="[lightness(images), boldness(images)]"), "test_evaluate", "wrong order"
    ),
    "evaluate_always_eight": _wrong("evaluate_solution", _evaluate(digit="8"), "test_evaluate", "digit=5"),
    "illuminate_one_short": _wrong(
        "illuminate_solution",
        _illuminate(_LOOP.replace("range(iterations)", "range(iterations - 1)")),
        "test_illuminate",
        "once per iteration",
    ),
    "illuminate_tell_swapped": _wrong(
        "illuminate_solution",
        _illuminate(_LOOP.replace("tell(objectives, measures)", "tell(measures, objectives)")),
        "test_illuminate",
        "objectives first",
    ),
    "illuminate_asks_twice": _wrong(
        "illuminate_solution",
        _illuminate(
            _LOOP.replace("solutions = scheduler.ask()", "scheduler.ask()\n        solutions = scheduler.ask()")
        ),
        "test_illuminate",
        "followed by exactly one",
    ),
    "illuminate_evaluates_fresh_noise": _wrong(
        "illuminate_solution",
        _illuminate(_LOOP.replace("evaluate(solutions)", "evaluate(np.random.normal(size=solutions.shape))")),
        "test_illuminate",
        "exactly the solutions asked for",
    ),
    "illuminate_never_tells": _wrong(
        "illuminate_solution",
        _illuminate(_LOOP.replace("scheduler.tell(objectives, measures)", "pass")),
        "test_illuminate",
        "tell",
    ),
}
