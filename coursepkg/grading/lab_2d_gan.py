"""Checks of the 2D GAN lab (``solutions/lab_2d_gan``).

Each exercise is checked on its own, against the :mod:`coursepkg.toy2d.gan` and
:mod:`coursepkg.toy2d.mmd` references: the step functions run on a reference
model with fixed weights, and the training loop runs with reference steps, so a
mistake in one exercise costs the points of that exercise only.

Test cells call :func:`check` by name::

    from coursepkg.grading import lab_2d_gan as grader
    grader.check("discriminator_step", globals())

Every step check drives the student's function with plain SGD, whose update is
exactly ``lr * gradient``: a wrong loss, a missing ``detach`` or stale
gradients then show up in the parameters, which Adam's normalisation would hide.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from coursepkg.grading.checks import (
    Check,
    CheckFailed,
    Observations,
    after_last_linear,
    as_float,
    as_tensor,
    assert_close,
    assert_matches,
    assert_standard_normal,
    batch_behaviour,
    bind,
    carries_graph,
    check_pair,
    close,
    fill_stale_gradients,
    final_activation,
    flat_gradients,
    flat_parameters,
    gan_loss_mistakes,
    network_flags,
    outcome,
    registry,
    require,
    require_flags_restored,
    require_number,
    require_plain_layers,
    require_tensor,
    substituted,
)
from coursepkg.toy2d import data as data2d
from coursepkg.toy2d import gan as gan2d
from coursepkg.toy2d import losses as gan_losses
from coursepkg.toy2d import mmd

__all__ = ["CHECKS", "ANSWER_KEYS", "check"]

#: The modules that hold this lab's answers (the 2D lab's GAN, its losses and MMD). The isolated re-run
#: makes them, and every
#: module that imports them, unimportable (:func:`coursepkg.grading.isolation.blocked_modules`).
ANSWER_KEYS: tuple[str, ...] = ("coursepkg.toy2d.gan", "coursepkg.toy2d.losses", "coursepkg.toy2d.mmd")

_SEED = 1234
_LATENT_DIM = 3  # not 2, so that a latent size swapped with the data size shows
_SGD_LR = 0.1
_LOOP_LR = 3e-3  # not the usual 1e-3 or 2e-4, so that a learning rate written into the loop shows
_STALE_GRAD = 0.37  # left in .grad before a step, as the other player's step would


# ---------------------------------------------------------------- fixtures


def _fixture() -> tuple[gan2d.GAN, torch.Tensor, torch.Tensor]:
    """A reference GAN with fixed weights, 32 real points and 32 latent vectors."""
    torch.manual_seed(_SEED)
    gan = gan2d.GAN(dim=2, h=16, latent_dim=_LATENT_DIM)
    g = torch.Generator().manual_seed(_SEED)
    x_real = data2d.sample_data(32, "2gmm", generator=g)
    z = torch.randn(32, _LATENT_DIM, generator=g)
    return gan, x_real, z


def _fixture_logits() -> tuple[torch.Tensor, torch.Tensor]:
    """The fixture's discriminator logits on its real points and on its generated points."""
    gan, x_real, z = _fixture()
    with torch.no_grad():
        return gan.discriminate(x_real), gan.discriminate(gan.generator(z))


# ---------------------------------------------------------------- Exercise 1: the GAN class

#: What the exercise fixes about the two networks; hidden widths, depths and activations are free.
_PLAIN_LAYERS = "linear layers and activations only"


