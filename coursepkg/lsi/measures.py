"""The objective and measures of Latent Space Illumination: the answer key of the LSI lab.

The pyribs tutorial "Illuminating the Latent Space of an MNIST GAN" (after
Fontaine et al., 2021) scores each latent vector of the MNIST GAN by what its
image looks like:

* objective: LeNet-5's probability of the digit (:func:`digit_probability`);
* measures: **boldness**, the number of pixels ``>= 0.5`` in ``[0, 1]`` scale
  (range ``[0, 784]``), and **lightness**, the mean value of those pixels
  (range ``[0.5, 1]``) (:func:`measures`).

:func:`evaluate` turns a batch of latent vectors into both, as the search's
ask-evaluate-tell loop needs them (:mod:`coursepkg.lsi.search`);
:func:`evaluate_digits` adds LeNet-5's digit as a third measure. Used by the LSI
lab (which asks students to write :func:`boldness`, :func:`lightness`,
:func:`digit_probability` and :func:`evaluate`) and the LSI chapter.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from coursepkg.mnist.data import SCALES
from coursepkg.mnist.models import IMAGE_SIZE, LATENT_DIM

__all__ = [
    "BOLDNESS_RANGE",
    "DIGIT_RANGE",
    "LIGHTNESS_RANGE",
    "MEASURE_RANGES",
    "boldness",
    "check_digit",
    "decode",
    "digit_probability",
    "evaluate",
    "evaluate_digits",
    "lightness",
    "measures",
    "realness",
]

#: Range of :func:`boldness`: from no pixel to all 784 pixels ``>= 0.5``.
BOLDNESS_RANGE = (0.0, 784.0)
#: Range of :func:`lightness`: the mean of pixels that are all ``>= 0.5``.
LIGHTNESS_RANGE = (0.5, 1.0)
#: Range of the third measure of :func:`evaluate_digits`, LeNet-5's digit: one cell per digit.
DIGIT_RANGE = (-0.5, 9.5)
_THRESHOLD = 0.5  # a pixel "is ink" from this value on, in [0, 1] scale
#: The measure space of the seed: ``[boldness, lightness]``.
MEASURE_RANGES = (BOLDNESS_RANGE, LIGHTNESS_RANGE)


def _flat_images(images: torch.Tensor) -> torch.Tensor:
    """``(n, 1, 28, 28)`` or ``(n, 784)`` images as ``(n, 784)``; a clear error for any other shape."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise TypeError(
            f"images must be a float torch.Tensor, got {type(images).__name__} {getattr(images, 'dtype', '')}."
        )
    if images.shape[1:] not in ((1, 28, 28), (IMAGE_SIZE,)):
        raise ValueError(f"images must have shape (n, 1, 28, 28) or (n, 784), got {tuple(images.shape)}.")
    return images.reshape(len(images), IMAGE_SIZE)


def boldness(images: torch.Tensor) -> torch.Tensor:
    """How much ink a digit has: the number of its pixels ``>= 0.5``.

    Args:
        images: ``(n, 1, 28, 28)`` or ``(n, 784)`` float, pixels in ``[0, 1]``.

    Returns:
        ``(n,)`` float32 counts in :data:`BOLDNESS_RANGE` ``= [0, 784]``.
    """
    return (_flat_images(images) >= _THRESHOLD).sum(dim=1, dtype=torch.float32)


def lightness(images: torch.Tensor) -> torch.Tensor:
    """How bright a digit's ink is: the mean value of its pixels ``>= 0.5``.

    Args:
        images: ``(n, 1, 28, 28)`` or ``(n, 784)`` float, pixels in ``[0, 1]``.

    Returns:
        ``(n,)`` float32 in :data:`LIGHTNESS_RANGE` ``= [0.5, 1]``, and exactly 0.0
        for an image without such a pixel (not NaN: the archive clips it into its
        lowest row).
    """
    flat = _flat_images(images)
    ink = flat >= _THRESHOLD
    total = torch.where(ink, flat, 0).sum(dim=1, dtype=torch.float32)
    count = ink.sum(dim=1, dtype=torch.float32)
    return torch.where(count > 0, total / count.clamp(min=1), 0.0)


def measures(images: torch.Tensor) -> torch.Tensor:
    """The two measures of the seed tutorial, side by side.

    Args:
        images: ``(n, 1, 28, 28)`` or ``(n, 784)`` float, pixels in ``[0, 1]``.

    Returns:
        ``(n, 2)`` float32: ``[boldness, lightness]`` (see :func:`boldness`, :func:`lightness`).
    """
    return torch.stack([boldness(images), lightness(images)], dim=1)


def check_digit(digit: int) -> None:
    """Raise ``ValueError`` unless ``digit`` is an integer from 0 to 9."""
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= digit <= 9:
        raise ValueError(f"digit must be an integer from 0 to 9, got {digit!r}.")


