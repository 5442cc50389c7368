"""Checks of the MNIST GAN lab (``solutions/lab_mnist_gan``).

The networks are checked by what they compute, not by how they are written:
the probe gives every ``nn.Linear`` of the student's network fixed weights
chosen by its shape, runs it on fixed inputs, and the judge compares with the
:mod:`coursepkg.mnist.models` reference carrying the same weights. Any correct
layout (``nn.Sequential``, layers as attributes, functional activations, helpers
in cells of the student's own) passes. What the exercise text fixes is checked,
and named when it is wrong: the layer sizes, LeakyReLU(0.2) (ReLU or the
default slope do not pass), what follows the last ``nn.Linear`` (a tanh for the
generator, nothing for the discriminator), no batch normalisation or dropout in
the generator, and in the discriminator dropout(0.3) after each hidden
LeakyReLU only, which the judge reads off what enters and leaves each
``nn.Linear`` in training mode. ``Generator``'s argument must be called
``latent_dim``; nothing else is called by keyword.

The losses are compared with :mod:`coursepkg.toy2d.losses` on fixed logits,
among them a batch of one and logits of +-120, where ``log(sigmoid(x))`` gives
inf and ``nn.BCELoss`` clamps; they must be 0-d tensors that carry gradients.
The training step runs on small reference networks with plain SGD (whose update
is exactly ``lr * gradient``) and stale gradients left in both networks, so a
missing ``zero_grad``, a missing ``detach`` or a generator scored by the old
discriminator shows in the parameters and the recorded gradients. It runs with
the reference losses (under whatever names the step calls them), returns two
Python floats, must leave both networks in training mode and trainable, and
runs twice, so that what one call leaves behind shows in the next.

The probes, which run the student's code, are in
:mod:`coursepkg.grading.probes.lab_mnist_gan`; the judges, here, compare what they
observed with the references.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from coursepkg.grading.checks import (
    Check,
    CheckFailed,
    assert_close,
    assert_matches,
    bind,
    check_pair,
    close,
    final_activation,
    gan_loss_mistakes,
    registry,
    require,
    require_flags_restored,
    require_plain_layers,
    require_tensor,
)
from coursepkg.grading.observe import Observations, flat_parameters
from coursepkg.grading.probes.lab_mnist_gan import (
    D_LINEARS,
    G_LINEARS,
    PROBES,
    STALE_GRAD,
    extreme_cases,
    fixed_inputs,
    logit_cases,
    second_batch,
    step_fixture,
    weights_for,
)
from coursepkg.toy2d import losses as gan_losses

__all__ = ["CHECKS", "ANSWER_KEYS", "check"]

#: The modules that hold this lab's answers (the MNIST networks and the GAN losses). The autograder's
#: sandbox holds none of them, nor any module that imports one
#: (:func:`coursepkg.grading.isolation.blocked_modules`).
ANSWER_KEYS: tuple[str, ...] = ("coursepkg.mnist.models", "coursepkg.toy2d.losses")


# ---------------------------------------------------------------- networks


def _reference_forward(
    linears: list[tuple[int, int]], x: torch.Tensor, *, hidden: Callable, last: Callable
) -> torch.Tensor:
    """An MLP with the fixed weights of ``linears``, ``hidden`` activations and a ``last`` one."""
    for index, shape in enumerate(linears):
        weight, bias = weights_for(shape)
        x = F.linear(x, weight, bias)
        x = hidden(x) if index < len(linears) - 1 else last(x)
    return x


def _leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _assert_computes(
    got: torch.Tensor,
    linears: list[tuple[int, int]],
    x: torch.Tensor,
    last: Callable,
    what: str,
    mistakes: dict[str, tuple[Callable, Callable]],
) -> None:
    """Compare a network's output with the reference MLP; name the mistake (hidden, last activations) it matches."""
    assert_matches(
        got,
        _reference_forward(linears, x, hidden=_leaky, last=last),
        what,
        {
            mistake: _reference_forward(linears, x, hidden=hidden, last=end)
            for mistake, (hidden, end) in mistakes.items()
        },
        otherwise="Check the order of the layers and that every hidden layer is followed by nn.LeakyReLU(0.2).",
    )