def _observe_gan(gan: Any, dim: int, latent_dim: int) -> Observations:
    """What one student ``GAN`` is: its attributes, parameters, outputs and layers."""
    nets = {name: getattr(gan, name, None) for name in ("generator", "discriminator")}
    seen: Observations = {
        "is_module": isinstance(gan, nn.Module),
        "nets": [name for name, net in nets.items() if isinstance(net, nn.Module)],
        "latent_dim": getattr(gan, "latent_dim", None),
    }
    if not seen["is_module"] or len(seen["nets"]) < 2:
        return seen
    g_ids = {id(p) for p in gan.generator.parameters()}
    d_ids = {id(p) for p in gan.discriminator.parameters()}
    seen["params"] = {
        "generator": sum(p.requires_grad for p in gan.generator.parameters()),
        "discriminator": sum(p.requires_grad for p in gan.discriminator.parameters()),
        "shared": len(g_ids & d_ids),
        "registered": len({id(p) for p in gan.parameters()} & (g_ids | d_ids)),
        "total": len(g_ids | d_ids),
    }
    with torch.no_grad():
        torch.manual_seed(1)
        z, x = torch.randn(10, latent_dim), torch.randn(10, dim)
        seen["generated"] = as_tensor(gan.generator(z))
        seen["discriminator"] = as_tensor(gan.discriminator(x))
        seen["discriminate"] = as_tensor(gan.discriminate(x))
    # Spread-out inputs, so that the last linear layer's outputs take both signs and a final
    # ReLU or LeakyReLU shows, whatever the hidden activations are.
    torch.manual_seed(2)
    z_wide, x_wide = 3 * torch.randn(64, latent_dim), 3 * torch.randn(64, dim)
    seen["d_end"] = after_last_linear(lambda: gan.discriminate(x_wide), gan.discriminator)
    seen["g_end"] = after_last_linear(lambda: gan.generator(z_wide), gan.generator)
    seen["d_layers"] = batch_behaviour(gan.discriminator, x_wide[:16])
    seen["g_layers"] = batch_behaviour(gan.generator, z_wide[:16])
    return seen


def _probe_gan(namespace: Mapping[str, Any]) -> Observations:
    """Build ``GAN(dim, h, latent_dim)`` for two sizes (arguments by position) and observe each."""
    observations: Observations = {}
    for dim, h, latent_dim in ((2, 32, _LATENT_DIM), (5, 8, 7)):
        torch.manual_seed(0)
        observations[f"{dim}-{h}-{latent_dim}"] = _observe_gan(namespace["GAN"](dim, h, latent_dim), dim, latent_dim)
    return observations


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
    seen = _judge_gan_structure(observations, 2, 32, _LATENT_DIM)
    _judge_ends(seen, f"GAN(2, 32, {_LATENT_DIM})")
    return "the generator and the discriminator have the right shapes and both end with a plain nn.Linear."


def _judge_gan_details(observations: Observations) -> str:
    _judge_gan_structure(observations, 2, 32, _LATENT_DIM)
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


