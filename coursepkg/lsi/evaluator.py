"""The LSI evaluation prepared once for millions of calls: :func:`~coursepkg.lsi.measures.evaluate`, faster.

:func:`coursepkg.lsi.measures.evaluate` is the answer key of the LSI lab: short,
checked, and written to be read. A search of 4.5 M evaluations calls it 30,000
times, so :class:`Evaluator` does the same work with the preparation paid once:

* LeNet-5's input normalisation is folded into its first convolution, and its
  pooling is :class:`~coursepkg.lsi.pooling.MaxPool2x2`;
* the two measures come from one pass over the images;
* optionally the generator runs in bfloat16, which CPUs with AMX or AVX512-BF16
  multiply two to ten times faster than float32 (and CPUs without either, a
  hundred times slower: ``precision="auto"`` chooses), with its weights laid out for
  those units once (:class:`_PackedLinear`), and so do LeNet-5's two
  convolutions, each a matrix product over rows of its input (:class:`_RowConvolution`).
  The images and scores differ slightly from the float32 ones, enough for a few
  pixels to cross the 0.5 ink threshold: the LSI chapter measures what that
  does to the archive.

It also does what :func:`~coursepkg.lsi.measures.evaluate` does with a
discriminator, and what :func:`~coursepkg.lsi.measures.evaluate_digits` does
(``digit=None``). Used by :func:`coursepkg.lsi.search.run_lsi` (the LSI chapter's
searches) and the LSI benchmark, in the worker of :mod:`coursepkg.lsi.pipeline`.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from coursepkg.lsi.measures import _THRESHOLD, _check_latents, check_digit, realness
from coursepkg.lsi.pooling import MaxPool2x2, fast_pooling
from coursepkg.mnist.data import SCALES
from coursepkg.mnist.models import LATENT_DIM
from coursepkg.util.runtime import cpu

__all__ = ["PRECISIONS", "Evaluator", "resolve_precision"]

#: The generator's precisions :class:`Evaluator` offers, besides ``"auto"`` (:func:`resolve_precision`).
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def resolve_precision(precision: str) -> str:
    """The precision an :class:`Evaluator` asked for ``precision`` runs in: ``"auto"`` made concrete.

    ``"auto"`` is ``"bfloat16"`` on a CPU whose instructions multiply bfloat16
    matrices (AVX512-BF16 or AMX, :func:`coursepkg.util.runtime.cpu`) when PyTorch
    has oneDNN's kernels for them, and ``"float32"`` elsewhere: without those units
    PyTorch multiplies bfloat16 at about 1 GFLOP/s, a hundredth of float32 (the LSI
    chapter, section 7). Used by :class:`Evaluator`, :data:`coursepkg.lsi.search.OURS`
    and the LSI benchmark.

    Args:
        precision: ``"auto"``, or one of :data:`PRECISIONS`, returned as it is.

    Returns:
        A key of :data:`PRECISIONS`.

    Raises:
        ValueError: for any other precision.
    """
    if precision == "auto":
        features = cpu()[1] or []
        native = "avx512_bf16" in features or "amx_bf16" in features
        return "bfloat16" if native and _can_pack() else "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {['auto', *PRECISIONS]}, got {precision!r}.")
    return precision


class Evaluator:
    """Objectives and measures of latent vectors, as :func:`~coursepkg.lsi.measures.evaluate` returns them.

    Args:
        generator: the GAN's generator, ``(n, 128) -> (n, 784)`` in ``[-1, 1]``.
        classifier: LeNet-5 (:class:`~coursepkg.mnist.lenet.LeNet5`), returning log-probabilities.
        digit: the digit whose probability is the objective, 0 to 9; ``None`` for
            :func:`~coursepkg.lsi.measures.evaluate_digits`: the probability of the
            digit LeNet-5 predicts, which becomes a third measure.
        discriminator: with a ``digit``, multiply the objective by the
            discriminator's probability that the image is real (float32).
        precision: ``"float32"`` (the answer key's numbers up to rounding),
            ``"bfloat16"`` (the generator's layers and LeNet-5's convolutions in
            bfloat16; LeNet-5's other layers and the measures stay float32), or
            ``"auto"``: bfloat16 where this CPU multiplies it natively
            (:func:`resolve_precision`). The attribute ``precision`` is the one chosen.

    Calling it with ``(n, 128)`` float latents returns ``(objectives, measures)``:
    ``(n,)`` float64 in ``[0, 1]`` and ``(n, 2)`` float64 ``[boldness, lightness]``
    (``(n, 3)`` with the digit when ``digit=None``).
    The models given are copied, not changed. An evaluator pickles, so it can be
    sent to a worker process (:class:`~coursepkg.lsi.pipeline.EvaluationWorker`).

    Raises:
        ValueError: for a digit outside 0-9, a discriminator without a digit, or an
            unknown precision.
    """

    def __init__(
        self,
        generator: nn.Module,
        classifier: nn.Module,
        *,
        digit: int | None = 8,
        discriminator: nn.Module | None = None,
        precision: str = "float32",
    ) -> None:
        if digit is None and discriminator is not None:
            raise ValueError("discriminator= goes with a single digit, not with digit=None.")
        if digit is not None:
            check_digit(digit)
        precision = resolve_precision(precision)
        self.digit = digit
        self.precision = precision
        self.latent_dim = getattr(generator, "latent_dim", LATENT_DIM)
        self.generator = _in_precision(generator, PRECISIONS[precision])
        self.classifier = _fold_normalisation(fast_pooling(classifier).eval())
        if precision == "bfloat16" and _can_pack():  # each convolution and its pooling, as one product
            convolutions, width = self.classifier.convolutions, 28
            for at in (0, 3):  # LeNet-5: convolution, pooling, ReLU, twice
                conv = convolutions[at]
                convolutions[at], convolutions[at + 1] = _RowConvolution(conv, width=width), nn.Identity()
                width = (width - conv.kernel_size[1] + 1) // 2
        self.discriminator = None if discriminator is None else copy.deepcopy(discriminator).eval()

    def __call__(self, latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            z = _check_latents(latents, self.latent_dim).to(PRECISIONS[self.precision])
            images = (self.generator(z).float() + 1) / 2  # (n, 784) in [0, 1]
            log_probabilities = self.classifier(images.reshape(-1, 1, 28, 28))
            # measures.measures' numbers in one pass; its torch.where costs three times this product here.
            ink = images >= _THRESHOLD
            count = ink.sum(dim=1).float()
            lightness = torch.where(count > 0, (images * ink).sum(dim=1) / count.clamp(min=1), 0.0)
            found = [count, lightness]
            if self.digit is None:
                best, digit = log_probabilities.max(dim=1)
                objectives = best.exp()
                found.append(digit.float())
            else:
                objectives = log_probabilities[:, self.digit].exp()
            if self.discriminator is not None:
                objectives = objectives * realness(self.discriminator, images)
            return objectives.double().numpy(), torch.stack(found, dim=1).double().numpy()


class _Float32Tanh(nn.Module):
    """``tanh`` computed in float32: CPUs have no fast bfloat16 ``tanh``, and the images are float32 anyway."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x.float())


class _PackedLinear(nn.Module):
    """A bfloat16 ``nn.Linear`` whose weight oneDNN lays out for its matrix units once, not at every call.

    A plain bfloat16 ``nn.Linear`` hands oneDNN a row-major weight, which it
    re-lays out into the blocks its AMX kernels read at every call; for the
    generator and a batch of 150 that adds about a third to its time (the LSI
    chapter, section 7). PyTorch's compiler avoids it with the same two
    operators (``torch.ops.mkldnn._reorder_linear_weight`` and
    ``_linear_pointwise``); the results are the same bfloat16 products. The
    packed weight cannot be pickled, so it is made in the process that first
    calls the layer (the pipeline's worker).
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.weight, self.bias = linear.weight, linear.bias
        self._packed: torch.Tensor | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_packed": None}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._packed is None:
            self._packed = torch.ops.mkldnn._reorder_linear_weight(self.weight.detach(), len(x))
        return torch.ops.mkldnn._linear_pointwise(x, self._packed, self.bias, "none", [], "")


class _RowConvolution(nn.Module):
    """A stride-1, unpadded ``nn.Conv2d`` and the 2x2 max pooling after it, as one bfloat16 matrix product.

    Output row ``y`` of every channel depends only on input rows ``y`` to
    ``y + k - 1``; laid side by side they are one row of a matrix, and the
    convolution is that matrix times a ``(k * in_channels * width, channels *
    out_width)`` banded (Toeplitz) matrix made once from the kernels. The product
    does 5.6 (LeNet-5's first convolution) and 2.4 (its second) times the
    convolution's multiplications, but as one large bfloat16 matrix product
    (:class:`_PackedLinear`). On a CPU with AMX, for the first convolution, whose
    one input and six output channels leave PyTorch's float32 kernel's vector
    units mostly idle, it took a third of that kernel's time; for the second, a
    little less. Its results are those of the convolution with
    the inputs and weights rounded to bfloat16, pooled as
    :class:`~coursepkg.lsi.pooling.MaxPool2x2` does (in the product's row-major
    layout, so that only the pooled maps are reordered).

    Args:
        conv: the convolution, stride 1, no padding, dilation 1, one group.
        width: the width of its inputs.
    """

    def __init__(self, conv: nn.Conv2d, *, width: int) -> None:
        super().__init__()
        channels, in_channels, k, _ = conv.weight.shape
        self.k, self.out_width = k, width - k + 1
        banded = torch.zeros(k, in_channels, width, channels, self.out_width)
        weight = conv.weight.detach().permute(2, 1, 3, 0)  # (row i, in channel, column j, channel)
        for x in range(self.out_width):  # the kernel's column j meets input column x + j
            banded[:, :, x : x + k, :, x] = weight
        flat = nn.Linear(k * in_channels * width, channels * self.out_width).to(torch.bfloat16)
        with torch.no_grad():
            flat.weight.copy_(banded.reshape(-1, channels * self.out_width).T)
            flat.bias.copy_(conv.bias.detach().repeat_interleave(self.out_width))
        self.product, self.pool = _PackedLinear(flat), MaxPool2x2()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, in_channels, height, width)`` images to ``(n, channels, out_height // 2, out_width // 2)`` float32."""
        n, in_channels, height, width = x.shape
        out_height = height - self.k + 1
        x = x.to(torch.bfloat16).transpose(1, 2).contiguous()  # (n, height, in_channels, width)
        row = in_channels * width
        rows = x.as_strided((n, out_height, self.k * row), (height * row, row, 1))  # rows y..y+k-1, side by side
        out = self.product(rows.reshape(n * out_height, self.k * row)).reshape(n, out_height, -1, self.out_width)
        pooled = self.pool(out.transpose(1, 2))  # (n, channels, out_height // 2, out_width // 2), still row-major
        return pooled.float().contiguous()


def _can_pack() -> bool:
    """Whether this PyTorch has oneDNN's bfloat16 linear with packed weights (the CPU's kernels for it)."""
    try:
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        return False


def _in_precision(generator: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A copy of ``generator`` in eval mode whose weights are ``dtype``.

    In bfloat16 its ``tanh`` stays float32, and its linear layers are
    :class:`_PackedLinear` where oneDNN offers them.
    """
    copied = copy.deepcopy(generator).eval().to(dtype)
    if dtype != torch.float32:
        pack = dtype == torch.bfloat16 and _can_pack()
        for name, module in list(copied.named_modules()):
            parent, _, child = name.rpartition(".")
            if isinstance(module, nn.Tanh):
                setattr(copied.get_submodule(parent), child, _Float32Tanh())
            elif isinstance(module, nn.Linear) and pack:
                setattr(copied.get_submodule(parent), child, _PackedLinear(module))
    return copied


def _fold_normalisation(classifier: nn.Module) -> nn.Module:
    """LeNet-5 that takes ``[0, 1]`` images: ``(x - mean) / std`` folded into the first convolution.

    ``conv((x - m) / s) = conv_w/s(x) + b - (m / s) * sum(w)``, per output channel.
    """
    mean, std = SCALES["lenet"]
    first = classifier.convolutions[0]
    with torch.no_grad():
        first.bias -= mean / std * first.weight.sum(dim=(1, 2, 3))
        first.weight /= std
    return classifier