def _require_layers(seen: Observations, expected: list[tuple[int, int]], call: str) -> None:
    require(seen["is_module"], f"{call} is not an nn.Module: subclass nn.Module and call super().__init__().")
    got = seen["linears"]
    require(
        sorted(got) == sorted(expected),
        f"{call} has nn.Linear layers (in, out) = {got}; expected {expected}. Build the network from nn.Linear "
        "layers of exactly these sizes.",
    )
    require(seen["biases"], f"every nn.Linear of {call} needs a bias (the default bias=True).")


def _require_end(seen: Observations, call: str, expected: str, why: str) -> None:
    """Fail unless ``call`` applies ``expected`` (a :func:`final_activation` name) after its last ``nn.Linear``."""
    end = final_activation(seen)
    if end == expected:
        return
    last = seen["last_linear"]
    if end == "something else" and isinstance(last, torch.Tensor) and isinstance(seen["output"], torch.Tensor):
        composed = {"a LeakyReLU and then a tanh": torch.tanh(_leaky(last.double()))}
        end = next((name for name, value in composed.items() if close(seen["output"], value)), end)
    applied = "no activation" if end == "nothing" else end
    if end == "something else":
        applied = "something other than a single activation"
    raise CheckFailed(f"{call} applies {applied} after its last nn.Linear; {why}")


def _extra_layers(seen: Observations) -> str:
    """The normalisation layers a network holds, for a message: ``" (BatchNorm1d)"`` or ``""``."""
    extras = [name for name in seen.get("layers", []) if "Norm" in name]
    return f" ({', '.join(extras)})" if extras else ""


_G_MISTAKES = {
    "nn.ReLU() in the hidden layers; use nn.LeakyReLU(0.2)": (F.relu, torch.tanh),
    "nn.LeakyReLU() with its default slope 0.01; use nn.LeakyReLU(0.2)": (F.leaky_relu, torch.tanh),
    "no tanh at the end; the images are in [-1, 1], so end with nn.Tanh()": (_leaky, _identity),
    "a sigmoid at the end; the images are in [-1, 1], so end with nn.Tanh()": (_leaky, torch.sigmoid),
    "a LeakyReLU after the last linear layer, before the tanh": (_leaky, lambda x: torch.tanh(_leaky(x))),
}
_D_MISTAKES = {
    "a sigmoid at the end; return raw logits (the loss applies the sigmoid itself)": (_leaky, torch.sigmoid),
    "nn.ReLU() in the hidden layers; use nn.LeakyReLU(0.2)": (F.relu, _identity),
    "nn.LeakyReLU() with its default slope 0.01; use nn.LeakyReLU(0.2)": (F.leaky_relu, _identity),
    "a LeakyReLU after the last linear layer; the output must be the raw logit": (_leaky, _leaky),
}

#: What the generator may hold besides its linear layers, as the messages say it.
_G_ALLOWED = "nn.Linear layers, nn.LeakyReLU(0.2) and a final nn.Tanh() only"


def _judge_generator(observations: Observations) -> str:
    _require_layers(observations, G_LINEARS, "Generator()")
    require_plain_layers(observations["plain"], "the generator", _G_ALLOWED)
    out = require_tensor(observations["out"], "Generator() on a (8, 128) batch", (8, 784))
    _require_end(
        observations["end"],
        "Generator()",
        "tanh",
        "the exercise specifies nn.Tanh() there and nothing after it, so that the images lie in [-1, 1] like the data.",
    )
    _assert_computes(out, G_LINEARS, fixed_inputs()["z"], torch.tanh, "Generator() on a (8, 128) batch", _G_MISTAKES)
    return "the generator maps (n, 128) noise to (n, 784) images through 256-512-1024 LeakyReLU layers and a tanh."


def _judge_generator_details(observations: Observations) -> str:
    _judge_generator(observations)
    require(
        observations["latent_dim"] == 128,
        f"Generator().latent_dim is {observations['latent_dim']!r}; store the latent size as self.latent_dim.",
    )
    far = require_tensor(observations["far"], "Generator() on 64 large latent vectors", (64, 784))
    require(bool(far.abs().max() <= 1), "the generator's outputs leave [-1, 1]; end with nn.Tanh().")
    one = observations["one"]
    require(not isinstance(one, str) or "raised" not in one, f"Generator() on a batch of one latent vector: {one}")
    one = require_tensor(one, "Generator() on a batch of one latent vector", (1, 784))
    assert_close(one, observations["out"][:1], "Generator() on a batch of one latent vector")
    require(
        "small_linears" in observations,
        f"Generator(latent_dim=16): {observations['small_out']} The latent size must be the keyword argument "
        "latent_dim.",
    )
    expected = [(16, 256), *G_LINEARS[1:]]
    require(
        sorted(observations["small_linears"]) == sorted(expected),
        f"Generator(latent_dim=16) has linear layers {observations['small_linears']}; expected {expected}: "
        "the first layer must take latent_dim inputs.",
    )
    small = observations["small_out"]
    require(
        not isinstance(small, str) or "raised" not in small, f"Generator(latent_dim=16) on a (8, 16) batch: {small}"
    )
    require_tensor(small, "Generator(latent_dim=16) on a (8, 16) batch", (8, 784))
    return "the generator honours latent_dim, takes a batch of one and keeps its images in [-1, 1]."


