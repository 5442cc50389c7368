"""`python -m coursepkg`: train, export and benchmark from the command line."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import torch

from coursepkg.__main__ import BENCHMARKS, main
from coursepkg.mnist import data as mnist_data
from coursepkg.mnist import pretrained
from coursepkg.mnist.benchmark import FLOOR, METRICS
from coursepkg.util.provenance import format_provenance
from coursepkg.util.runtime import CPU_FEATURES, cpu
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

#: Short runs of each benchmark, a few seconds each.
SHORT_BENCHMARKS = {
    "modes": ["--variants", "gan", "--datasets", "ring", "--seeds", "1", "--steps", "2"],
    "mnist": ["--cpu-budgets", "1", "2"],
    "lsi": ["--configs", "ours", "--evaluations", "600"],
}


#: What the provenance record of every benchmark holds (coursepkg.util.provenance).
PROVENANCE_FIELDS = {
    "command",
    "date",
    "machine.platform",
    "machine.processor",
    "machine.cpu_features",
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
    assert manifest["generator"]["training"]["command"].endswith("--recipe ours")  # what reproduces it
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


def test_the_mnist_benchmark_prints_and_writes_both_recipes_at_each_budget_beside_the_floor(benchmarks):
    printed, results = benchmarks["mnist"]
    expected = ("LeNet-5 held-out accuracy", "ours", "peer", "shipped", FLOOR, "precision", "coverage", "Fréchet ours")
    for text in expected:
        assert text in printed
    rows = results["rows"]
    assert [(row["generator"], row["cpu_budget_s"]) for row in rows] == [
        ("ours", 1),
        ("peer", 1),
        ("ours", 2),
        ("peer", 2),
        ("shipped", None),
        (FLOOR, None),
    ]
    assert [row["recipe"] for row in rows] == ["ours", "peer", "ours", "peer", "ours", None]
    for row in rows[:4]:  # trained here, side by side, each measured when it passed its budget
        assert row["cpu_budget_s"] <= row["cpu_seconds"] < row["cpu_budget_s"] + 1
        assert row["images_per_cpu_second"] == pytest.approx(row["epochs"] * 10_000 / row["cpu_seconds"])
        assert 0 < row["epochs"] and 1 <= row["digits"] <= 10
    assert rows[2]["epochs"] > rows[0]["epochs"]
    shipped, floor = rows[4], rows[5]
    assert shipped["epochs"] == pretrained.manifest()["models"]["generator"]["training"]["epochs"]
    assert shipped["images_per_cpu_second"] is None and floor["cpu_seconds"] is None
    for row in rows:
        assert all(row[metric] is not None for metric in METRICS)
        assert all(0 <= row[name] <= 1 for name in ("precision", "recall", "coverage"))
    assert floor["digits"] == 10 and floor["precision"] > 0.7 and floor["coverage"] > 0.7
    assert 0 < floor["frechet"] < shipped["frechet"] < rows[2]["frechet"]  # seconds of training draw no digits yet
    assert [c["cpu_budget_s"] for c in results["comparison"]] == [1, 2]
    assert results["comparison"][1]["frechet_ours"] == rows[2]["frechet"]
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


def test_the_record_names_the_cpu_model_and_its_vector_and_matrix_units(benchmarks):
    # The hosts of this course's runs differ fivefold in bfloat16 speed and say "x86_64" alike to
    # platform.processor(): the record takes the model and the units from /proc/cpuinfo.
    info = Path("/proc/cpuinfo").read_text()
    model = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
    flags = set(next(line.split(":", 1)[1] for line in info.splitlines() if line.startswith("flags")).split())
    assert cpu() == (model, [feature for feature in CPU_FEATURES if feature in flags])
    machine = benchmarks["lsi"][1]["provenance"]["machine"]
    assert (machine["processor"], machine["cpu_features"]) == cpu()
    assert f"CPU features: {', '.join(cpu()[1]) or 'none of'}" in format_provenance(benchmarks["lsi"][1]["provenance"])
    # Older records say what they lack; a CPU with none of the units says which it lacks.
    for features, text in ((None, "CPU features: not recorded"), ([], "CPU features: none of avx2, fma, avx512f")):
        record = benchmarks["lsi"][1]["provenance"]
        record = {**record, "machine": {**record["machine"], "cpu_features": features}}
        assert text in format_provenance(record)


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


def _fake_full_mnist(root: Path) -> None:
    """A data folder holding 'the full MNIST' as torchvision lays it out: 200 training and 10,000 test digits."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    real, labels = mnist_data.course_split("heldout", quiet=True)  # real digits, so that LeNet-5 can learn
    pixels = ((real + 1) * 127.5).round().to(torch.uint8).reshape(-1, 28, 28)
    for prefix, count in (("train", 200), ("t10k", 10_000)):
        images, targets = pixels.repeat(2, 1, 1)[:count], labels.repeat(2)[:count].to(torch.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x803, count, 28, 28) + images.numpy().tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, count) + targets.numpy().tobytes())


def test_retrain_mnist_trains_both_models_on_the_full_set_and_ships_them(tmp_path):
    _fake_full_mnist(tmp_path / "data")
    dest, out = tmp_path / "weights", tmp_path / "runs"
    env = {**os.environ, "COURSEPKG_DATA": str(tmp_path / "data")}
    command = ["retrain-mnist", "--out", str(out), "--dest", str(dest), "--lenet-epochs", "1", "--gan-epochs", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "coursepkg", *command, "--threads", "1"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "trained on 5,200 digits" in result.stdout  # the 200 'training' digits and test digits [0, 5000)
    manifest = pretrained.manifest(dest)["models"]
    assert {entry["trained_on"]["digits"] for entry in manifest.values()} == {5200}
    assert manifest["generator"]["training"]["epochs"] == 1
    assert manifest["generator"]["training"]["command"].endswith("--recipe ours")  # the shipped generator's
    for name in pretrained.MODELS:
        pretrained.load(name, folder=dest)


def test_fetch_mnist_says_so_when_the_download_fails(tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(mnist_data, "MNIST", offline)
    assert main(["fetch-mnist", "--root", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "Could not download MNIST" in error and "needs the internet" in error
    assert main(["retrain-mnist", "--out", str(tmp_path / "runs"), "--dest", str(tmp_path / "weights")]) == 2
    assert not (tmp_path / "weights").exists()  # nothing half-shipped
