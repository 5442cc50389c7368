"""MNIST for the course: loading, scaling, and the split every reported number uses.

Digits are loaded with :class:`torchvision.datasets.MNIST` from a data folder
the user chooses (``root=`` or the ``COURSEPKG_DATA`` environment variable,
default ``~/.cache/coursepkg``). Where that folder has no full MNIST and it
cannot be downloaded, the course falls back to the real digits shipped inside
this package (``coursepkg/mnist/digits``: the official 10,000-image test split
and a 5,000-image subset of the training split), with one warning that says so.

The course's split, used by the shipped models and by every number the book reports:

* ``"fit"``: the training split (the shipped 5,000 digits, or all 60,000 when
  present) plus the first 5,000 digits of the test split;
* ``"heldout"``: the last 5,000 digits of the test split, which no shipped model saw.

Images come out as float32 tensors ``(n, 1, 28, 28)``, scaled for the GAN
(``[-1, 1]``, the range of the generator's tanh) or for LeNet-5 (mean 0.1307,
std 0.3081, the usual MNIST normalisation).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import warnings
from importlib import resources
from pathlib import Path

import torch
from torchvision.datasets import MNIST

__all__ = [
    "HELDOUT_START",
    "SCALES",
    "course_split",
    "data_dir",
    "describe_source",
    "fetch_full_mnist",
    "fingerprint",
    "has_full_mnist",
    "lenet_input",
    "load_split",
    "scale_images",
]

#: ``(mean, std)`` per scaling: ``(pixel / 255 - mean) / std``.
SCALES: dict[str, tuple[float, float]] = {"gan": (0.5, 0.5), "lenet": (0.1307, 0.3081)}
#: Test-split digits from this index on are held out from every shipped model.
HELDOUT_START = 5000

_SHIPPED = {  # torchvision's file name -> (shipped file, md5 of the shipped gzip)
    "train-images-idx3-ubyte": ("train5k-images-idx3-ubyte.gz", "6057ca5a67cd8660e9946050476aec42"),
    "train-labels-idx1-ubyte": ("train5k-labels-idx1-ubyte.gz", "f4e4f8640ad2a3b028472f5598c37e79"),
    "t10k-images-idx3-ubyte": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
_warned_about_fallback = False


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$COURSEPKG_DATA``, else ``~/.cache/coursepkg``."""
    if root is not None:
        return Path(root).expanduser()
    return Path(os.environ.get("COURSEPKG_DATA", "~/.cache/coursepkg")).expanduser()


def _shipped_root(root: Path) -> Path:
    """Unpack the shipped digits into ``root/shipped/MNIST/raw`` (once), in torchvision's layout."""
    raw = root / "shipped" / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    package = resources.files("coursepkg.mnist") / "digits"
    for name, (shipped, md5) in _SHIPPED.items():
        target = raw / name
        if target.exists():
            continue
        data = (package / shipped).read_bytes()
        if hashlib.md5(data).hexdigest() != md5:
            raise RuntimeError(
                f"The shipped file coursepkg/mnist/digits/{shipped} is corrupt (md5 mismatch); reinstall coursepkg."
            )
        # Write beside the target, then rename: an interrupted unpack leaves no half file.
        partial = target.with_suffix(".partial")
        partial.write_bytes(gzip.decompress(data))
        partial.replace(target)
    return raw.parent.parent


def _caller_outside_package() -> int:
    """The ``stacklevel`` that makes a warning point at the first caller outside coursepkg."""
    package = str(Path(__file__).parents[1])  # the coursepkg folder
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def has_full_mnist(root: str | os.PathLike | None = None) -> bool:
    """Whether the data folder (see :func:`data_dir`) holds the full MNIST, all 70,000 digits."""
    try:
        MNIST(str(data_dir(root)), train=True)
    except RuntimeError:  # torchvision: "Dataset not found"
        return False
    return True


def fetch_full_mnist(root: str | os.PathLike | None = None) -> Path:
    """Download all 70,000 MNIST digits into the data folder with torchvision (``python -m coursepkg fetch-mnist``).

    Args:
        root: data folder (see :func:`data_dir`).

    Returns:
        The data folder, which then holds ``MNIST/raw``: every command and lab uses the full set.

    Raises:
        RuntimeError: when the download fails (no internet, a mirror down), saying what to do.
    """
    folder = data_dir(root)
    for train in (True, False):
        try:
            MNIST(str(folder), train=train, download=True)
        except (RuntimeError, OSError) as error:  # torchvision tries every mirror, then raises
            raise RuntimeError(
                f"Could not download MNIST into {folder}: {error}. This needs the internet; or copy the folder "
                "MNIST/raw from a machine that has it into the data folder (or set COURSEPKG_DATA to its parent)."
            ) from error
    return folder


