"""Checks of the 2D GAN lab (``solutions/lab_2d_gan``).

Each exercise is checked on its own, against the :mod:`coursepkg.toy2d.gan` and
:mod:`coursepkg.toy2d.mmd` references: the step functions run on a reference
model with fixed weights, and the training loop runs with reference steps, so a
mistake in one exercise costs the points of that exercise only. The probes, which
run the student's code, are in :mod:`coursepkg.grading.probes.lab_2d_gan`; the
judges, here, compare what they observed with the references.

Test cells call :func:`check` by name::

    from coursepkg.grading import lab_2d_gan as grader
    grader.check("discriminator_step", globals())

Every step check drives the student's function with plain SGD, whose update is
exactly ``lr * gradient``: a wrong loss, a missing ``detach`` or stale
gradients then show up in the parameters, which Adam's normalisation would hide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from coursepkg.grading.checks import (
    Check,
    CheckFailed,
    assert_close,
    assert_matches,
    assert_standard_normal,
    bind,
    check_pair,
    close,
    final_activation,
    gan_loss_mistakes,
    registry,
    require,
    require_flags_restored,
    require_number,
    require_plain_layers,
    require_tensor,
)
from coursepkg.grading.observe import Observations, flat_parameters
from coursepkg.grading.probes.lab_2d_gan import (
    LATENT_DIM,
    LOOP_LR,
    PROBES,
    SGD_LR,
    STALE_GRAD,
    LatentRecorder,
    fixture,
    mmd_inputs,
    step_fixture,
)
from coursepkg.toy2d import losses as gan_losses
from coursepkg.toy2d import mmd

__all__ = ["CHECKS", "ANSWER_KEYS", "check"]

#: The modules that hold this lab's answers (the 2D lab's GAN, its losses and MMD). The autograder's
#: sandbox holds none of them, nor any module that imports one
#: (:func:`coursepkg.grading.isolation.blocked_modules`).
ANSWER_KEYS: tuple[str, ...] = ("coursepkg.toy2d.gan", "coursepkg.toy2d.losses", "coursepkg.toy2d.mmd")


# ---------------------------------------------------------------- fixtures


def _fixture_logits() -> tuple[torch.Tensor, torch.Tensor]:
    """The fixture's discriminator logits on its real points and on its generated points."""
    gan, x_real, z = fixture()
    with torch.no_grad():
        return gan.discriminate(x_real), gan.discriminate(gan.generator(z))


# ---------------------------------------------------------------- Exercise 1: the GAN class

#: What the exercise fixes about the two networks; hidden widths, depths and activations are free.
_PLAIN_LAYERS = "linear layers and activations only"


def _judge_gan_structure(observations: Observations, dim: int, h: int, latent_dim: int) -> Observations:
    seen = observations[f"{dim}-{h}-{latent_dim}"]
    call = f"GAN({dim}, {h}, {latent_dim})"
    require(
        seen["is_module"], f"{call} is not an nn.Module: define `class GAN(nn.Module)` and call super().__init__()."
    )
    missing = {"generator", "discriminator"} - set(seen["nets"])
    require(not missing, f"{call} has no nn.Module attribute {', '.join(sorted(missing))}.")
    require(
        seen["latent_dim"] == latent_dim,
        f"{call}.latent_dim is {seen['latent_dim']!r}; expected {latent_dim}.",
    )
    require_tensor(seen["generated"], f"{call}.generator on a (10, {latent_dim}) batch", (10, dim))
    require_tensor(seen["discriminator"], f"{call}.discriminator on a (10, {dim}) batch", (10, 1))
    require_tensor(seen["discriminate"], f"{call}.discriminate on a (10, {dim}) batch", (10, 1))
    for name in ("generator", "discriminator"):  # first: dropout would make the outputs below differ
        require_plain_layers(seen[f"{name[0]}_layers"], f"{call}.{name}", _PLAIN_LAYERS)
    assert_close(
        seen["discriminate"], seen["discriminator"], f"{call}.discriminate(x), which should be {call}.discriminator(x),"
    )
    return seen


