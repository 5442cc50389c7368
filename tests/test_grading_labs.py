"""Every lab's checks: the solution and correct variants pass, each real mistake fails its exercise only."""

from __future__ import annotations

import functools
import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from coursepkg.grading import lab_2d_gan, lab_js_divergence, lab_lsi, lab_mnist_gan
from coursepkg.grading.checks import (
    ATOL,
    RTOL,
    CheckFailed,
    assert_matches,
    close,
    final_activation,
    gan_loss_mistakes,
    require_flags_restored,
    require_plain_layers,
)
from coursepkg.grading.isolation import requested_checks
from coursepkg.grading.observe import (
    after_last_linear,
    as_float,
    batch_behaviour,
    carries_graph,
    network_flags,
    outcome,
    salted,
)
from coursepkg.grading.probes import lab_2d_gan as probes_2d
from coursepkg.grading.probes import lab_js_divergence as probes_js
from coursepkg.grading.probes import lab_lsi as probes_lsi
from coursepkg.grading.probes import lab_mnist_gan as probes_mnist
from coursepkg.lsi import measures as lsi_measures
from coursepkg.theory import divergences
from coursepkg.toy2d import losses as gan_losses
from coursepkg.toy2d import mmd
from tests.grading_helpers import LABS, failing_cells, program, run_program, solution
from tests.lab_2d_variants import Variant


def _failing(lab: str, namespace) -> dict[str, str]:
    module, variants = LABS[lab]
    return failing_cells(module, variants.TEST_CELL_CHECKS, namespace)


@pytest.mark.parametrize("lab", LABS)
def test_test_cells_declare_the_checks_they_run(lab):
    module, variants = LABS[lab]
    found = {
        cell.metadata["nbgrader"]["grade_id"]: tuple(name for _, name in requested_checks(cell.source))
        for cell in solution(lab).cells
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")
    }
    assert found == variants.TEST_CELL_CHECKS
    assert set(module.CHECKS) == {name for names in found.values() for name in names}


@pytest.mark.parametrize("lab", LABS)
def test_the_solution_passes_every_check(lab):
    namespace, errors = run_program(program(solution(lab)))
    assert errors == []
    assert _failing(lab, namespace) == {}


@pytest.mark.parametrize("lab, name", [(lab, name) for lab, (_, v) in LABS.items() for name in v.CORRECT])
def test_correct_submissions_written_differently_pass(lab, name):
    namespace, errors = run_program(program(solution(lab), LABS[lab][1].CORRECT[name]))
    assert errors == []
    assert _failing(lab, namespace) == {}
    with salted(40_507):  # the autograder's second look, on other fixtures, passes too
        assert _failing(lab, namespace) == {}


@pytest.mark.parametrize(
    "lab, name",
    [(lab, name) for lab, (_, v) in LABS.items() for name, variant in v.WRONG.items() if not variant.kernel_passes],
)
def test_each_mistake_fails_its_exercise_only_with_a_specific_message(lab, name):
    variant = LABS[lab][1].WRONG[name]
    namespace, errors = run_program(program(solution(lab), variant))
    assert errors == []
    failing = _failing(lab, namespace)
    assert set(failing) == set(variant.fails)
    assert all(variant.message in message for message in failing.values()), failing


@pytest.mark.parametrize("lab", LABS)
def test_a_blank_submission_fails_every_check_with_a_hint(lab):
    answers = [
        c.metadata["nbgrader"]["grade_id"]
        for c in solution(lab).cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")
    ]
    namespace, _ = run_program(program(solution(lab), Variant({cell: "" for cell in answers})))
    failing = _failing(lab, namespace)
    assert set(failing) == set(LABS[lab][1].TEST_CELL_CHECKS)
    assert all("is not defined" in message for message in failing.values())


# ---------------------------------------------------------------- hidden checks


#: nbgrader's hidden-test region of a test cell (the markers and what is between them).
_HIDDEN_REGION = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS\n?", re.DOTALL)


@pytest.mark.parametrize("lab", LABS)
def test_hidden_checks_are_called_between_the_hidden_test_markers_and_only_there(lab):
    module, _ = LABS[lab]
    called: dict[str, bool] = {}  # check name -> called inside the hidden region
    for cell in solution(lab).cells:
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("grade"):
            continue
        visible_source = _HIDDEN_REGION.sub("", cell.source)
        visible = requested_checks(visible_source)
        # The hidden region calls the grader that the visible part imports: parse it after the visible part
        # and keep the calls that come after the visible ones.
        hidden_source = "".join(_HIDDEN_REGION.findall(cell.source))
        hidden = requested_checks(visible_source + "\n" + hidden_source)[len(visible) :]
        called.update({name: False for _, name in visible} | {name: True for _, name in hidden})
        assert {grader for grader, _ in visible + hidden} <= {module.__name__}
    assert set(called) == set(module.CHECKS), "every registered check is called by a test cell"
    assert {name: module.CHECKS[name].hidden for name in called} == called


