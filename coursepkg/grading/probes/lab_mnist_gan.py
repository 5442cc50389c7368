"""Probes of the MNIST GAN lab (``solutions/lab_mnist_gan``): how its checks run a student's code.

The judges are in :mod:`coursepkg.grading.lab_mnist_gan`. The network probes give every ``nn.Linear``
of the student's network fixed weights chosen by its shape (:func:`weights_for`), run it on fixed
inputs (:func:`fixed_inputs`) and record its outputs and what enters and leaves each layer; the loss
probes call the losses on fixed logits (:func:`logit_cases`, :func:`extreme_cases`). The training-step
probe runs the student's ``train_step`` on small reference networks (:func:`step_fixture`) with the
reference losses in place of the student's: those are the answers to *other* exercises, named in its
``uses``; the sandbox hands a probe those alone (:func:`~coursepkg.grading.observe.reference`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from coursepkg.grading.observe import (
    Observations,
    Probe,
    after_last_linear,
    as_float,
    as_number,
    as_tensor,
    batch_behaviour,
    describe_error,
    fill_stale_gradients,
    flat_gradients,
    flat_parameters,
    linear_traffic,
    network_flags,
    probes,
    reference,
    seed,
    substituted,
)

__all__ = [
    "D_LINEARS",
    "G_LINEARS",
    "PROBES",
    "SEED",
    "STALE_GRAD",
    "extreme_cases",
    "fixed_inputs",
    "logit_cases",
    "second_batch",
    "step_fixture",
    "weights_for",
]

#: The answer keys the training-step probe hands the student's code: the networks and the losses.
_GENERATOR = "coursepkg.mnist.models:Generator"
_DISCRIMINATOR = "coursepkg.mnist.models:Discriminator"
_D_LOSS = "coursepkg.toy2d.losses:discriminator_loss"
_G_LOSS = "coursepkg.toy2d.losses:generator_loss"

SEED = 2024
G_LINEARS = [(128, 256), (256, 512), (512, 1024), (1024, 784)]
D_LINEARS = [(784, 1024), (1024, 512), (512, 256), (256, 1)]
_SGD_LR = 0.05
STALE_GRAD = 0.37


# ---------------------------------------------------------------- networks: fixed weights by shape


def weights_for(shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic weights ``(out, in)`` and bias ``(out,)`` for a linear layer of ``shape = (in, out)``."""
    fan_in, fan_out = shape
    g = torch.Generator().manual_seed(seed(fan_in * 100_003 + fan_out))
    weight = torch.randn(fan_out, fan_in, generator=g) * math.sqrt(2.0 / fan_in)
    return weight, 0.1 * torch.randn(fan_out, generator=g)


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def _set_fixed_weights(module: nn.Module) -> None:
    with torch.no_grad():
        for layer in _linears(module):
            weight, bias = weights_for((layer.in_features, layer.out_features))
            layer.weight.copy_(weight)
            if layer.bias is not None:
                layer.bias.copy_(bias)


def fixed_inputs() -> dict[str, torch.Tensor]:
    """The networks' inputs: latent vectors ``"z"`` (8, 128), ``"z16"`` (8, 16), ``"far_z"`` (64, 128), images ``"x"``.

    The images, ``(8, 784)``, are uniform in ``[-1, 1]``; ``"far_z"`` are large latent vectors, 50 times N(0, 1).
    """
    g = torch.Generator().manual_seed(seed(SEED))
    return {
        "z": torch.randn(8, 128, generator=g),
        "z16": torch.randn(8, 16, generator=g),
        "far_z": 50 * torch.randn(64, 128, generator=g),
        "x": 2 * torch.rand(8, 784, generator=g) - 1,
    }


def _describe_network(module: Any) -> Observations:
    if not isinstance(module, nn.Module):
        return {"is_module": False}
    return {
        "is_module": True,
        "linears": [(m.in_features, m.out_features) for m in _linears(module)],
        "biases": all(m.bias is not None for m in _linears(module)),
        "layers": sorted({type(m).__name__ for m in module.modules() if m is not module}),
    }


def _built_with_fixed_weights(namespace: Mapping[str, Any], name: str) -> tuple[Any, Observations]:
    """The student's network built with its default arguments, its layers described and given fixed weights."""
    torch.manual_seed(seed(0))
    network = namespace[name]()
    seen = _describe_network(network)
    if seen["is_module"]:
        _set_fixed_weights(network)
    return network, seen


def _tensor_or_error(call: Callable[[], Any]) -> torch.Tensor | str:
    """What ``call()`` returned (:func:`as_tensor`), or the sentence saying what it raised."""
    try:
        return as_tensor(call())
    except Exception as error:  # judged after the cases that say more
        return describe_error(error)


