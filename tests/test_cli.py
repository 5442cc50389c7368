"""`python -m coursepkg`: train, export and benchmark from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime

import pytest
import torch

from coursepkg.__main__ import BENCHMARKS, main
from coursepkg.mnist import pretrained
from coursepkg.mnist.benchmark import FLOOR
from coursepkg.util.provenance import format_provenance
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

#: Short runs of each benchmark, a few seconds each.
SHORT_BENCHMARKS = {
    "modes": ["--variants", "gan", "--datasets", "ring", "--seeds", "1", "--steps", "2"],
    "mnist": ["--cpu-budget", "1"],
    "lsi": ["--configs", "ours", "--evaluations", "600"],
}


#: What the provenance record of every benchmark holds (coursepkg.util.provenance).
PROVENANCE_FIELDS = {
    "command",
    "date",
    "machine.platform",
    "machine.processor",
    "machine.cores",
    "machine.torch_threads",
    "machine.load_average.before",
    "machine.load_average.after",
    "versions.python",
    "versions.torch",
    "versions.numpy",
    "versions.ribs",
    "versions.coursepkg",
}


def _run(*args: str, ok: bool = True, threads: bool = True) -> subprocess.CompletedProcess:
    """``python -m coursepkg ARGS``, on this process's torch threads unless ``threads`` is False or ARGS name them."""
    threads = [] if "--threads" in args or not threads else ["--threads", str(torch.get_num_threads())]
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


@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory) -> dict[str, tuple[str, dict]]:
    """``{name: (what it printed, the JSON it wrote)}`` for a short run of each benchmark."""
    folder = tmp_path_factory.mktemp("benchmarks")
    written = {}
    for name, options in SHORT_BENCHMARKS.items():
        out = folder / f"{name}.json"
        # modes runs one thread per run and has no --threads.
        result = _run("benchmark", name, *options, "--out", str(out), threads=name != "modes")
        written[name] = (result.stdout, json.loads(out.read_text()))
    return written


def test_the_mnist_benchmark_prints_and_writes_both_recipes_beside_the_floor(benchmarks):
    printed, results = benchmarks["mnist"]
    for row in ("LeNet-5 held-out accuracy", "ours", "peer", "shipped", "floor"):
        assert row in printed
    ours, peer, shipped, floor = results["rows"]
    assert [row["generator"] for row in results["rows"]] == ["ours", "peer", "shipped", FLOOR]
    assert [row["recipe"] for row in results["rows"]] == ["ours", "peer", "ours", None]
    for row in (ours, peer):
        assert row["cpu_seconds"] >= 1 and row["images_per_second"] > 0 and 1 <= row["digits"] <= 10
    assert shipped["epochs"] == pretrained.manifest()["models"]["generator"]["training"]["epochs"]
    assert shipped["images_per_second"] is None
    assert 0 < floor["frechet"] < shipped["frechet"] < ours["frechet"]  # a second of training draws no digits yet
    assert [key for key, value in floor.items() if value is not None] == ["generator", "frechet"]
    assert results["lenet_heldout_accuracy"] > 0.98


def _keys(record: dict, prefix: str = "") -> set[str]:
    """The dotted paths of a nested record's fields: ``{"machine.cores", ...}``."""
    keys = set()
    for key, value in record.items():
        keys |= _keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
    return keys


def test_every_benchmark_writes_the_same_provenance_record(benchmarks):
    fields = {name: _keys(results["provenance"]) for name, (_, results) in benchmarks.items()}
    assert fields["modes"] == fields["mnist"] == fields["lsi"] == PROVENANCE_FIELDS
    for name, (printed, results) in benchmarks.items():
        record = results["provenance"]
        assert record["command"].startswith(f"python -m coursepkg benchmark {name} {SHORT_BENCHMARKS[name][0]}")
        # The record comes first, as the chapters print it (its command wrapped to fit a phone).
        assert printed.startswith(format_provenance(record) + "\n\n")
        assert datetime.fromisoformat(record["date"]).tzinfo is not None
        assert len(record["machine"]["load_average"]["before"]) == 3 and None not in record["versions"].values()
    # The results the chapters read carry the same record (older runs' converted, with None where unrecorded).
    for path in sorted((ROOT / "book" / "data").glob("*_benchmark.json")):
        assert _keys(json.loads(path.read_text())["provenance"]) == PROVENANCE_FIELDS, path.name


def test_an_unknown_benchmark_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "speed"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "argument benchmark: invalid choice: 'speed' (choose from" in error
    assert all(name in error for name in BENCHMARKS) and list(BENCHMARKS) == ["modes", "mnist", "lsi"]
    with pytest.raises(SystemExit):
        main(["benchmark"])
    assert "the following arguments are required: benchmark" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["benchmark-mnist", "--cpu-budget", "600"])  # the old command is gone, not kept as an alias
    assert "invalid choice: 'benchmark-mnist'" in capsys.readouterr().err