# ---------------------------------------------------------------- one tolerance policy


def test_close_is_one_element_wise_policy_on_float64():
    assert close(1.0, 1.0 + ATOL + RTOL * 0.9) and not close(1.0, 1.0 + 1.1 * (ATOL + RTOL))
    assert close(0.0, 0.9 * ATOL) and not close(0.0, 1.1 * ATOL)
    assert close(torch.tensor([1.0, 2.0], dtype=torch.float32), torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert close(math.inf, math.inf) and not close(math.inf, -math.inf) and not close(1e30, math.inf)
    assert not close(math.nan, math.nan) and not close(torch.tensor([1.0, math.nan]), torch.tensor([1.0, math.nan]))
    assert not close(torch.zeros(2), torch.zeros(2, 1)) and not close(torch.zeros(1), 0.0)
    assert not close("raised ValueError: no", 0.0) and not close(True, 1.0)


def test_assert_matches_says_what_came_back_and_names_the_mistake():
    with pytest.raises(CheckFailed) as failure:
        assert_matches(2.0, 1.0, "f(x)", {"doubled": 2.0, "halved": 0.5})
    assert (
        str(failure.value) == "f(x) returned 2.000000; expected 1.000000. Your value matches a common mistake: doubled."
    )
    with pytest.raises(CheckFailed, match=r"f\(x\) returned 3.000000; expected 1.000000. Try again.$"):
        assert_matches(3.0, 1.0, "f(x)", {"doubled": 2.0}, otherwise="Try again.")
    got = torch.zeros(3, 4)
    got[1, 2] = 5.0
    with pytest.raises(CheckFailed, match=r"^g returned a tensor of shape \(3, 4\); expected other values "):
        assert_matches(got, torch.zeros(3, 4), "g", {})
    with pytest.raises(CheckFailed, match=r"largest difference at index \(1, 2\): 5.000000 instead of 0.000000\)\.$"):
        assert_matches(got, torch.zeros(3, 4), "g", {})
    with pytest.raises(CheckFailed, match=r"^f\(x\) raised TypeError: bad; expected 1.000000.$"):
        assert_matches("raised TypeError: bad", 1.0, "f(x)", {})
    assert_matches(1.0 + ATOL, 1.0, "f(x)", {})


def test_outcome_gives_plain_observations_that_torch_load_reads(tmp_path):
    class NotADistribution(ValueError):
        pass

    def refuse(_):
        raise NotADistribution("p must sum to 1")

    seen = {
        "number": outcome(lambda: torch.tensor(2.5)),
        "int": outcome(lambda: 3),
        "tensor": outcome(lambda: torch.ones(2, dtype=torch.float32, requires_grad=True) * 2),
        "array": outcome(lambda: np.arange(3)),
        "pair": outcome(lambda: (1.0, torch.zeros(2))),
        "list of one-element tensors": outcome(lambda: [torch.tensor([1.5]), torch.tensor([[2.0]])]),
        "other": outcome(lambda: "text"),
        "raised": outcome(refuse, 1),
    }
    assert seen["number"] == 2.5 and seen["int"] == 3.0 and isinstance(seen["int"], float)
    assert seen["tensor"].dtype == torch.float64 and not seen["tensor"].requires_grad
    assert torch.equal(seen["array"], torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64))
    assert seen["pair"][0] == 1.0 and torch.equal(seen["pair"][1], torch.zeros(2, dtype=torch.float64))
    assert seen["list of one-element tensors"] == [1.5, 2.0]  # a pair of values, however it is wrapped
    assert seen["other"] == "returned str 'text'"
    # Named by the nearest built-in class: a judge can tell a ValueError from the rest.
    assert seen["raised"].startswith("raised ValueError: p must sum to 1 (line ")
    torch.save(seen, tmp_path / "observations.pt")
    assert torch.load(tmp_path / "observations.pt", weights_only=True)["raised"] == seen["raised"]


def test_an_exception_without_a_message_still_says_what_was_raised():
    def first_parameter():
        return next(iter([]))  # next(module.parameters()) on a module without parameters

    assert outcome(first_parameter).startswith("raised StopIteration (with no message) (line ")


