"""`python -m coursepkg`: train, export and benchmark from the command line."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from coursepkg.mnist import pretrained

pytestmark = pytest.mark.slow


def _run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    threads = [] if "--threads" in args else ["--threads", str(torch.get_num_threads())]
    result = subprocess.run([sys.executable, "-m", "coursepkg", *args, *threads], capture_output=True, text=True)
    assert (result.returncode == 0) == ok, result.stdout[-2000:] + result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    _run("train-lenet", "--out", str(folder / "lenet"), "--epochs", "1")
    _run("train-gan", "--out", str(folder / "gan"), "--epochs", "1")
    return folder


def test_training_writes_checkpoints_and_sample_grids(runs):
    assert (runs / "lenet" / "checkpoint.pt").exists()
    assert (runs / "gan" / "samples" / "epoch_001.png").exists()
    state = torch.load(runs / "gan" / "checkpoint.pt", weights_only=True)
    assert state["epochs"] == 1 and state["recipe"]["latent_dim"] == 128


def test_export_writes_loadable_weights_and_a_manifest(runs):
    dest = runs / "weights"
    result = _run("export", "--gan", str(runs / "gan"), "--lenet", str(runs / "lenet"), "--dest", str(dest))
    assert "heldout_accuracy" in result.stdout and "frechet_lenet" in result.stdout
    manifest = pretrained.manifest(dest)["models"]
    assert manifest["generator"]["training"]["epochs"] == 1
    assert manifest["generator"]["training"]["command"].startswith("python -m coursepkg train-gan")
    assert len(manifest["generator"]["training"]["d_loss_per_epoch"]) == 1
    for name in pretrained.MODELS:
        model = pretrained.load(name, folder=dest)
        assert not model.training
    assert manifest["lenet5"]["metrics"]["heldout_accuracy"] > 0.8  # one epoch already learns digits


def test_export_without_a_checkpoint_says_what_to_do(tmp_path):
    result = _run("export", "--gan", str(tmp_path), "--lenet", str(tmp_path), ok=False)
    assert "train first" in result.stderr


def test_bad_thread_counts_are_refused(tmp_path):
    result = _run("train-lenet", "--out", str(tmp_path), "--threads", "0", ok=False)
    assert "--threads must be at least 1" in result.stderr


def test_the_benchmark_prints_both_recipes_beside_the_floor():
    result = _run("benchmark-mnist", "--cpu-budget", "1")
    for row in ("LeNet-5 held-out accuracy", "ours", "peer", "shipped", "floor"):
        assert row in result.stdout