def describe_source(root: str | os.PathLike | None = None) -> str:
    """Where this machine's digits come from, in a sentence without paths (the MNIST lab prints it).

    Used by the MNIST and LSI labs (``book/lab_mnist_gan.ipynb``, ``book/lab_lsi.ipynb``).
    """
    if has_full_mnist(root):
        return "Digits: the full MNIST from your data folder (60,000 training and 10,000 test digits)."
    return (
        "Digits: the real MNIST digits shipped with coursepkg, 5,000 of the 60,000 training digits\n"
        "(500 per class) and the official 10,000 test digits. The full set is not in your data\n"
        "folder; with internet access, `python -m coursepkg fetch-mnist` puts it there."
    )


def load_split(
    split: str, *, root: str | os.PathLike | None = None, download: bool = False, quiet: bool = False
) -> MNIST:
    """Load an official MNIST split with torchvision, or the shipped digits when it is missing.

    Args:
        split: ``"train"`` or ``"test"``.
        root: data folder holding ``MNIST/raw`` (see :func:`data_dir`).
        download: let torchvision download the full data set into ``root``
            (needs the internet).
        quiet: no warning when the shipped digits stand in for the full set (the caller says so:
            :func:`describe_source`).

    Returns:
        A :class:`torchvision.datasets.MNIST` whose ``.data`` is ``(n, 28, 28)``
        uint8 and ``.targets`` is ``(n,)`` int64: 60,000 or 10,000 digits, or the
        5,000 shipped training digits (500 per class) with a warning.

    Raises:
        ValueError: for another ``split``.
    """
    global _warned_about_fallback
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    folder = data_dir(root)
    train = split == "train"
    try:
        return MNIST(str(folder), train=train, download=download)
    except RuntimeError:  # torchvision: "Dataset not found. You can use download=True ..."
        pass
    if train and not quiet and not _warned_about_fallback:
        _warned_about_fallback = True
        warnings.warn(
            f"Full MNIST not found in {folder / 'MNIST' / 'raw'}: using the 5,000 training digits shipped with "
            "coursepkg (500 per class) and the official 10,000-digit test split. To train on all 60,000 digits, "
            f"run torchvision.datasets.MNIST({str(folder)!r}, download=True) once on a machine with internet "
            "access, or set COURSEPKG_DATA to a folder that holds MNIST/raw.",
            stacklevel=_caller_outside_package(),
        )
    return MNIST(str(_shipped_root(folder)), train=train)


def scale_images(pixels: torch.Tensor, scale: str) -> torch.Tensor:
    """Turn uint8 pixels ``(n, 28, 28)`` into float32 ``(n, 1, 28, 28)`` scaled for ``"gan"`` or ``"lenet"``."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}, got {scale!r}.")
    mean, std = SCALES[scale]
    return ((pixels.float() / 255 - mean) / std).unsqueeze(1)


def lenet_input(images: torch.Tensor) -> torch.Tensor:
    """Rescale GAN-range images (``[-1, 1]``, shape ``(n, 784)`` or ``(n, 1, 28, 28)``) for LeNet-5.

    Returns:
        ``(n, 1, 28, 28)`` float32 with LeNet-5's normalisation, so generated
        digits can be classified exactly like loaded ones.
    """
    mean, std = SCALES["lenet"]
    return (((images + 1) / 2 - mean) / std).reshape(-1, 1, 28, 28)


def course_split(
    part: str, *, scale: str = "gan", root: str | os.PathLike | None = None, quiet: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The digits of the course's ``"fit"`` or ``"heldout"`` part, in memory.

    Args:
        part: ``"fit"`` (training split + test digits ``[0, 5000)``) or
            ``"heldout"`` (test digits ``[5000, 10000)``).
        scale: ``"gan"`` for ``[-1, 1]`` or ``"lenet"`` for LeNet-5's normalisation.
        root: data folder (see :func:`data_dir`).
        quiet: no warning when the shipped digits stand in for the full set (see :func:`load_split`).

    Returns:
        ``(images, labels)``: ``(n, 1, 28, 28)`` float32 and ``(n,)`` int64.
    """
    if part not in ("fit", "heldout"):
        raise ValueError(f"part must be 'fit' or 'heldout', got {part!r}.")
    test = load_split("test", root=root)
    if part == "heldout":
        pixels, labels = test.data[HELDOUT_START:], test.targets[HELDOUT_START:]
    else:
        train = load_split("train", root=root, quiet=quiet)
        pixels = torch.cat([train.data, test.data[:HELDOUT_START]])
        labels = torch.cat([train.targets, test.targets[:HELDOUT_START]])
    return scale_images(pixels, scale), labels


def fingerprint(images: torch.Tensor) -> str:
    """sha256 of a tensor's bytes: records exactly which digits a model saw."""
    return hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()