def test_as_float_accepts_python_numbers_only():
    assert as_float(np.float32(0.5)) == 0.5 and as_float(3) == 3.0
    loss = torch.tensor(0.7, requires_grad=True) * 1
    assert as_float(loss).startswith("a tensor with its autograd graph") and "loss.item()" in as_float(loss)
    assert as_float(torch.tensor(0.7)).startswith("a tensor (") and as_float(True) == "bool True"
    assert carries_graph([1.0, {"d": loss}]) and not carries_graph((loss.detach(), 2.0))


@pytest.mark.parametrize(
    "tail, name",
    [
        ((), "nothing"),
        ((nn.Tanh(),), "tanh"),
        ((nn.Sigmoid(),), "a sigmoid"),
        ((nn.ReLU(),), "a ReLU"),
        ((nn.LeakyReLU(0.2),), "a LeakyReLU(0.2)"),
        ((nn.Softplus(beta=2.0),), "something else"),
    ],
)
def test_final_activation_names_what_follows_the_last_linear_layer(tail, name):
    torch.manual_seed(0)
    network = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2), *tail)
    x = 10 * torch.randn(64, 3)
    assert final_activation(after_last_linear(lambda: network(x), network)) == name
    if not tail:  # functional code after the layer counts the same, and so does a method that wraps the network
        assert final_activation(after_last_linear(lambda: torch.sigmoid(network(x)), network)) == "a sigmoid"


def test_require_plain_layers_tells_dropout_and_batch_norm_from_plain_layers():
    x = torch.randn(16, 4)
    cases = {
        (): None,
        (nn.Dropout(0.3),): "it looks like dropout (Dropout)",
        (nn.BatchNorm1d(8),): "it looks like batch normalisation (BatchNorm1d)",
    }
    for extra, message in cases.items():
        network = nn.Sequential(nn.Linear(4, 8), *extra, nn.ReLU(), nn.Linear(8, 2)).eval()
        before = {k: v.clone() for k, v in network.state_dict().items()}
        seen = batch_behaviour(network, x)
        # The probe leaves the network as it found it: eval mode, running statistics untouched.
        assert not network.training and all(torch.equal(v, network.state_dict()[k]) for k, v in before.items())
        if message is None:
            require_plain_layers(seen, "the generator", "linear layers and activations")
        else:
            with pytest.raises(CheckFailed, match=re.escape(message)):
                require_plain_layers(seen, "the generator", "linear layers and activations")


def test_require_flags_restored_names_frozen_parameters_and_eval_mode():
    network = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    require_flags_restored(network_flags(network), "the discriminator", "generator_step")
    network[0].weight.requires_grad_(False)
    with pytest.raises(CheckFailed, match=r"1 of the 4 parameters of the discriminator have requires_grad=False"):
        require_flags_restored(network_flags(network), "the discriminator", "generator_step")
    network[0].weight.requires_grad_(True)
    network.eval()
    with pytest.raises(CheckFailed, match=r"after generator_step, the discriminator is in eval\(\) mode"):
        require_flags_restored(network_flags(network), "the discriminator", "generator_step")


# ---------------------------------------------------------------- the catalogues of mistakes


def _gan_losses_2d():
    real, fake = lab_2d_gan._fixture_logits()
    return [
        (gan_losses.discriminator_loss(real, fake).item(), gan_loss_mistakes("discriminator", real, fake)),
        (gan_losses.generator_loss(fake).item(), gan_loss_mistakes("generator", real, fake)),
    ]


def _gan_losses_mnist():
    return [
        (lab_mnist_gan._reference_loss(f"{kind}_loss", real, fake), gan_loss_mistakes(kind, real, fake))
        for real, fake in probes_mnist.logit_cases().values()
        for kind in ("discriminator", "generator")
    ]


def _mmd():
    x, y, w = probes_2d.mmd_inputs()
    # Not mmd2(x, x): several mistakes are 0 there too, as they should be; the other cases tell them apart.
    cases = ((x, y, 0.7), (y, x, 0.7), (x, y, 0.5), (w, 2 * w, 1.5))
    return [(mmd.mmd2(a, b, bandwidth=h), lab_2d_gan._mmd_mistakes(a.double(), b.double(), h)) for a, b, h in cases]


def _divergence(name, mistakes):
    # On the cases the visible check judges: with p = q, or disjoint supports, some mistakes give the right value.
    pairs = [probes_js.pairs()[case] for case in lab_js_divergence._VISIBLE]
    return lambda: [(getattr(divergences, name)(p, q), mistakes(p, q)) for p, q in pairs]