def _require_linear_end(end: Observations, what: str, why: str) -> None:
    """Fail unless :func:`after_last_linear` shows nothing applied after the network's last ``nn.Linear``.

    Args:
        end: what :func:`after_last_linear` recorded.
        what: the output, as the subject of a sentence ("GAN(2, 32, 3).discriminate(x)").
        why: why it must end with a plain ``nn.Linear``.
    """
    require(
        isinstance(end["last_linear"], torch.Tensor),
        f"{what} ran no nn.Linear layer: build the networks from nn.Linear layers and activations.",
    )
    applied = final_activation(end)
    require(
        applied == "nothing",
        f"{what} applies {applied} after its last nn.Linear layer; it must end with that plain nn.Linear layer: {why}",
    )


_D_END = "return raw logits (no sigmoid, tanh or LeakyReLU at the end); BCEWithLogitsLoss applies the sigmoid itself."
_G_END = "the 2D data are neither confined to [-1, 1] (tanh) nor to positive values (ReLU, one quadrant only)."


def _judge_ends(seen: Observations, call: str) -> None:
    _require_linear_end(seen["d_end"], f"{call}.discriminate(x)", _D_END)
    _require_linear_end(seen["g_end"], f"{call}.generator(z)", _G_END)


def _judge_gan(observations: Observations) -> str:
    seen = _judge_gan_structure(observations, 2, 32, LATENT_DIM)
    _judge_ends(seen, f"GAN(2, 32, {LATENT_DIM})")
    return "the generator and the discriminator have the right shapes and both end with a plain nn.Linear."


def _judge_gan_details(observations: Observations) -> str:
    _judge_gan_structure(observations, 2, 32, LATENT_DIM)
    seen = _judge_gan_structure(observations, 5, 8, 7)
    params = seen["params"]
    require(
        params["generator"] > 0 and params["discriminator"] > 0,
        "both networks need trainable parameters (nn.Linear layers with requires_grad=True).",
    )
    require(params["shared"] == 0, "the generator and the discriminator share parameters; build two separate networks.")
    require(
        params["registered"] == params["total"],
        "gan.parameters() misses some parameters of the two networks: assign them as module attributes.",
    )
    _judge_ends(seen, "GAN(5, 8, 7)")
    return "GAN works for other sizes, registers its parameters, and its networks are plain MLPs."


# ---------------------------------------------------------------- Exercise 1: sampling


def _judge_sample_structure(observations: Observations) -> tuple[torch.Tensor, torch.Tensor]:
    out = require_tensor(observations["out"], "gan.sample(4000)", (4000, 2))
    latents = observations["latents"]
    require(len(latents) > 0, "gan.sample(n) never called self.generator: pass the noise through the generator.")
    z = torch.cat([latent.reshape(len(latent), -1) for latent in latents])
    require(
        tuple(z.shape) == (4000, LATENT_DIM),
        f"gan.sample(4000) fed the generator noise of shape {tuple(z.shape)}; expected "
        f"(4000, latent_dim) = (4000, {LATENT_DIM}): one latent vector per sample, of size latent_dim.",
    )
    assert_close(out, LatentRecorder.transform(z), "gan.sample(4000), which should be generator(z),")
    require(
        not observations["graph"],
        "gan.sample(4000) returned a tensor that carries an autograd graph: sampling needs no gradients, "
        "generate under `with torch.no_grad():` (or return the output .detach()ed).",
    )
    return out, z


def _judge_sample(observations: Observations) -> str:
    _judge_sample_structure(observations)
    return "sample(n) draws n latent vectors of size latent_dim and returns the generator's output."


def _judge_sample_details(observations: Observations) -> str:
    _, z = _judge_sample_structure(observations)
    assert_standard_normal(z, "The latent noise fed to the generator by sample()")
    return "the latent noise of sample() is standard normal."


