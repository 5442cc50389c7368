"""The shipped models: checked against their manifest, and meeting the course's targets on held-out digits."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import torch

from coursepkg.mnist import data as mnist_data
from coursepkg.mnist import pretrained
from coursepkg.mnist.metrics import accuracy, evaluate_generator


@pytest.fixture(scope="module")
def heldout():
    return mnist_data.course_split("heldout")


def test_every_shipped_file_matches_the_manifest():
    entries = pretrained.manifest()["models"]
    assert set(entries) == set(pretrained.MODELS)
    folder = pretrained.weights_dir()
    for name, entry in entries.items():
        assert hashlib.sha256((folder / entry["file"]).read_bytes()).hexdigest() == entry["sha256"], name
        assert entry["trained_on"]["digits"] == 10000 and entry["measured_on"]["digits"] == 5000
        assert entry["trained_on"]["sha256_of_pixels"] != entry["measured_on"]["sha256_of_pixels"]


def test_the_manifest_records_the_digits_the_models_saw_and_were_measured_on():
    entry = pretrained.manifest()["models"]["generator"]
    fit, _ = mnist_data.course_split("fit")
    heldout, _ = mnist_data.course_split("heldout")
    assert entry["trained_on"]["sha256_of_pixels"] == mnist_data.fingerprint(fit)
    assert entry["measured_on"]["sha256_of_pixels"] == mnist_data.fingerprint(heldout)


def test_lenet5_meets_its_accuracy_target_on_heldout_digits(heldout):
    images, labels = heldout
    lenet = pretrained.load("lenet5")
    measured = accuracy(lenet, mnist_data.lenet_input(images), labels)
    assert measured >= 0.985
    assert measured == pytest.approx(pretrained.manifest()["models"]["lenet5"]["metrics"]["heldout_accuracy"], abs=1e-4)


def test_the_generator_covers_every_digit_and_its_metrics_reproduce(heldout):
    images, _ = heldout
    entry = pretrained.manifest()["models"]["generator"]
    generator = pretrained.load("generator")
    report = evaluate_generator(generator, pretrained.load("lenet5"), images, latent_dim=entry["config"]["latent_dim"])
    assert report.coverage.digits_present == 10
    assert report.as_dict()["frechet_lenet"] == pytest.approx(entry["metrics"]["frechet_lenet"], rel=1e-3)
    assert report.as_dict()["class_kl_to_uniform"] == pytest.approx(entry["metrics"]["class_kl_to_uniform"], abs=1e-3)
    with torch.no_grad():
        samples = generator(torch.randn(16, 128))
    assert samples.shape == (16, 784) and samples.abs().max() <= 1


def test_the_discriminator_prefers_real_digits(heldout):
    images, _ = heldout
    discriminator = pretrained.load("discriminator")
    generator = pretrained.load("generator")
    with torch.no_grad():
        real = torch.sigmoid(discriminator(images[:1000])).mean()
        fake = torch.sigmoid(discriminator(generator(torch.randn(1000, 128)))).mean()
    assert real > fake


def test_a_tampered_file_is_refused(tmp_path):
    folder = tmp_path / "weights"
    shutil.copytree(pretrained.weights_dir(), folder)
    data = bytearray((folder / "lenet5.pt").read_bytes())
    data[-100] ^= 0xFF
    (folder / "lenet5.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt or was replaced"):
        pretrained.load("lenet5", folder=folder)
    assert isinstance(pretrained.load("generator", folder=folder), torch.nn.Module)  # the others still load


def test_unknown_names_and_missing_manifests_are_explained(tmp_path):
    with pytest.raises(ValueError, match="the course ships"):
        pretrained.load("inception")
    with pytest.raises(FileNotFoundError, match="manifest.json is missing"):
        pretrained.load("lenet5", folder=tmp_path)
