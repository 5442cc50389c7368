"""Probes of the 2D GAN lab (``solutions/lab_2d_gan``): how its checks run a student's code.

The judges are in :mod:`coursepkg.grading.lab_2d_gan`. The step checks drive the student's
function with plain SGD on a reference GAN of fixed weights; the training-loop check hands the
student's ``train_gan`` the reference steps (and ``mmd2``), wrapped in recorders. Those are the
answers to *other* exercises, named in each probe's ``uses``; the sandbox hands a probe those
alone (:func:`~coursepkg.grading.observe.reference`).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from coursepkg.grading.observe import (
    Observations,
    Probe,
    after_last_linear,
    as_float,
    as_tensor,
    batch_behaviour,
    carries_graph,
    fill_stale_gradients,
    flat_gradients,
    flat_parameters,
    network_flags,
    outcome,
    probes,
    reference,
    seed,
    substituted,
)
from coursepkg.toy2d.data import sample_data

__all__ = [
    "LATENT_DIM",
    "LOOP_LR",
    "PROBES",
    "SEED",
    "SGD_LR",
    "STALE_GRAD",
    "LatentRecorder",
    "fixture",
    "mmd_inputs",
    "step_fixture",
]

#: The answer keys the probes hand the student's code: the lab's GAN, its two steps and MMD.
_GAN = "coursepkg.toy2d.gan:GAN"
_STEPS = ("coursepkg.toy2d.gan:discriminator_step", "coursepkg.toy2d.gan:generator_step")
_MMD2 = "coursepkg.toy2d.mmd:mmd2"

SEED = 1234
LATENT_DIM = 3  # not 2, so that a latent size swapped with the data size shows


SGD_LR = 0.1


LOOP_LR = 3e-3  # not the usual 1e-3 or 2e-4, so that a learning rate written into the loop shows
STALE_GRAD = 0.37  # left in .grad before a step, as the other player's step would


def fixture() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A reference GAN (``GAN(2, 16, LATENT_DIM)``) with fixed weights, 32 real points and 32 latent vectors.

    The step checks train it with the student's step; the reference GAN is the 2D lab's first exercise, not the
    step they check, and its probes declare it in their :attr:`~coursepkg.grading.observe.Probe.uses`.
    """
    torch.manual_seed(seed(SEED))
    gan = reference(_GAN)(dim=2, h=16, latent_dim=LATENT_DIM)
    g = torch.Generator().manual_seed(seed(SEED))
    x_real = sample_data(32, "2gmm", generator=g)
    z = torch.randn(32, LATENT_DIM, generator=g)
    return gan, x_real, z


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
        torch.manual_seed(seed(1))
        z, x = torch.randn(10, latent_dim), torch.randn(10, dim)
        seen["generated"] = as_tensor(gan.generator(z))
        seen["discriminator"] = as_tensor(gan.discriminator(x))
        seen["discriminate"] = as_tensor(gan.discriminate(x))
    # Spread-out inputs, so that the last linear layer's outputs take both signs and a final
    # ReLU or LeakyReLU shows, whatever the hidden activations are.
    torch.manual_seed(seed(2))
    z_wide, x_wide = 3 * torch.randn(64, latent_dim), 3 * torch.randn(64, dim)
    seen["d_end"] = after_last_linear(lambda: gan.discriminate(x_wide), gan.discriminator)
    seen["g_end"] = after_last_linear(lambda: gan.generator(z_wide), gan.generator)
    seen["d_layers"] = batch_behaviour(gan.discriminator, x_wide[:16])
    seen["g_layers"] = batch_behaviour(gan.generator, z_wide[:16])
    return seen


def _probe_gan(namespace: Mapping[str, Any]) -> Observations:
    """Build ``GAN(dim, h, latent_dim)`` for two sizes (arguments by position) and observe each."""
    observations: Observations = {}
    for dim, h, latent_dim in ((2, 32, LATENT_DIM), (5, 8, 7)):
        torch.manual_seed(seed(0))
        observations[f"{dim}-{h}-{latent_dim}"] = _observe_gan(namespace["GAN"](dim, h, latent_dim), dim, latent_dim)
    return observations


class LatentRecorder(nn.Sequential):
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
    """Call ``gan.sample(4000)`` on the student's GAN (a :class:`_Holder` if it cannot be built), generator replaced."""
    GAN = namespace["GAN"]
    torch.manual_seed(seed(0))
    try:
        gan = GAN(2, 16, LATENT_DIM)
    except Exception:  # test_gan reports it; sample() is judged on its own
        gan = _Holder(LATENT_DIM)
        gan.sample = types.MethodType(GAN.sample, gan)
    recorder = LatentRecorder(LATENT_DIM, getattr(gan, "generator", None))
    gan.generator = recorder
    torch.manual_seed(seed(1))
    out = gan.sample(4000)
    return {"out": as_tensor(out), "graph": carries_graph(out), "latents": recorder.inputs}


def step_fixture(name: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor, nn.Module, nn.Module, torch.optim.SGD]:
    """The fixture for a step: the network it trains (with stale gradients), the other one, and SGD."""
    gan, x_real, z = fixture()
    trained, other = (
        (gan.discriminator, gan.generator) if name == "discriminator_step" else (gan.generator, gan.discriminator)
    )
    optimizer = torch.optim.SGD(trained.parameters(), lr=SGD_LR)
    fill_stale_gradients(trained, STALE_GRAD)
    return gan, x_real, z, trained, other, optimizer


def _probe_step(namespace: Mapping[str, Any], name: str) -> Observations:
    """Call a step function twice on the fixture, with stale gradients in the trained network.

    After each call it records the returned loss, both networks' parameters and flags
    (:func:`network_flags`), and how often the given optimizer stepped.
    """
    step = namespace[name]
    gan, x_real, z, trained, other, optimizer = step_fixture(name)
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