def _judge_discriminator(observations: Observations) -> str:
    _require_layers(observations, D_LINEARS, "Discriminator()")
    first, second = (
        require_tensor(out, "Discriminator() in eval mode on a (8, 784) batch", (8, 1)) for out in observations["eval"]
    )
    require(
        torch.equal(first, second),
        "Discriminator() in eval mode gives different outputs for the same images: dropout is still active. "
        "Use nn.Dropout(0.3) layers (or F.dropout(x, 0.3, training=self.training)), which switch off in eval mode.",
    )
    _require_end(
        observations["end"],
        "Discriminator()",
        "nothing",
        "it must return that layer's output, the raw logits (no sigmoid, tanh or LeakyReLU: "
        "the losses apply the sigmoid themselves).",
    )
    _assert_computes(
        first,
        D_LINEARS,
        fixed_inputs()["x"],
        _identity,
        "Discriminator() in eval mode on a (8, 784) batch",
        _D_MISTAKES,
    )
    return "the discriminator maps (n, 784) images through 1024-512-256 LeakyReLU layers to (n, 1) logits."


def _dropout_between(before: torch.Tensor, after: torch.Tensor) -> float | None:
    """The dropout probability p when ``after`` is ``dropout_p(LeakyReLU(0.2)(before))``, else ``None``.

    Args:
        before: ``(n, k)`` output of a hidden ``nn.Linear``.
        after: ``(n, k)`` input of the next one, in training mode.

    Dropout zeroes some entries and scales the others by ``1 / (1 - p)``; p = 0 means no dropout.
    """
    activated, after = _leaky(before.double()), after.double()
    kept = after != 0
    if before.shape != after.shape or not kept.any():
        return None
    scale = (after[kept] / activated[kept]).median()
    if not close(after, torch.where(kept, activated * scale, torch.zeros_like(activated))):
        return None
    return 1 - 1 / scale.item()


def _judge_discriminator_details(observations: Observations) -> str:
    _judge_discriminator(observations)
    images = require_tensor(observations["images"], "Discriminator() on a (8, 1, 28, 28) batch", (8, 1))
    assert_close(
        images,
        observations["eval"][0],
        "Discriminator() on (8, 1, 28, 28) images, which should be its output on the same images flattened,",
    )
    one = observations["one"]
    require(not isinstance(one, str) or "raised" not in one, f"Discriminator() on a single (1, 1, 28, 28) image: {one}")
    one = require_tensor(one, "Discriminator() on a single (1, 1, 28, 28) image", (1, 1))
    assert_close(one, observations["eval"][0][:1], "Discriminator() on a single (1, 1, 28, 28) image")
    train = observations["train"]
    inputs, outputs = train["inputs"], train["outputs"]
    require(len(inputs) == 4, f"Discriminator() ran {len(inputs)} nn.Linear layers in one forward pass; expected 4.")
    require(
        close(inputs[0], fixed_inputs()["x"]),
        "in train mode, Discriminator() changes the images before its first nn.Linear (dropout or normalisation "
        "on the input?): the exercise puts dropout after the hidden LeakyReLUs only.",
    )
    for layer in (1, 2, 3):
        p = _dropout_between(outputs[layer - 1], inputs[layer])
        require(
            p is not None,
            f"in train mode, what Discriminator() does between its nn.Linear layers {layer} and {layer + 1} is not "
            f"LeakyReLU(0.2) and dropout{_extra_layers(observations)}: the exercise specifies nn.LeakyReLU(0.2) "
            "and nn.Dropout(0.3) there and nothing else (no batch normalisation).",
        )
        require(
            p > 1e-6,
            "Discriminator() in train mode gives the same output twice for the same images: it has no dropout. "
            "Add nn.Dropout(0.3) after each hidden LeakyReLU.",
        )
        require(abs(p - 0.3) < 1e-3, f"the discriminator's dropout probability is {p:.2f}; use 0.3.")
    require(
        close(train["output"], outputs[-1]),
        "in train mode, Discriminator() changes its logits after the last nn.Linear (dropout on the output?): "
        "return that layer's output as it is.",
    )
    return "the discriminator flattens images itself and uses dropout(0.3) after its hidden layers, in train mode only."