# ---------------------------------------------------------------- Exercises 2a and 2b: the two steps


def _reference_run(name: str, scale: float) -> tuple[list[float], list[torch.Tensor], torch.Tensor]:
    """The reference step on the fixture, twice, with its loss multiplied by ``scale``."""
    gan, x_real, z, trained, other, optimizer = step_fixture(name)
    losses, params = [], []
    for _ in range(2):
        if name == "discriminator_step":
            loss = gan_losses.discriminator_loss(gan.discriminate(x_real), gan.discriminate(gan.generator(z).detach()))
        else:
            loss = gan_losses.generator_loss(gan.discriminate(gan.generator(z)))
        optimizer.zero_grad()
        (scale * loss).backward()
        optimizer.step()
        losses.append(scale * loss.item())
        params.append(flat_parameters(trained))
    return losses, params, flat_parameters(other)


#: Loss scales a step may use besides 1. A discriminator loss halved (one BCE over the
#: concatenated real and fake batch) trains the same way, at half the learning rate.
_ACCEPTED_SCALES = {"discriminator_step": (0.5,), "generator_step": ()}


def _loss_scale(observations: Observations, name: str) -> float:
    """Check the first returned loss; return 1, or the accepted scale it was computed at."""
    got = require_number(observations["losses"][0], name)
    expected = _reference_run(name, 1.0)[0][0]
    # The accepted scales come first: here a halved loss is no mistake, though the catalogue has it.
    for scale in _ACCEPTED_SCALES[name]:
        if close(got, scale * expected):
            return scale
    formula = "BCE(D(x_real), 1) + BCE(D(G(z)), 0)" if name == "discriminator_step" else "BCE(D(G(z)), 1)"
    mistakes = gan_loss_mistakes(name.removesuffix("_step"), *_fixture_logits())
    assert_matches(got, expected, f"{name} on the test batch (its loss should be {formula})", mistakes)
    return 1.0


def _judge_step(name: str) -> Callable[[Observations], str]:
    def judge(observations: Observations) -> str:
        _loss_scale(observations, name)
        return "the loss on the test batch matches the reference."

    return judge


def _judge_step_details(name: str) -> Callable[[Observations], str]:
    trained_net, other_net = (
        ("discriminator", "generator") if name == "discriminator_step" else ("generator", "discriminator")
    )

    def judge(observations: Observations) -> str:
        scale = _loss_scale(observations, name)
        losses, params, other = _reference_run(name, scale)
        if name == "discriminator_step":
            require(
                not bool(observations["other_grad"][0].abs().gt(0).any()),
                "gradients reached the generator during the discriminator step: detach the fake points "
                "(gan.generator(z).detach()) or generate them under torch.no_grad().",
            )
        start = fixture()[0]
        initial = flat_parameters(getattr(start, trained_net))
        moved = observations["trained"][0]
        require(
            not torch.equal(moved, initial),
            f"{name} did not change the {trained_net}'s parameters: call loss.backward() and optimizer.step(), "
            + (
                "and do not detach the fake points here: the gradient must flow through the generator."
                if name == "generator_step"
                else ""
            ),
        )
        require(
            observations["optimizer_steps"][0] > 0,
            f"{name} changed the {trained_net}'s parameters without calling step() on the optimizer it was given: "
            "use that optimizer; do not create one inside the step (a new optimizer every step forgets its state).",
        )
        stale = initial - SGD_LR * STALE_GRAD + (params[0] - initial)
        assert_matches(
            moved,
            params[0],
            f"gan.{trained_net}.parameters() after one {name} with SGD(lr={SGD_LR})",
            {
                f"{name} added the gradient to stale gradients already in .grad: "
                "call optimizer.zero_grad() before loss.backward()": stale
            },
        )
        assert_close(
            observations["other"], other, f"gan.{other_net}.parameters() after {name}, which must not change them,"
        )
        second = require_number(observations["losses"][1], name)
        assert_close(second, losses[1], f"a second call to {name}")
        assert_close(observations["trained"][1], params[1], f"gan.{trained_net}.parameters() after a second {name}")
        for flags in observations["flags"]:
            for network in ("generator", "discriminator"):
                require_flags_restored(flags[network], f"the {network}", name)
        return f"{name} updates only the {trained_net}, from fresh gradients, exactly like the reference."

    return judge