def _probe_generator(namespace: Mapping[str, Any]) -> Observations:
    generator, seen = _built_with_fixed_weights(namespace, "Generator")
    if not seen["is_module"]:
        return seen
    inputs = fixed_inputs()
    seen["latent_dim"] = getattr(generator, "latent_dim", None)
    seen["plain"] = batch_behaviour(generator, inputs["z"])  # in training mode, where dropout and batch norm act
    generator.eval()
    seen["end"] = after_last_linear(lambda: generator(inputs["z"]), generator)
    with torch.no_grad():
        seen["out"] = as_tensor(generator(inputs["z"]))
        seen["far"] = as_tensor(generator(inputs["far_z"]))
        seen["one"] = _tensor_or_error(lambda: generator(inputs["z"][:1]))
        try:
            small = namespace["Generator"](latent_dim=16)
            seen["small_linears"] = [(m.in_features, m.out_features) for m in _linears(small)]
            seen["small_out"] = as_tensor(small(inputs["z16"]))
        except Exception as error:  # judged after the default network, which says more
            seen["small_out"] = describe_error(error)
    return seen


def _probe_discriminator(namespace: Mapping[str, Any]) -> Observations:
    discriminator, seen = _built_with_fixed_weights(namespace, "Discriminator")
    if not seen["is_module"]:
        return seen
    x = fixed_inputs()["x"]
    discriminator.eval()
    seen["end"] = after_last_linear(lambda: discriminator(x), discriminator)
    with torch.no_grad():
        seen["eval"] = [as_tensor(discriminator(x)), as_tensor(discriminator(x))]
        seen["images"] = as_tensor(discriminator(x.reshape(-1, 1, 28, 28)))
        seen["one"] = _tensor_or_error(lambda: discriminator(x[:1].reshape(1, 1, 28, 28)))
    discriminator.train()
    torch.manual_seed(seed(1))
    seen["train"] = linear_traffic(lambda: discriminator(x), discriminator)
    return seen


# ---------------------------------------------------------------- losses


def logit_cases() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Discriminator logits ``(real, fake)`` of shapes ``(n, 1)`` and ``(m, 1)``, by the name a message uses."""
    g = torch.Generator().manual_seed(seed(SEED))
    return {
        "basic": (torch.randn(6, 1, generator=g), torch.randn(6, 1, generator=g)),
        "unequal batches": (2 * torch.randn(5, 1, generator=g), 2 * torch.randn(9, 1, generator=g) - 1),
        "confident": (torch.tensor([[4.0], [6.0], [5.0]]), torch.tensor([[-5.0], [-3.0], [-6.0]])),
        "batch of one": (torch.tensor([[0.8]]), torch.tensor([[-1.7]])),
    }


def extreme_cases() -> tuple[torch.Tensor, torch.Tensor]:
    """Logits so large that log(sigmoid(x)) underflows to -inf in float32 (and nn.BCELoss clamps its log)."""
    return torch.tensor([[120.0], [-120.0]]), torch.tensor([[-120.0], [120.0]])


def _loss_value(value: Any) -> float | str:
    """A loss as a float when it holds one number (its shape is judged apart), else what came instead."""
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        return f"a tensor of shape {tuple(value.shape)}"
    return as_number(value)


def _probe_loss(namespace: Mapping[str, Any], name: str) -> Observations:
    loss = namespace[name]

    def call(real: torch.Tensor, fake: torch.Tensor) -> Any:
        return loss(real, fake) if name == "discriminator_loss" else loss(fake)

    def value(real: torch.Tensor, fake: torch.Tensor) -> float | str:
        try:
            return _loss_value(call(real, fake))
        except Exception as error:  # each case says on which logits
            return describe_error(error)

    observations: Observations = {case: value(real, fake) for case, (real, fake) in logit_cases().items()}
    observations["extreme"] = value(*extreme_cases())
    real, fake = (t.clone().requires_grad_(True) for t in logit_cases()["basic"])
    value = call(real, fake)
    observations["differentiable"] = isinstance(value, torch.Tensor) and value.requires_grad
    observations["shape"] = list(value.shape) if isinstance(value, torch.Tensor) else None
    return observations


def _loss_probe(name: str) -> Callable[[Mapping[str, Any]], Observations]:
    return lambda namespace: _probe_loss(namespace, name)


# ---------------------------------------------------------------- the training step


class _RecordingSGD(torch.optim.SGD):
    """Plain SGD that records both networks' gradients whenever it steps."""

    def __init__(self, params: Any, *, watched: dict[str, nn.Module]) -> None:
        super().__init__(params, lr=_SGD_LR)
        self.watched = watched
        self.records: list[dict[str, torch.Tensor]] = []

    def step(self, closure: Any = None) -> Any:
        self.records.append({name: flat_gradients(net).clone() for name, net in self.watched.items()})
        return super().step(closure)