# ---------------------------------------------------------------- losses


def _reference_loss(name: str, real: torch.Tensor, fake: torch.Tensor) -> float:
    if name == "discriminator_loss":
        return gan_losses.discriminator_loss(real, fake).item()
    return gan_losses.generator_loss(fake).item()


def _judge_loss_case(observations: Observations, name: str, case: str) -> None:
    real, fake = logit_cases()[case]
    got = observations[case]
    call = f"{name} on the {case!r} test logits"
    require(not isinstance(got, str) or not got.startswith("Your code raised"), f"{call}: {got}")
    require(
        isinstance(got, float),
        f"{call} must return a scalar tensor (each term a mean over its batch); it returned {got}.",
    )
    # Only the batch sizes tell this case from the others: a value no mistake explains comes from them.
    hint = "Each term is a mean over its own batch (real and fake batches may differ in size)."
    mistakes = gan_loss_mistakes(name.removesuffix("_loss"), real, fake)
    assert_matches(
        got, _reference_loss(name, real, fake), call, mistakes, otherwise=hint if case == "unequal batches" else ""
    )


def _judge_loss(name: str) -> Callable[[Observations], str]:
    def judge(observations: Observations) -> str:
        _judge_loss_case(observations, name, "basic")
        return f"{name} matches the reference on the test logits."

    return judge


def _judge_loss_details(name: str) -> Callable[[Observations], str]:
    def judge(observations: Observations) -> str:
        for case in logit_cases():
            _judge_loss_case(observations, name, case)
        require(
            observations["differentiable"],
            f"{name} must return a scalar tensor that carries gradients (not loss.item(), not under torch.no_grad()): "
            "the training step calls .backward() on it.",
        )
        shape = observations["shape"]
        require(
            shape == [],
            f"{name} returned a tensor of shape {tuple(shape)}; it must return a scalar (0-d) tensor, "
            "as .mean() or BCEWithLogitsLoss's default reduction='mean' gives.",
        )
        extreme = observations["extreme"]
        expected = _reference_loss(name, *extreme_cases())
        require(
            close(extreme, expected),
            f"{name} returned {extreme} for logits of +-120; expected {expected:.4g}. log(sigmoid(x)) underflows for "
            "large logits (and nn.BCELoss on probabilities clamps its log at -100): use nn.BCEWithLogitsLoss, "
            "F.binary_cross_entropy_with_logits or F.logsigmoid, which stay exact.",
        )
        return f"{name} works for unequal batch sizes, carries gradients and stays exact for extreme logits."

    return judge


# ---------------------------------------------------------------- the training step


#: Autograd errors that a wrong step raises, and what they mean there.
_STEP_ERROR_HINTS = {
    "inplace": "The generator's loss went through discriminator outputs computed before d_optimizer.step() "
    "changed the weights: score the fakes again with the updated discriminator.",
    "second time": "The discriminator's loss backpropagated through the generator and freed its graph: pass "
    "x_fake.detach() to the discriminator in its loss.",
}


def _reference_step(
    *, stale_d: bool = False, stale_g: bool = False, saturating: bool = False, steps: int = 1
) -> Observations:
    """The reference step on the fixture (``steps`` calls: the fixture's batch, then :func:`second_batch`).

    Returns:
        ``"returned"``: the first call's ``[d_loss, g_loss]``; ``"generator"`` and ``"discriminator"``: the
        flat parameters after the last call; ``"initial"``: both networks' flat parameters before any call.
        The flags give one of the usual mistakes instead.
    """
    generator, discriminator, first_real, first_z, d_opt, g_opt = step_fixture()
    initial = {"generator": flat_parameters(generator), "discriminator": flat_parameters(discriminator)}
    returned: list[float] = []
    for x_real, z in [(first_real, first_z), second_batch()][:steps]:
        x_fake = generator(z)
        d_loss = gan_losses.discriminator_loss(discriminator(x_real), discriminator(x_fake.detach()))
        if not stale_d:
            d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        fake_logits = discriminator(x_fake)
        g_loss = (
            -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
            if saturating
            else gan_losses.generator_loss(fake_logits)
        )
        if not stale_g:
            g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
        returned = returned or [d_loss.item(), g_loss.item()]
    return {
        "returned": returned,
        "generator": flat_parameters(generator),
        "discriminator": flat_parameters(discriminator),
        "initial": initial,
    }