class _LatentRecorder(nn.Sequential):
    """Stands in for a generator ``(n, latent_dim) -> (n, 2)``: records its input, returns a known function of it.

    It holds one ``nn.Linear(latent_dim, 2)`` with zero weights, as its index 0, that adds nothing to the
    output but makes it what a generator gives: a tensor with an autograd graph unless sampling runs under
    ``torch.no_grad()``. Code that finds the device with ``next(self.generator.parameters())`` or reads
    ``self.generator[0].in_features`` works on it, and any other attribute (``self.generator.hidden.weight``)
    comes from the student's own generator, which it replaces.
    """

    def __init__(self, latent_dim: int, replaced: Any = None) -> None:
        super().__init__(nn.Linear(latent_dim, 2))
        nn.init.zeros_(self[0].weight)
        nn.init.zeros_(self[0].bias)
        self.inputs: list[torch.Tensor] = []
        self.__dict__["_replaced"] = replaced  # not a submodule: its parameters are not the recorder's

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            replaced = self.__dict__.get("_replaced")
            if replaced is None:
                raise
            return getattr(replaced, name)

    @staticmethod
    def transform(z: torch.Tensor) -> torch.Tensor:
        """``(n, k)`` noise to ``(n, 2)`` points: the sum of each row, and its first entry."""
        return torch.stack([z.sum(dim=1), z[:, 0]], dim=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.inputs.append(z.detach().clone())
        if z.shape[-1] != self[0].in_features:  # noise of the wrong size: the judge says so
            return self.transform(z)
        return self.transform(z) + self[0](z)


def _probe_sample(namespace: Mapping[str, Any]) -> Observations:
    """Call ``gan.sample(4000)`` on the student's GAN (a reference one if it cannot be built), generator replaced."""
    GAN = namespace["GAN"]
    torch.manual_seed(0)
    try:
        gan = GAN(2, 16, _LATENT_DIM)
    except Exception:  # test_gan reports it; sample() is judged on its own
        gan = gan2d.GAN(2, 16, _LATENT_DIM)
        gan.sample = types.MethodType(GAN.sample, gan)
    recorder = _LatentRecorder(_LATENT_DIM, getattr(gan, "generator", None))
    gan.generator = recorder
    torch.manual_seed(1)
    out = gan.sample(4000)
    return {"out": as_tensor(out), "graph": carries_graph(out), "latents": recorder.inputs}


def _judge_sample_structure(observations: Observations) -> tuple[torch.Tensor, torch.Tensor]:
    out = require_tensor(observations["out"], "gan.sample(4000)", (4000, 2))
    latents = observations["latents"]
    require(len(latents) > 0, "gan.sample(n) never called self.generator: pass the noise through the generator.")
    z = torch.cat([latent.reshape(len(latent), -1) for latent in latents])
    require(
        tuple(z.shape) == (4000, _LATENT_DIM),
        f"gan.sample(4000) fed the generator noise of shape {tuple(z.shape)}; expected "
        f"(4000, latent_dim) = (4000, {_LATENT_DIM}): one latent vector per sample, of size latent_dim.",
    )
    assert_close(out, _LatentRecorder.transform(z), "gan.sample(4000), which should be generator(z),")
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


# ---------------------------------------------------------------- Exercise 2: the two steps


def _step_fixture(name: str) -> tuple[gan2d.GAN, torch.Tensor, torch.Tensor, nn.Module, nn.Module, torch.optim.SGD]:
    """The fixture for a step: the network it trains (with stale gradients), the other one, and SGD."""
    gan, x_real, z = _fixture()
    trained, other = (
        (gan.discriminator, gan.generator) if name == "discriminator_step" else (gan.generator, gan.discriminator)
    )
    optimizer = torch.optim.SGD(trained.parameters(), lr=_SGD_LR)
    fill_stale_gradients(trained, _STALE_GRAD)
    return gan, x_real, z, trained, other, optimizer


def _probe_step(namespace: Mapping[str, Any], name: str) -> Observations:
    """Call a step function twice on the fixture, with stale gradients in the trained network.

    After each call it records the returned loss, both networks' parameters and flags
    (:func:`network_flags`), and how often the given optimizer stepped.
    """
    step = namespace[name]
    gan, x_real, z, trained, other, optimizer = _step_fixture(name)
    optimizer_steps: list[int] = []
    optimizer.register_step_post_hook(lambda *_: optimizer_steps.append(1))
    observations: Observations = {"losses": [], "trained": [], "other_grad": [], "flags": [], "optimizer_steps": []}
    for _ in range(2):
        returned = step(gan, x_real, z, optimizer) if name == "discriminator_step" else step(gan, z, optimizer)
        observations["losses"].append(as_float(returned))
        observations["trained"].append(flat_parameters(trained))
        observations["other_grad"].append(flat_gradients(other))
        observations["flags"].append(
            {"generator": network_flags(gan.generator), "discriminator": network_flags(gan.discriminator)}
        )
        observations["optimizer_steps"].append(len(optimizer_steps))
    observations["other"] = flat_parameters(other)
    return observations


def _reference_run(name: str, scale: float) -> tuple[list[float], list[torch.Tensor], torch.Tensor]:
    """The reference step on the fixture, twice, with its loss multiplied by ``scale``."""
    gan, x_real, z, trained, other, optimizer = _step_fixture(name)
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
        start = _fixture()[0]
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
        stale = initial - _SGD_LR * _STALE_GRAD + (params[0] - initial)
        assert_matches(
            moved,
            params[0],
            f"gan.{trained_net}.parameters() after one {name} with SGD(lr={_SGD_LR})",
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


# ---------------------------------------------------------------- Exercise 2: the training loop


class _LoopRecorder:
    """Reference steps and a data sampler that log how a training loop calls them.

    It keeps every optimizer the loop passes (so that none is freed and its ``id`` reused),
    to tell optimizers made once from optimizers made anew at every step.
    """

    def __init__(self, gan: gan2d.GAN, batch_size: int, lr: float) -> None:
        self.gan = gan
        self.batch_size = batch_size
        self.lr = lr
        self.optimizers: dict[str, list[Any]] = {"discriminator_step": [], "generator_step": []}
        self.calls: list[str] = []
        self.latents: list[torch.Tensor] = []
        self.losses: dict[str, list[float]] = {"d_loss": [], "g_loss": []}
        self.problems: list[str] = []
        self.batches: list[torch.Tensor] = []

    def sampler(self, n: int) -> torch.Tensor:
        batch = data2d.sample_data(n, "2gmm")
        self.batches.append(batch)
        return batch

    def _check_optimizer(self, optimizer: Any, own: nn.Module, other: nn.Module, step: str) -> None:
        first_call = not self.optimizers[step]
        self.optimizers[step].append(optimizer)
        if not isinstance(optimizer, torch.optim.Optimizer):
            self.problems.append(f"{step} was given a {type(optimizer).__name__}, not a torch.optim optimizer.")
            return
        rates = sorted({float(group["lr"]) for group in optimizer.param_groups})
        if first_call and not all(close(rate, self.lr) for rate in rates):
            self.problems.append(
                f"the optimizer given to {step} has learning rate {', '.join(f'{r:g}' for r in rates)}, but "
                f"train_gan was called with lr={self.lr:g}: create both optimizers with lr=lr."
            )
        ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if ids & {id(p) for p in other.parameters()}:
            self.problems.append(
                f"the optimizer given to {step} also holds the other network's parameters: use one optimizer "
                "per network, or the step would update both players."
            )
        elif not {id(p) for p in own.parameters()} <= ids:
            self.problems.append(f"the optimizer given to {step} does not hold all the parameters it should train.")

    def _check_batch(self, tensor: Any, shape: tuple[int, int], what: str) -> bool:
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != shape:
            got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            self.problems.append(f"{what} had shape {got}; expected {shape}.")
            return False
        return True

    def discriminator_step(self, gan: Any, x_real: Any, z: Any, optimizer: Any) -> float:
        self.calls.append("D")
        self._check_optimizer(optimizer, self.gan.discriminator, self.gan.generator, "discriminator_step")
        shapes_ok = self._check_batch(x_real, (self.batch_size, 2), "x_real given to discriminator_step")
        shapes_ok &= self._check_batch(z, (self.batch_size, self.gan.latent_dim), "z given to discriminator_step")
        if shapes_ok and not any(x_real is batch for batch in self.batches):
            self.problems.append("x_real given to discriminator_step did not come from sampler(batch_size).")
        if not shapes_ok:
            return float("nan")
        self.latents.append(z.detach().clone())
        loss = gan2d.discriminator_step(self.gan, x_real, z, optimizer)
        self.losses["d_loss"].append(loss)
        return loss

    def generator_step(self, gan: Any, z: Any, optimizer: Any) -> float:
        self.calls.append("G")
        self._check_optimizer(optimizer, self.gan.generator, self.gan.discriminator, "generator_step")
        if not self._check_batch(z, (self.batch_size, self.gan.latent_dim), "z given to generator_step"):
            return float("nan")
        self.latents.append(z.detach().clone())
        loss = gan2d.generator_step(self.gan, z, optimizer)
        self.losses["g_loss"].append(loss)
        return loss


def _run_loop(namespace: Mapping[str, Any], recorder: _LoopRecorder, **options: Any) -> Any:
    """Run the student's train_gan with the recorder's steps in place of theirs."""
    train_gan = namespace["train_gan"]
    # The reference mmd2 too, for a loop that logs the MMD: its own mistakes are test_mmd2's.
    steps = {
        "discriminator_step": recorder.discriminator_step,
        "generator_step": recorder.generator_step,
        "mmd2": mmd.mmd2,
    }
    with substituted(train_gan, steps):
        return train_gan(recorder.gan, recorder.sampler, batch_size=recorder.batch_size, **options)


def _history_as_lists(history: Any) -> dict[str, list[float | str]] | str:
    """The two loss sequences of a history (any sequence of Python floats), or what came instead of a dict."""
    if not isinstance(history, dict):
        return f"{type(history).__name__}, not a dict"
    return {key: [as_float(v) for v in history[key]] for key in ("d_loss", "g_loss") if key in history}


def _probe_train_gan(namespace: Mapping[str, Any]) -> Observations:
    torch.manual_seed(_SEED)
    recorder = _LoopRecorder(gan2d.GAN(2, 16, _LATENT_DIM), batch_size=20, lr=_LOOP_LR)
    history = _run_loop(namespace, recorder, n_steps=4, d_steps=3, lr=_LOOP_LR)
    return {
        "calls": "".join(recorder.calls),
        "optimizers": {step: len({id(o) for o in given}) for step, given in recorder.optimizers.items()},
        "problems": recorder.problems,
        "latents": recorder.latents,
        "history": _history_as_lists(history),
        "losses": recorder.losses,
    }


def _judge_train_gan(observations: Observations) -> str:
    calls = observations["calls"]
    expected = "DDDG" * 4
    require(bool(calls), "train_gan never called discriminator_step or generator_step.")
    if observations["problems"]:
        raise CheckFailed(observations["problems"][0])
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


def _mmd_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(_SEED)
    x = torch.randn(50, 2, generator=g)
    y = 0.5 * torch.randn(40, 2, generator=g) + 0.8
    w = torch.randn(30, 3, generator=g)
    return x, y, w


def _probe_mmd2(namespace: Mapping[str, Any]) -> Observations:
    """``mmd2`` on the fixtures (samples by position, ``bandwidth`` by keyword), each call's :func:`outcome`."""
    mmd2 = namespace["mmd2"]
    x, y, w = _mmd_inputs()
    return {
        "xy": outcome(mmd2, x, y, bandwidth=0.7),
        "yx": outcome(mmd2, y, x, bandwidth=0.7),
        "xx": outcome(mmd2, x, x, bandwidth=0.7),
        "default": outcome(mmd2, x, y),
        "3d": outcome(mmd2, w, 2 * w, bandwidth=1.5),
        "one point": outcome(mmd2, x[:1], y[:1], bandwidth=0.7),
    }


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
    x, y, _ = _mmd_inputs()
    _judge_mmd_value(observations["xy"], x, y, 0.7, "mmd2(x, y, bandwidth=0.7)")
    return "mmd2 matches the reference on the test samples."


def _judge_mmd2_details(observations: Observations) -> str:
    x, y, w = _mmd_inputs()
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


def _step_probe(name: str) -> Callable[[Mapping[str, Any]], Observations]:
    return lambda namespace: _probe_step(namespace, name)


CHECKS: dict[str, Check] = registry(
    check_pair("gan", ("GAN",), _probe_gan, _judge_gan, _judge_gan_details),
    check_pair("sample", ("GAN",), _probe_sample, _judge_sample, _judge_sample_details),
    *(
        check_pair(name, (name,), _step_probe(name), _judge_step(name), _judge_step_details(name))
        for name in ("discriminator_step", "generator_step")
    ),
    check_pair("train_gan", ("train_gan",), _probe_train_gan, _judge_train_gan, _judge_train_gan_details),
    check_pair("mmd2", ("mmd2",), _probe_mmd2, _judge_mmd2, _judge_mmd2_details),
)


#: ``check(name, globals())``, called by the test cells.
check = bind(CHECKS, "the 2D GAN lab")