# ---------------------------------------------------------------- Exercise 2c: the training loop


def _judge_train_gan(observations: Observations) -> str:
    calls = observations["calls"]
    expected = "DDDG" * 4
    require(bool(calls), "train_gan never called discriminator_step or generator_step.")
    for problem in observations["problems"]:
        if isinstance(problem, str):
            raise CheckFailed(problem)
        rates = problem["rates"]  # the learning rates of the optimizer a step got first
        require(
            all(close(rate, LOOP_LR) for rate in rates),
            f"the optimizer given to {problem['step']} has learning rate {', '.join(f'{r:g}' for r in rates)}, but "
            f"train_gan was called with lr={LOOP_LR:g}: create both optimizers with lr=lr.",
        )
    require(
        calls == expected,
        f"train_gan(n_steps=4, d_steps=3) called the steps in the order {calls} "
        f"(D = discriminator_step, G = generator_step); expected {expected}: "
        "d_steps discriminator steps, then one generator step, n_steps times.",
    )
    for step, count in observations["optimizers"].items():
        require(
            count == 1,
            f"train_gan gave {step} {count} different optimizers: create each optimizer once, before the loop, "
            "and pass the same one at every step. A new optimizer starts from scratch (Adam forgets its running "
            "averages at every step).",
        )
    history = observations["history"]
    require(isinstance(history, dict), f"train_gan must return a dict of loss lists; it returned a {history}.")
    for key, count in (("d_loss", 12), ("g_loss", 4)):
        require(key in history, f"the history returned by train_gan has no {key!r} list.")
        require(
            len(history[key]) == count,
            f"history[{key!r}] has {len(history[key])} entries for n_steps=4, d_steps=3; expected {count}: "
            "append the loss of every step.",
        )
        bad = [v for v in history[key] if not isinstance(v, float)]
        require(
            not bad,
            f"history[{key!r}] must hold Python floats (what the steps return); it holds {bad[0] if bad else ''}.",
        )
        assert_close(
            torch.tensor(history[key]),
            torch.tensor(observations["losses"][key]),
            f"train_gan(n_steps=4, d_steps=3)[{key!r}], which should hold the losses the steps returned,",
        )
    return "train_gan alternates d_steps discriminator steps with one generator step and records every loss."


def _judge_train_gan_details(observations: Observations) -> str:
    _judge_train_gan(observations)
    latents = torch.stack(observations["latents"])
    distinct = len({tuple(z[0].tolist()) for z in latents})
    require(
        distinct == len(latents),
        f"train_gan reused the same latent batch: {len(latents)} steps saw only {distinct} different "
        "batches. Draw fresh noise for every step.",
    )
    assert_standard_normal(latents, "The latent noise train_gan gives to the steps")
    return "train_gan draws fresh standard normal noise of size latent_dim for every step."


# ---------------------------------------------------------------- Exercise 3: MMD