def _require_step_ran(observations: Observations) -> None:
    """Fail when the first call of ``train_step`` raised a ``RuntimeError``, naming the autograd error it is."""
    if "raised" in observations:
        hint = next((hint for symptom, hint in _STEP_ERROR_HINTS.items() if symptom in observations["message"]), "")
        raise CheckFailed(f"{observations['raised']} {hint}" if hint else observations["raised"])


def _judge_train_step(observations: Observations) -> str:
    _require_step_ran(observations)
    returned = observations["returned"]
    require(
        isinstance(returned, list),
        f"train_step must return the pair (d_loss, g_loss); it returned {returned}.",
    )
    for name, value in zip(("d_loss", "g_loss"), returned):
        require(
            isinstance(value, float),
            f"train_step must return its losses as Python floats ({name}.item()); its {name} is {value}.",
        )
    d_loss, g_loss = returned
    require(
        len(observations["d_records"]) == 1 and len(observations["g_records"]) == 1,
        f"train_step called d_optimizer.step() {len(observations['d_records'])} times and g_optimizer.step() "
        f"{len(observations['g_records'])} times; expected once each.",
    )
    for network in ("generator", "discriminator"):
        require_flags_restored(observations["flags"][network], f"the {network}", "train_step")
    expected = _reference_step()
    not_updated = (
        "train_step did not change the {0}'s parameters: call {1}.zero_grad() before backward(), then {1}.step()"
    )
    assert_matches(
        observations["discriminator"],
        expected["discriminator"],
        "discriminator.parameters() after train_step",
        {
            "the update included stale gradients: call d_optimizer.zero_grad() before d_loss.backward()": (
                _reference_step(stale_d=True)["discriminator"]
            ),
            not_updated.format("discriminator", "d_optimizer"): expected["initial"]["discriminator"],
        },
    )
    assert_matches(
        observations["generator"],
        expected["generator"],
        "generator.parameters() after train_step",
        {
            "the update included stale gradients: call g_optimizer.zero_grad() before g_loss.backward()": (
                _reference_step(stale_g=True)["generator"]
            ),
            "the generator used the saturating loss; use generator_loss (non-saturating)": (
                _reference_step(saturating=True)["generator"]
            ),
            not_updated.format("generator", "g_optimizer"): expected["initial"]["generator"],
        },
    )
    assert_close(
        torch.tensor([d_loss, g_loss]),
        torch.tensor(expected["returned"]),
        "train_step, as (d_loss, g_loss),",
    )
    return "train_step updates the discriminator, then the generator, exactly like the reference."


def _judge_train_step_details(observations: Observations) -> str:
    _judge_train_step(observations)
    g_grads = observations["d_records"][0]["generator"]
    untouched = close(g_grads, torch.full_like(g_grads, STALE_GRAD)) or not g_grads.any()
    require(
        untouched,
        "when d_optimizer.step() ran, the discriminator's loss had sent gradients into the generator: "
        "pass generator(z).detach() to the discriminator in its loss.",
    )
    second = observations["second"]
    require(not isinstance(second, str), f"a second call of train_step failed: {second}")
    expected = _reference_step(steps=2)
    for network in ("discriminator", "generator"):
        assert_close(
            second[network],
            expected[network],
            f"{network}.parameters() after a second call of train_step (the first call left something behind?)",
        )
    return "no gradient flows into the generator during the discriminator's update, and the step can run again."


# ---------------------------------------------------------------- registry


CHECKS: dict[str, Check] = registry(
    check_pair(PROBES["generator"], _judge_generator, _judge_generator_details),
    check_pair(PROBES["discriminator"], _judge_discriminator, _judge_discriminator_details),
    *(
        check_pair(PROBES[name], _judge_loss(name), _judge_loss_details(name))
        for name in ("discriminator_loss", "generator_loss")
    ),
    check_pair(PROBES["train_step"], _judge_train_step, _judge_train_step_details),
)

#: ``check(name, globals())``, called by the test cells.
check = bind(CHECKS, "the MNIST GAN lab")
