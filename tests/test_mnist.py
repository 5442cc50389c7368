"""coursepkg.mnist.data: loading through torchvision, the shipped fallback, scaling and the course's split."""

from __future__ import annotations

import hashlib
import struct
import warnings
from importlib import resources
from pathlib import Path

import pytest
import torch

from coursepkg.mnist import data as mnist_data

SHIPPED_MD5 = {  # from the README of the shipped digits (and torchvision's own list for t10k)
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "train5k-images-idx3-ubyte.gz": "6057ca5a67cd8660e9946050476aec42",
    "train5k-labels-idx1-ubyte.gz": "f4e4f8640ad2a3b028472f5598c37e79",
}


def _write_idx(folder: Path, prefix: str, images: torch.Tensor, labels: torch.Tensor) -> None:
    """Write images and labels as uncompressed IDX files, the layout torchvision reads."""
    n = len(images)
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 0x803, n, 28, 28) + images.numpy().tobytes()
    )
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.numpy().tobytes())


@pytest.fixture
def fresh_warning(monkeypatch):
    monkeypatch.setattr(mnist_data, "_warned_about_fallback", False)


def test_the_package_ships_the_real_digits_unchanged():
    folder = resources.files("coursepkg.mnist") / "digits"
    for name, md5 in SHIPPED_MD5.items():
        assert hashlib.md5((folder / name).read_bytes()).hexdigest() == md5, name


def test_without_full_mnist_the_shipped_digits_are_used_with_one_warning(tmp_path, fresh_warning):
    with pytest.warns(UserWarning, match="Full MNIST not found.*5,000 training digits.*download=True"):
        train = mnist_data.load_split("train", root=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second load must not warn again
        again = mnist_data.load_split("train", root=tmp_path)
        test = mnist_data.load_split("test", root=tmp_path)  # the full test split ships: no warning at all
    assert train.data.shape == (5000, 28, 28) and train.data.dtype == torch.uint8
    assert torch.equal(torch.bincount(train.targets), torch.full((10,), 500))
    assert torch.equal(again.data, train.data)
    assert test.data.shape == (10000, 28, 28)
    assert not list(tmp_path.rglob("*.partial"))  # the unpack left no half-written file


def test_full_mnist_in_the_data_folder_is_loaded_by_torchvision(tmp_path, fresh_warning):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    train_images = torch.randint(0, 256, (20, 28, 28), generator=g, dtype=torch.uint8)
    _write_idx(raw, "train", train_images, torch.arange(20, dtype=torch.uint8) % 10)
    _write_idx(raw, "t10k", torch.zeros(12, 28, 28, dtype=torch.uint8), torch.zeros(12, dtype=torch.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train = mnist_data.load_split("train", root=tmp_path)
    assert torch.equal(train.data, train_images)


def test_the_data_folder_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSEPKG_DATA", str(tmp_path))
    assert mnist_data.data_dir() == tmp_path
    assert mnist_data.data_dir(tmp_path / "elsewhere") == tmp_path / "elsewhere"


def test_the_course_split_holds_out_the_last_test_digits(tmp_path, fresh_warning):
    with pytest.warns(UserWarning):
        fit, fit_labels = mnist_data.course_split("fit", root=tmp_path)
    heldout, heldout_labels = mnist_data.course_split("heldout", root=tmp_path)
    assert fit.shape == (10000, 1, 28, 28) and heldout.shape == (5000, 1, 28, 28)
    assert fit.dtype == torch.float32 and fit.min() == -1 and fit.max() == 1
    assert len(fit_labels) == 10000 and len(heldout_labels) == 5000
    test = mnist_data.load_split("test", root=tmp_path)
    assert torch.equal(heldout, mnist_data.scale_images(test.data[5000:], "gan"))
    # No held-out image is among the fit images.
    fit_rows = {row.numpy().tobytes() for row in fit.flatten(1)}
    assert not any(row.numpy().tobytes() in fit_rows for row in heldout.flatten(1))


def test_scalings():
    pixels = torch.tensor([[[0, 255] + [0] * 782]], dtype=torch.uint8).reshape(1, 28, 28)
    gan = mnist_data.scale_images(pixels, "gan")
    assert gan.shape == (1, 1, 28, 28) and gan[0, 0, 0, :2].tolist() == [-1.0, 1.0]
    lenet = mnist_data.scale_images(pixels, "lenet")
    assert torch.allclose(lenet[0, 0, 0, :2], torch.tensor([-0.1307 / 0.3081, (1 - 0.1307) / 0.3081]))
    assert torch.allclose(mnist_data.lenet_input(gan.reshape(1, 784)), lenet, atol=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mnist_data.load_split("validation"), "split must be"),
        (lambda: mnist_data.scale_images(torch.zeros(1, 28, 28, dtype=torch.uint8), "imagenet"), "scale must be"),
        (lambda: mnist_data.course_split("all"), "part must be"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