def _mmd_mistakes(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> dict[str, float]:
    """The usual mistakes in the biased MMD estimate and the value each gives on ``x`` and ``y``."""
    d_xx, d_yy, d_xy = torch.cdist(x, x) ** 2, torch.cdist(y, y) ** 2, torch.cdist(x, y) ** 2
    n, m = len(x), len(y)

    def k(d: torch.Tensor, denominator: float) -> torch.Tensor:
        return torch.exp(-d / denominator)

    s2 = 2 * bandwidth**2
    return {
        "the i = j pairs were left out (the unbiased estimate); "
        "this exercise asks for the biased one, over all pairs": (
            (k(d_xx, s2).sum() - n) / (n * (n - 1)) + (k(d_yy, s2).sum() - m) / (m * (m - 1)) - 2 * k(d_xy, s2).mean()
        ).item(),
        "the cross term needs a factor 2: mean k(x,x') + mean k(y,y') - 2 mean k(x,y)": (
            k(d_xx, s2).mean() + k(d_yy, s2).mean() - k(d_xy, s2).mean()
        ).item(),
        "the kernel divides by bandwidth**2; it should divide by 2 * bandwidth**2": (
            k(d_xx, bandwidth**2).mean() + k(d_yy, bandwidth**2).mean() - 2 * k(d_xy, bandwidth**2).mean()
        ).item(),
        "the kernel uses the distance ||a - b||; it should use the squared distance ||a - b||^2": (
            k(d_xx.sqrt(), s2).mean() + k(d_yy.sqrt(), s2).mean() - 2 * k(d_xy.sqrt(), s2).mean()
        ).item(),
    }


def _judge_mmd_value(got: Any, x: torch.Tensor, y: torch.Tensor, bandwidth: float, call: str) -> None:
    """Fail unless ``got`` (an :func:`outcome`) is the reference ``mmd2(x, y, bandwidth=bandwidth)``."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:  # a one-element tensor is accepted
        got = float(got)
    if not isinstance(got, (float, str)):  # a float, or a sentence on what the call did instead
        shape = f"a tensor of shape {tuple(got.shape)}" if isinstance(got, torch.Tensor) else "a sequence"
        raise CheckFailed(f"{call} must return one number, a float; it returned {shape}.")
    expected = mmd.mmd2(x, y, bandwidth=bandwidth)
    assert_matches(got, expected, call, _mmd_mistakes(x.double(), y.double(), bandwidth))


def _judge_mmd2(observations: Observations) -> str:
    x, y, _ = mmd_inputs()
    _judge_mmd_value(observations["xy"], x, y, 0.7, "mmd2(x, y, bandwidth=0.7)")
    return "mmd2 matches the reference on the test samples."


def _judge_mmd2_details(observations: Observations) -> str:
    x, y, w = mmd_inputs()
    _judge_mmd_value(observations["yx"], y, x, 0.7, "mmd2(y, x, bandwidth=0.7)")
    _judge_mmd_value(observations["xx"], x, x, 0.7, "mmd2(x, x, bandwidth=0.7), which should be 0,")
    _judge_mmd_value(observations["default"], x, y, 0.5, "mmd2(x, y) with the default bandwidth 0.5")
    _judge_mmd_value(observations["3d"], w, 2 * w, 1.5, "mmd2 on 3-dimensional samples")
    _judge_mmd_value(
        observations["one point"],
        x[:1],
        y[:1],
        0.7,
        "mmd2(x[:1], y[:1], bandwidth=0.7), one point in each sample, which should be 2 - 2 k(x_1, y_1),",
    )
    return "mmd2 is symmetric, zero on identical samples, defined for one point, and works in any dimension."


# ---------------------------------------------------------------- registry


CHECKS: dict[str, Check] = registry(
    check_pair(PROBES["gan"], _judge_gan, _judge_gan_details),
    check_pair(PROBES["sample"], _judge_sample, _judge_sample_details),
    *(
        check_pair(PROBES[name], _judge_step(name), _judge_step_details(name))
        for name in ("discriminator_step", "generator_step")
    ),
    check_pair(PROBES["train_gan"], _judge_train_gan, _judge_train_gan_details),
    check_pair(PROBES["mmd2"], _judge_mmd2, _judge_mmd2_details),
)
#: ``check(name, globals())``, called by the test cells.
check = bind(CHECKS, "the 2D GAN lab")
