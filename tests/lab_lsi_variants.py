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
    # The text leaves the return value free: the results are in the archive.
    "illuminate_returns_the_archive": Variant(
        {"illuminate_solution": _illuminate(_LOOP + "\n    return scheduler.archive")}
    ),
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
    # Class 1: helpers and a constant in cells the student added; lightness and a helper call boldness.
    "added_threshold_rescale_and_measures_helpers": Variant(
        {
            "boldness_solution": """
def boldness(images):
    return (images.flatten(start_dim=1) >= THRESHOLD).sum(dim=1).float()
""",
            "lightness_solution": """
def lightness(images):
    pixels = images.flatten(start_dim=1)
    total = torch.where(pixels >= THRESHOLD, pixels, torch.zeros_like(pixels)).sum(dim=1)
    return total / boldness(images).clamp(min=1)
""",
            "evaluate_solution": """
def evaluate(latents, generator, classifier, digit=8):
    with torch.no_grad():
        images = to_unit(generator(torch.tensor(latents, dtype=torch.float32))).view(-1, 1, 28, 28)
        return digit_probability(classifier, images, digit).double().numpy(), measures_of(images).double().numpy()
""",
        },
        added={
            "boldness_solution": "THRESHOLD = 0.5  # a pixel is bright from here on, in [0, 1]\n",
            "evaluate_solution": """
def to_unit(images):
    \"\"\"The generator's [-1, 1] images in [0, 1].\"\"\"
    return (images + 1) / 2


def measures_of(images):
    \"\"\"(n, 2): boldness and lightness side by side.\"\"\"
    return torch.stack([boldness(images), lightness(images)], dim=1)
""",
        },
    ),
    # Class 2: what the texts leave free. Renamed parameters called positionally (or by the student's own names),
    # numpy results, a list, float32 arrays, keyword-only digit, extra optional keyword arguments.
    "renamed_numpy_list_and_options": Variant(
        {
            "boldness_solution": """
def boldness(batch):
    return (batch.reshape(batch.shape[0], -1).numpy() >= 0.5).sum(axis=1)
""",
            "lightness_solution": """
def lightness(batch):
    pixels = batch.reshape(batch.shape[0], -1).double()
    pixels = torch.where(pixels >= 0.5, pixels, torch.nan)
    return torch.nanmean(pixels, dim=1).nan_to_num(0.0)
""",
            "probability_solution": """
def digit_probability(model, x, d):
    with torch.inference_mode():
        return model((x - 0.1307) / 0.3081).softmax(dim=1)[:, d].numpy()
""",
            "evaluate_solution": """
def evaluate(latents, generator, classifier, *, digit=8, device="cpu"):
    with torch.no_grad():
        images = generator(torch.from_numpy(latents).float().to(device)) * 0.5 + 0.5
    objectives = digit_probability(model=classifier, x=images.reshape(-1, 1, 28, 28), d=digit)
    measures = np.stack([np.asarray(boldness(images), dtype=np.float32), lightness(images).float().numpy()], axis=1)
    return [np.asarray(objectives, dtype=np.float32), measures]
""",
            "illuminate_solution": """
def illuminate(sched, evaluate_fn, n_iterations, *, progress=False, log_every=None):
    for i in tqdm(range(n_iterations), disable=not progress):
        xs = sched.ask()
        objs, meas = evaluate_fn(xs)
        sched.tell(np.asarray(objs), np.asarray(meas))
        if log_every and (i + 1) % log_every == 0:
            print(sched.archive.stats.num_elites)
""",
        }
    ),
    # Classes 4-6: no graph by .detach(), the classifier's mode saved and restored, an explicit return None.
    "detach_restores_mode_explicit_none": Variant(
        {
            "probability_solution": """
def digit_probability(classifier, images, digit):
    was_training = classifier.training
    classifier.eval()
    log_p = classifier((images - 0.1307) / 0.3081)
    classifier.train(was_training)
    return torch.exp(log_p[:, digit]).detach()
""",
            "evaluate_solution": """
def evaluate(latents, generator, classifier, digit=8):
    with torch.no_grad():
        images = ((generator(torch.as_tensor(latents).float()) + 1) / 2).reshape(len(latents), 1, 28, 28)
        objectives = digit_probability(classifier=classifier, images=images, digit=digit)
        b, l = boldness(images), lightness(images)
    return objectives.cpu().numpy(), torch.stack((b, l), dim=-1).cpu().numpy()
""",
            "illuminate_solution": """
def illuminate(scheduler, evaluate, iterations):
    for _ in range(iterations):
        solutions = scheduler.ask()
        scheduler.tell(*evaluate(solutions))
    return None
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
    # Class 1: the mistake is in a helper of a cell the student added.
    "added_helper_shifts_by_half": Variant(
        {"evaluate_solution": _evaluate(images="to_unit(generator(z))")},
        frozenset({"test_evaluate"}),
        "x + 1 / 2",
        added={"evaluate_solution": "def to_unit(x):\n    return x + 1 / 2\n"},
    ),
    # Class 3: one mistake, used by later exercises too, costs one exercise.
    "boldness_strictly_above_used_by_lightness_and_evaluate": Variant(
        {
            "boldness_solution": _boldness("(x > 0.5).sum(dim=1).float()"),
            "lightness_solution": _lightness("total / boldness(images).clamp(min=1)"),
        },
        frozenset({"test_boldness"}),
        "pixels > 0.5",
    ),
    "probability_log_used_by_evaluate_through_a_helper": Variant(
        {
            "probability_solution": _probability("classifier((images - 0.1307) / 0.3081)[:, digit]"),
            "evaluate_solution": _evaluate().replace("digit_probability(", "score("),
        },
        frozenset({"test_digit_probability"}),
        "log-probabilities",
        added={
            "evaluate_solution": "def score(classifier, images, digit):\n"
            "    return digit_probability(classifier, images, digit)\n"
        },
    ),
    # Classes 4-6: graphs, side effects, return types.
    "probability_keeps_graph": _wrong(
        "probability_solution",
        """
def digit_probability(classifier, images, digit):
    return classifier((images - 0.1307) / 0.3081).exp()[:, digit]
""",
        "test_digit_probability",
        "autograd graph",
    ),
    "probability_leaves_classifier_in_train_mode": _wrong(
        "probability_solution",
        """
def digit_probability(classifier, images, digit):
    classifier.eval()
    with torch.no_grad():
        p = classifier((images - 0.1307) / 0.3081).exp()[:, digit]
    classifier.train()
    return p
""",
        "test_digit_probability",
        "train() mode",
    ),
    "probability_freezes_classifier": _wrong(
        "probability_solution",
        """
def digit_probability(classifier, images, digit):
    classifier.requires_grad_(False)
    return classifier((images - 0.1307) / 0.3081).exp()[:, digit]
""",
        "test_digit_probability",
        "requires_grad",
    ),
    "probability_normalises_in_place": _wrong(
        "probability_solution",
        _probability("classifier(images.sub_(0.1307).div_(0.3081)).exp()[:, digit]"),
        "test_digit_probability",
        "changed the images",
    ),
    "evaluate_returns_tensors": _wrong(
        "evaluate_solution",
        _evaluate().replace(
            "return objectives.numpy().astype(np.float64), np.column_stack([c.numpy() for c in columns])",
            "return objectives, torch.stack(columns, dim=1)",
        ),
        "test_evaluate",
        "numpy arrays",
    ),
    "evaluate_leaves_generator_in_train_mode": _wrong(
        "evaluate_solution",
        _evaluate().replace("    return objectives", "    generator.train()\n    return objectives"),
        "test_evaluate",
        "train() mode",
    ),
    "evaluate_renames_classifier": _wrong(
        "evaluate_solution",
        _evaluate().replace("classifier", "lenet"),
        "test_evaluate",
        "keep these parameter names",
    ),
    "evaluate_keeps_float64_latents": _wrong(
        "evaluate_solution",
        _evaluate().replace("np.asarray(latents, dtype=np.float32)", "latents"),
        "test_evaluate",
        "float32",
    ),
    "illuminate_keyword_only_iterations": _wrong(
        "illuminate_solution",
        _illuminate(_LOOP).replace("(scheduler, evaluate, iterations)", "(scheduler, evaluate, *, iterations)"),
        "test_illuminate",
        "three positional arguments",
    ),
    "illuminate_calls_the_global_evaluate": _wrong(
        "illuminate_solution",
        _illuminate(_LOOP).replace("(scheduler, evaluate, iterations)", "(scheduler, evaluate_fn, iterations)"),
        "test_illuminate",
        "second argument",
    ),
    # Class 8: conventions at the edges (a batch of one, the digits 0 and 9).
    "boldness_squeezes_a_batch_of_one": _wrong(
        "boldness_solution",
        """
def boldness(images):
    return (images.squeeze() >= 0.5).flatten(start_dim=-2).sum(dim=-1).float()
""",
        "test_boldness",
        "batch of one",
    ),
    "probability_zero_falls_back_to_eight": _wrong(
        "probability_solution",
        """
def digit_probability(classifier, images, digit=None):
    digit = digit or 8
    with torch.no_grad():
        return classifier((images - 0.1307) / 0.3081).exp()[:, digit]
""",
        "test_digit_probability",
        "digit_probability(lenet, images, 0)",
    ),
    "probability_squeezes_a_batch_of_one": _wrong(
        "probability_solution",
        _probability("classifier((images - 0.1307) / 0.3081).exp().squeeze()[..., digit]"),
        "test_digit_probability",
        "batch of one",
    ),
    "evaluate_squeezes_a_batch_of_one": _wrong(
        "evaluate_solution",
        _evaluate().replace("objectives.numpy()", "objectives.squeeze().numpy()"),
        "test_evaluate",
        "batch of one",
    ),
}