def step_fixture() -> tuple[nn.Module, nn.Module, torch.Tensor, torch.Tensor, _RecordingSGD, _RecordingSGD]:
    """Small reference networks with stale gradients, a real batch, noise and two recording optimizers.

    The generator maps ``(12, 8)`` noise to ``(12, 784)`` images; the discriminator (no dropout) scores
    ``(12, 784)`` images as ``(12, 1)`` logits. They are the references of the network exercises, not of
    the step, and the step's probe declares them in its :attr:`~coursepkg.grading.observe.Probe.uses`.
    """
    torch.manual_seed(seed(SEED))
    generator = reference(_GENERATOR)(latent_dim=8, hidden=(16, 32))
    discriminator = reference(_DISCRIMINATOR)(hidden=(32, 16), dropout=0.0)
    g = torch.Generator().manual_seed(seed(SEED))
    x_real = 2 * torch.rand(12, 784, generator=g) - 1
    z = torch.randn(12, 8, generator=g)
    nets = {"generator": generator, "discriminator": discriminator}
    d_opt = _RecordingSGD(discriminator.parameters(), watched=nets)
    g_opt = _RecordingSGD(generator.parameters(), watched=nets)
    for net in nets.values():
        fill_stale_gradients(net, STALE_GRAD)
    return generator, discriminator, x_real, z, d_opt, g_opt


def second_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(12, 784)`` real images and ``(12, 8)`` noise of the step's second call."""
    g = torch.Generator().manual_seed(seed(SEED + 1))
    return 2 * torch.rand(12, 784, generator=g) - 1, torch.randn(12, 8, generator=g)


def _reference_answers(function: Any, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The references to let ``function`` see instead of the student's answers to the earlier exercises.

    Besides the names themselves, every other global of ``function`` bound to a student's answer
    (``d_criterion = discriminator_loss`` in a cell of the student's) gets the reference too.
    """
    references: dict[str, Any] = {
        "discriminator_loss": reference(_D_LOSS),
        "generator_loss": reference(_G_LOSS),
        "Generator": reference(_GENERATOR),
        "Discriminator": reference(_DISCRIMINATOR),
    }
    scope = getattr(function, "__globals__", {})
    answers = {id(namespace[name]): answer for name, answer in references.items() if name in namespace}
    aliases = {alias: answers[id(value)] for alias, value in scope.items() if id(value) in answers}
    return references | aliases


def _probe_train_step(namespace: Mapping[str, Any]) -> Observations:
    """Call ``train_step`` twice on :func:`step_fixture`, with the reference losses and networks in its globals.

    A ``RuntimeError`` of the first call is recorded as ``"raised"`` (the sentence) and ``"message"`` (its
    text): the judge names the autograd errors a wrong step raises.
    """
    train_step = namespace["train_step"]
    generator, discriminator, x_real, z, d_opt, g_opt = step_fixture()
    with substituted(train_step, _reference_answers(train_step, namespace)):
        try:
            returned = train_step(generator, discriminator, x_real, z, d_opt, g_opt)
        except RuntimeError as error:
            return {"raised": describe_error(error), "message": str(error)}
        pair = returned if isinstance(returned, (tuple, list)) and len(returned) == 2 else None
        observations: Observations = {
            "returned": [as_float(v) for v in pair]
            if pair is not None
            else f"{type(returned).__name__} {returned!r}"[:120],
            "generator": flat_parameters(generator),
            "discriminator": flat_parameters(discriminator),
            "d_records": list(d_opt.records),
            "g_records": list(g_opt.records),
            "flags": {"generator": network_flags(generator), "discriminator": network_flags(discriminator)},
        }
        # A second call shows what the first left behind (frozen parameters, eval mode, gradients).
        try:
            train_step(generator, discriminator, *second_batch(), d_opt, g_opt)
            observations["second"] = {
                "generator": flat_parameters(generator),
                "discriminator": flat_parameters(discriminator),
            }
        except Exception as error:  # judged after the first call, which says more
            observations["second"] = describe_error(error)
    return observations


PROBES: dict[str, Probe] = probes(
    __name__,
    Probe("generator", ("Generator",), _probe_generator),
    Probe("discriminator", ("Discriminator",), _probe_discriminator),
    *(Probe(name, (name,), _loss_probe(name)) for name in ("discriminator_loss", "generator_loss")),
    Probe("train_step", ("train_step",), _probe_train_step, (_GENERATOR, _DISCRIMINATOR, _D_LOSS, _G_LOSS)),
)