def _optimal_discriminator():
    pairs = [probes_js.pairs()[case] for case in lab_js_divergence._VISIBLE]
    return [(d := divergences.optimal_discriminator(p, q), {"inverted": 1 - d}) for p, q in pairs]


def _value_function():
    # d = 1/2 everywhere makes V symmetric in p_data and p_g: only "some d" can tell them apart.
    d, p, q = probes_js.value_cases()["some d"]
    return [(divergences.value_function(d, p, q), lab_js_divergence._value_mistakes(d, p, q))]


def _identity():
    p, q = probes_js.pairs()["basic"]
    return [(divergences.minimax_identity(p, q)[1], lab_js_divergence._identity_mistakes(p, q))]


def _measure(name, mistakes):
    cases = (probes_lsi.hand_made()["pixels of exactly 0.5"], probes_lsi.quantised_noise(6))
    return lambda: [(getattr(lsi_measures, name)(images).double(), mistakes(images)) for images in cases]


def _digit_probability():
    _, lenet = probes_lsi.shipped_models()
    images = probes_lsi.real_digits()
    return [
        (lsi_measures.digit_probability(lenet, images, digit).double(), lab_lsi._probability_mistakes(images, digit))
        for digit in (8, 3)
    ]


def _evaluate():
    generator, lenet = probes_lsi.shipped_models()

    def side_by_side(objectives, measures):  # one tensor, so that close() judges the pair
        return torch.cat([torch.as_tensor(objectives).reshape(-1, 1), torch.as_tensor(measures)], dim=1).double()

    fixtures = []
    for digit, count in ((8, 12), (5, 7)):
        latents = probes_lsi.fixed_latents(count)
        expected = side_by_side(*lsi_measures.evaluate(latents, generator, lenet, digit=digit))
        mistakes = lab_lsi._evaluate_mistakes(latents, digit)
        fixtures.append((expected, {mistake: side_by_side(*pair) for mistake, pair in mistakes.items()}))
    return fixtures


def _networks():
    inputs = probes_mnist.fixed_inputs()
    fixtures = []
    for linears, x, last, mistakes in (
        (probes_mnist.G_LINEARS, inputs["z"], torch.tanh, lab_mnist_gan._G_MISTAKES),
        (probes_mnist.D_LINEARS, inputs["x"], lab_mnist_gan._identity, lab_mnist_gan._D_MISTAKES),
    ):
        forward = functools.partial(lab_mnist_gan._reference_forward, linears, x)
        expected = forward(hidden=lab_mnist_gan._leaky, last=last)
        fixtures.append((expected, {m: forward(hidden=hidden, last=end) for m, (hidden, end) in mistakes.items()}))
    return fixtures


def _train_step():
    expected = lab_mnist_gan._reference_step()
    return [
        (expected["discriminator"], {"stale d": lab_mnist_gan._reference_step(stale_d=True)["discriminator"]}),
        (
            expected["generator"],
            {
                "stale g": lab_mnist_gan._reference_step(stale_g=True)["generator"],
                "saturating": lab_mnist_gan._reference_step(saturating=True)["generator"],
            },
        ),
    ]


#: Every catalogue of mistakes, on the fixtures its checks judge: (right answer, {mistake: its value}) pairs.
CATALOGUES = {
    "GAN losses on the 2D lab's fixture": _gan_losses_2d,
    "GAN losses on the MNIST lab's logits": _gan_losses_mnist,
    "MMD": _mmd,
    "KL divergence": _divergence("kl_divergence", lab_js_divergence._kl_mistakes),
    "JS divergence": _divergence("js_divergence", lab_js_divergence._js_mistakes),
    "optimal discriminator": _optimal_discriminator,
    "value function": _value_function,
    "minimax identity": _identity,
    "boldness": _measure("boldness", lab_lsi._boldness_mistakes),
    "lightness": _measure("lightness", lab_lsi._lightness_mistakes),
    "digit probability": _digit_probability,
    "evaluate": _evaluate,
    "MNIST networks": _networks,
    "MNIST training step": _train_step,
}


@pytest.mark.parametrize("catalogue", CATALOGUES)
def test_every_catalogued_mistake_is_told_apart_from_the_right_answer(catalogue):
    for expected, mistakes in CATALOGUES[catalogue]():
        assert mistakes
        assert [mistake for mistake, value in mistakes.items() if close(value, expected)] == []