class _LoopRecorder:
    """Reference steps and a data sampler that log how a training loop calls them.

    It keeps every optimizer the loop passes (so that none is freed and its ``id`` reused),
    to tell optimizers made once from optimizers made anew at every step.
    """

    def __init__(self, gan: nn.Module, batch_size: int, lr: float) -> None:
        self.gan = gan
        self.batch_size = batch_size
        self.lr = lr
        self.optimizers: dict[str, list[Any]] = {"discriminator_step": [], "generator_step": []}
        self.calls: list[str] = []
        self.latents: list[torch.Tensor] = []
        self.losses: dict[str, list[float]] = {"d_loss": [], "g_loss": []}
        self.problems: list[str | dict[str, Any]] = []
        self.batches: list[torch.Tensor] = []

    def sampler(self, n: int) -> torch.Tensor:
        batch = sample_data(n, "2gmm")
        self.batches.append(batch)
        return batch

    def _check_optimizer(self, optimizer: Any, own: nn.Module, other: nn.Module, step: str) -> None:
        first_call = not self.optimizers[step]
        self.optimizers[step].append(optimizer)
        if not isinstance(optimizer, torch.optim.Optimizer):
            self.problems.append(f"{step} was given a {type(optimizer).__name__}, not a torch.optim optimizer.")
            return
        if first_call:  # the judge compares the rates with the lr given to train_gan
            self.problems.append(
                {"step": step, "rates": sorted({float(group["lr"]) for group in optimizer.param_groups})}
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
        loss = reference(_STEPS[0])(self.gan, x_real, z, optimizer)
        self.losses["d_loss"].append(loss)
        return loss

    def generator_step(self, gan: Any, z: Any, optimizer: Any) -> float:
        self.calls.append("G")
        self._check_optimizer(optimizer, self.gan.generator, self.gan.discriminator, "generator_step")
        if not self._check_batch(z, (self.batch_size, self.gan.latent_dim), "z given to generator_step"):
            return float("nan")
        self.latents.append(z.detach().clone())
        loss = reference(_STEPS[1])(self.gan, z, optimizer)
        self.losses["g_loss"].append(loss)
        return loss


def _run_loop(namespace: Mapping[str, Any], recorder: _LoopRecorder, **options: Any) -> Any:
    """Run the student's train_gan with the recorder's steps in place of theirs."""
    train_gan = namespace["train_gan"]
    # The reference mmd2 too, for a loop that logs the MMD: its own mistakes are test_mmd2's.
    steps = {
        "discriminator_step": recorder.discriminator_step,
        "generator_step": recorder.generator_step,
        "mmd2": reference(_MMD2),
    }
    with substituted(train_gan, steps):
        return train_gan(recorder.gan, recorder.sampler, batch_size=recorder.batch_size, **options)


def _history_as_lists(history: Any) -> dict[str, list[float | str]] | str:
    """The two loss sequences of a history (any sequence of Python floats), or what came instead of a dict."""
    if not isinstance(history, dict):
        return f"{type(history).__name__}, not a dict"
    return {key: [as_float(v) for v in history[key]] for key in ("d_loss", "g_loss") if key in history}


def _probe_train_gan(namespace: Mapping[str, Any]) -> Observations:
    torch.manual_seed(seed(SEED))
    recorder = _LoopRecorder(reference(_GAN)(2, 16, LATENT_DIM), batch_size=20, lr=LOOP_LR)
    history = _run_loop(namespace, recorder, n_steps=4, d_steps=3, lr=LOOP_LR)
    return {
        "calls": "".join(recorder.calls),
        "optimizers": {step: len({id(o) for o in given}) for step, given in recorder.optimizers.items()},
        "problems": recorder.problems,
        "latents": recorder.latents,
        "history": _history_as_lists(history),
        "losses": recorder.losses,
    }


def mmd_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed(SEED))
    x = torch.randn(50, 2, generator=g)
    y = 0.5 * torch.randn(40, 2, generator=g) + 0.8
    w = torch.randn(30, 3, generator=g)
    return x, y, w


def _probe_mmd2(namespace: Mapping[str, Any]) -> Observations:
    """``mmd2`` on the fixtures (samples by position, ``bandwidth`` by keyword), each call's :func:`outcome`."""
    mmd2 = namespace["mmd2"]
    x, y, w = mmd_inputs()
    return {
        "xy": outcome(mmd2, x, y, bandwidth=0.7),
        "yx": outcome(mmd2, y, x, bandwidth=0.7),
        "xx": outcome(mmd2, x, x, bandwidth=0.7),
        "default": outcome(mmd2, x, y),
        "3d": outcome(mmd2, w, 2 * w, bandwidth=1.5),
        "one point": outcome(mmd2, x[:1], y[:1], bandwidth=0.7),
    }


class _Holder(nn.Module):
    """Stands in for a GAN the student's class could not build, with what ``sample()`` reads of one."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = nn.Identity()
        self.discriminator = nn.Identity()


PROBES: dict[str, Probe] = probes(
    __name__,
    Probe("gan", ("GAN",), _probe_gan),
    Probe("sample", ("GAN",), _probe_sample),
    Probe("discriminator_step", ("discriminator_step",), lambda ns: _probe_step(ns, "discriminator_step"), (_GAN,)),
    Probe("generator_step", ("generator_step",), lambda ns: _probe_step(ns, "generator_step"), (_GAN,)),
    Probe("train_gan", ("train_gan",), _probe_train_gan, (_GAN, *_STEPS, _MMD2)),
    Probe("mmd2", ("mmd2",), _probe_mmd2),
)