def _log_probabilities(classifier: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """LeNet-5's ``(n, 10)`` log-probabilities of ``[0, 1]`` images, normalised here as in training (no graph)."""
    mean, std = SCALES["lenet"]
    with torch.no_grad():
        return classifier(((_flat_images(images) - mean) / std).reshape(-1, 1, 28, 28))


def digit_probability(classifier: nn.Module, images: torch.Tensor, digit: int) -> torch.Tensor:
    """The probability that LeNet-5 gives ``digit``: the objective of the search.

    Args:
        classifier: LeNet-5 (``pretrained.load("lenet5")``), returning ``(n, 10)``
            log-probabilities of normalised images.
        images: ``(n, 1, 28, 28)`` or ``(n, 784)`` float in ``[0, 1]``; normalised here
            with mean 0.1307 and std 0.3081, like LeNet-5's training digits.
        digit: the class, 0 to 9.

    Returns:
        ``(n,)`` float32 probabilities in ``[0, 1]``.
    """
    check_digit(digit)
    return _log_probabilities(classifier, images)[:, digit].exp()


def realness(discriminator: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The discriminator's probability that images are real digits.

    Args:
        discriminator: the GAN's discriminator (``pretrained.load("discriminator")``),
            in eval mode, returning ``(n, 1)`` logits of ``[-1, 1]`` images.
        images: ``(n, 1, 28, 28)`` or ``(n, 784)`` float in ``[0, 1]``.

    Returns:
        ``(n,)`` float32 in ``[0, 1]``: ``sigmoid(logit)``.
    """
    return torch.sigmoid(discriminator(_flat_images(images) * 2 - 1)).squeeze(1)


def _check_latents(latents: np.ndarray, latent_dim: int) -> torch.Tensor:
    """``(n, latent_dim)`` numpy latents as a float32 tensor (no copy when they are float32 already)."""
    latents = np.asarray(latents)
    if latents.ndim != 2 or latents.shape[1] != latent_dim or not np.issubdtype(latents.dtype, np.floating):
        raise ValueError(
            f"latents must be a float array of shape (n, {latent_dim}), got {latents.dtype} {latents.shape}."
        )
    return torch.from_numpy(latents).float()


def decode(latents: np.ndarray, generator: nn.Module) -> torch.Tensor:
    """Images of latent vectors, in ``[0, 1]`` scale.

    Args:
        latents: ``(n, latent_dim)`` float numpy array (what ``scheduler.ask()`` returns).
        generator: maps ``(n, latent_dim)`` to ``(n, 784)`` images in ``[-1, 1]``;
            ``latent_dim`` is its attribute of that name, else 128.

    Returns:
        ``(n, 784)`` float32 in ``[0, 1]``.
    """
    with torch.inference_mode():
        latents = _check_latents(latents, getattr(generator, "latent_dim", LATENT_DIM))
        return (generator(latents) + 1) / 2


def evaluate(
    latents: np.ndarray,
    generator: nn.Module,
    classifier: nn.Module,
    *,
    digit: int = 8,
    discriminator: nn.Module | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Objectives and measures of a batch of latent vectors: the seed's evaluation.

    Args:
        latents: ``(n, 128)`` float numpy array, e.g. ``scheduler.ask()``.
        generator: the GAN's generator, ``(n, 128) -> (n, 784)`` in ``[-1, 1]``.
        classifier: LeNet-5, returning log-probabilities.
        digit: the digit searched for, 0 to 9.
        discriminator: when given, the objective becomes LeNet-5's probability
            times the discriminator's (:func:`realness`): an eight must also look real.

    Returns:
        ``(objectives, measures)``: ``(n,)`` and ``(n, 2)`` float64, objectives in
        ``[0, 1]`` and measures ``[boldness, lightness]``.
    """
    check_digit(digit)
    images = decode(latents, generator)
    with torch.inference_mode():
        objectives = digit_probability(classifier, images, digit)
        if discriminator is not None:
            objectives = objectives * realness(discriminator, images)
        return objectives.double().numpy(), measures(images).double().numpy()


def evaluate_digits(latents: np.ndarray, generator: nn.Module, classifier: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """Search all ten digits at once: LeNet-5's digit becomes a third measure.

    Args:
        latents: ``(n, 128)`` float numpy array.
        generator: the GAN's generator.
        classifier: LeNet-5, returning log-probabilities.

    Returns:
        ``(objectives, measures)``: ``(n,)`` float64, the probability of the digit
        LeNet-5 predicts, and ``(n, 3)`` float64 ``[boldness, lightness, digit]``
        with the digit in ``0..9`` (see :data:`DIGIT_RANGE`).
    """
    images = decode(latents, generator)
    with torch.inference_mode():
        best, digit = _log_probabilities(classifier, images).max(dim=1)
        found = torch.cat([measures(images), digit.unsqueeze(1).float()], dim=1)
        return best.exp().double().numpy(), found.double().numpy()
