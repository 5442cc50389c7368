"""coursepkg.lsi: measures, evaluation, the search, archive look-ups, and `python -m coursepkg benchmark lsi`."""

import json
import multiprocessing

import numpy as np
import pytest
import torch

from coursepkg.__main__ import main
from coursepkg.lsi import archive as lsi_archive
from coursepkg.lsi import benchmark as lsi_benchmark
from coursepkg.lsi import measures as lsi_measures
from coursepkg.lsi import plots as lsi_plots
from coursepkg.lsi import pooling as lsi_pooling
from coursepkg.lsi import search as lsi_search
from coursepkg.mnist import pretrained

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = lsi_search.LSIConfig("tiny", cells=(20, 10), emitters=2, batch_size=8, es="sep_cma_es", dtype="float32")


@pytest.fixture(scope="module")
def models():
    return {name: pretrained.load(name) for name in ("generator", "discriminator", "lenet5")}


@pytest.fixture(scope="module")
def tiny_run(models):
    return lsi_search.run_lsi(models["generator"], models["lenet5"], iterations=30, config=TINY, seed=3, log_every=10)


def test_measures_of_hand_made_images():
    images = torch.zeros(4, 1, 28, 28)
    images[1, 0, :2, :] = 1.0  # 56 white pixels
    images[2, 0, 5, :10] = 0.5  # 10 pixels exactly at the threshold count
    images[2, 0, 6, :10] = 0.49  # ... and 10 just below do not
    images[3] = 0.75  # everything
    assert lsi_measures.boldness(images).tolist() == [0, 56, 10, 784]
    assert lsi_measures.lightness(images).tolist() == [0.0, 1.0, 0.5, 0.75]  # the empty image: 0, not NaN
    mixed = torch.zeros(1, 784)
    mixed[0, :3] = torch.tensor([0.6, 0.8, 1.0])
    found = lsi_measures.measures(mixed)
    assert found.dtype == torch.float32 and found.shape == (1, 2)
    assert found[0, 0].item() == 3 and found[0, 1].item() == pytest.approx(0.8)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: lsi_measures.boldness(torch.zeros(2, 28, 28)), ValueError, r"shape \(n, 1, 28, 28\) or \(n, 784\)"),
        (lambda: lsi_measures.lightness(torch.zeros(2, 784, dtype=torch.uint8)), TypeError, "float torch.Tensor"),
        (lambda: lsi_measures.digit_probability(torch.nn.Identity(), torch.zeros(1, 784), 10), ValueError, "0 to 9"),
        (lambda: lsi_measures.evaluate(np.zeros((2, 64)), None, None), ValueError, r"shape \(n, 128\)"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_evaluate_matches_a_per_image_loop(models):
    generator, classifier = models["generator"], models["lenet5"]
    latents = np.random.default_rng(0).normal(size=(5, 128))
    objectives, found = lsi_measures.evaluate(latents, generator, classifier, digit=3)
    assert objectives.shape == (5,) and found.shape == (5, 2)
    assert objectives.dtype == found.dtype == np.float64
    with torch.no_grad():
        for latent, objective, (bold, light) in zip(latents, objectives, found):
            image = (generator(torch.tensor(latent[None], dtype=torch.float32)) + 1) / 2
            normalised = ((image - 0.1307) / 0.3081).reshape(1, 1, 28, 28)
            assert objective == pytest.approx(classifier(normalised)[0, 3].exp().item(), abs=1e-6)
            ink = image[image >= 0.5]
            assert bold == len(ink) and light == pytest.approx(ink.mean().item() if len(ink) else 0.0, abs=1e-6)
    assert ((0 <= objectives) & (objectives <= 1)).all()
    realistic, _ = lsi_measures.evaluate(latents, generator, classifier, digit=3, discriminator=models["discriminator"])
    assert (realistic <= objectives + 1e-12).all()  # times a probability
    best, with_digit = lsi_measures.evaluate_digits(latents, generator, classifier)
    assert with_digit.shape == (5, 3) and set(with_digit[:, 2]) <= set(range(10))
    assert (best >= objectives - 1e-12).all()  # the predicted digit's probability is the largest


def test_a_short_run_fills_cells_and_is_reproducible(tiny_run, models):
    history = tiny_run.history
    assert [c.iterations for c in history] == [10, 20, 30]
    assert history[-1].evaluations == 30 * TINY.evaluations_per_iteration
    assert 0 < history[0].cells <= history[-1].cells == len(tiny_run.archive)
    assert 0 < history[-1].best <= 1 and history[-1].qd_score > 0
    again = lsi_search.run_lsi(models["generator"], models["lenet5"], iterations=30, config=TINY, seed=3, log_every=10)
    assert np.array_equal(again.archive.data("solution"), tiny_run.archive.data("solution"))
    other = lsi_search.run_lsi(models["generator"], models["lenet5"], iterations=30, config=TINY, seed=4, log_every=10)
    assert not np.array_equal(other.archive.data("solution"), tiny_run.archive.data("solution"))
    with pytest.raises(ValueError, match="iterations must be at least 1"):
        lsi_search.run_lsi(models["generator"], models["lenet5"], iterations=0, config=TINY)
    with pytest.raises(ValueError, match="0 to 9"):
        lsi_search.run_lsi(models["generator"], models["lenet5"], iterations=1, digit=-1, config=TINY)


def test_cma_mae_and_all_digit_searches_run(models):
    mae = lsi_search.LSIConfig(
        "mae", cells=(20, 10), emitters=1, batch_size=8, ranker="imp", learning_rate=0.1, threshold_min=0.0
    )
    result = lsi_search.run_lsi(models["generator"], models["lenet5"], iterations=5, config=mae, seed=0)
    assert result.archive.learning_rate == 1.0 and len(result.archive) > 0  # the plain result archive
    with pytest.raises(ValueError, match="one measure range each"):
        lsi_search.run_lsi(models["generator"], models["lenet5"], digit=None, iterations=1, config=TINY)
    digits = lsi_search.LSIConfig("digits", cells=(10, 5, 10), emitters=1, batch_size=16)
    archive = lsi_search.run_lsi(models["generator"], models["lenet5"], digit=None, iterations=5, config=digits).archive
    found = np.rint(archive.data("measures")[:, 2]).astype(int)
    sliced = [lsi_archive.digit_slice(archive, digit) for digit in range(10)]
    assert [len(s) for s in sliced] == [int((found == d).sum()) for d in range(10)]


def test_discriminator_archive_has_exactly_the_same_cells(tiny_run, models):
    rescored = lsi_archive.discriminator_archive(
        tiny_run.archive, models["generator"], models["discriminator"], batch_size=7
    )
    assert np.array_equal(np.sort(rescored.data("index")), np.sort(tiny_run.archive.data("index")))
    scores = rescored.data("objective")
    _, elites = tiny_run.archive.retrieve(rescored.data("measures"))
    with torch.inference_mode():
        expected = lsi_measures.realness(
            models["discriminator"], lsi_measures.decode(elites["solution"], models["generator"])
        )
    assert np.allclose(scores, expected.numpy(), atol=1e-6)


def test_elite_lookup_returns_the_elite_of_each_requested_cell(tiny_run):
    archive = tiny_run.archive
    index, solutions, measures = archive.data(["index", "solution", "measures"], return_type="tuple")
    pick = np.arange(0, len(index), 3)
    found, elites = lsi_archive.elites_at(archive, measures[pick])
    assert np.array_equal(found, index[pick]) and np.array_equal(elites, solutions[pick])
    empty = np.setdiff1d(np.arange(archive.cells), index)[:4]
    centres = archive.lower_bounds + (archive.int_to_grid_index(empty) + 0.5) * archive.interval_size / archive.dims
    found, elites = lsi_archive.elites_at(archive, centres)
    assert set(found) <= set(index)  # empty cells fall back to occupied ones
    for cell, elite in zip(found, elites):
        assert np.array_equal(elite, solutions[index == cell][0])
    with pytest.raises(ValueError, match=r"shape \(k, 2\)"):
        lsi_archive.elites_at(archive, np.zeros((3, 3)))


def test_fast_pooling_gives_the_same_log_probabilities_without_changing_the_model(models):
    lenet = models["lenet5"]
    fast = lsi_pooling.fast_pooling(lenet)
    assert sum(isinstance(m, lsi_pooling.MaxPool2x2) for m in fast.modules()) == 2
    assert not any(isinstance(m, lsi_pooling.MaxPool2x2) for m in lenet.modules())
    images = torch.rand(16, 1, 28, 28)
    with torch.inference_mode():
        assert torch.equal(
            lsi_measures.digit_probability(fast, images, 8), lsi_measures.digit_probability(lenet, images, 8)
        )
    odd = torch.randn(2, 3, 7, 9)
    assert torch.equal(lsi_pooling.MaxPool2x2()(odd), torch.nn.MaxPool2d(2)(odd))


def test_judge_elites_scores_each_elite_with_both_networks(tiny_run, models):
    generator, lenet, discriminator = models["generator"], models["lenet5"], models["discriminator"]
    probability, real = lsi_archive.judge_elites(
        tiny_run.archive, generator, lenet, discriminator, digit=8, batch_size=7
    )
    assert probability.shape == real.shape == (len(tiny_run.archive),)
    images = lsi_measures.decode(tiny_run.archive.data("solution"), generator)
    with torch.inference_mode():
        assert np.allclose(probability, lsi_measures.digit_probability(lenet, images, 8).numpy(), atol=1e-6)
        assert np.allclose(real, lsi_measures.realness(discriminator, images).numpy(), atol=1e-6)
    assert np.allclose(probability, tiny_run.archive.data("objective"), atol=1e-6)  # the search's own objective
    rescored = lsi_archive.discriminator_archive(tiny_run.archive, generator, discriminator)
    assert np.isclose(np.sort(real), np.sort(rescored.data("objective")), atol=1e-6).all()
    with pytest.raises(ValueError, match="0 to 9"):
        lsi_archive.judge_elites(tiny_run.archive, generator, lenet, discriminator, digit=10)


def test_measure_quantiles_and_cells_per_digit(tiny_run):
    bold = tiny_run.archive.data("measures")[:, 0]
    values = lsi_archive.measure_quantiles(tiny_run.archive, 0, 5)
    assert values.shape == (5,) and np.all(np.diff(values) >= 0)
    assert values[0] == pytest.approx(np.quantile(bold, 0.05)) and values[-1] == pytest.approx(np.quantile(bold, 0.95))
    archive = lsi_search.make_scheduler(
        lsi_search.LSIConfig("digits", cells=(4, 2, 10)), seed=0, ranges=[(0, 784), (0.5, 1), (-0.5, 9.5)]
    ).result_archive
    assert lsi_archive.cells_per_digit(archive).tolist() == [0] * 10
    measures = np.array([[100, 0.9, 3], [500, 0.9, 3], [100, 0.6, 3], [100, 0.9, 7], [100, 0.9, 3]])
    archive.add(np.zeros((5, 128)), np.full(5, 0.5), measures)  # the last one lands in the first one's cell
    assert lsi_archive.cells_per_digit(archive).tolist() == [0, 0, 0, 3, 0, 0, 0, 1, 0, 0]
    with pytest.raises(ValueError, match="3D archive"):
        lsi_archive.cells_per_digit(tiny_run.archive)
    with pytest.raises(ValueError, match="empty"):
        lsi_archive.measure_quantiles(lsi_archive.digit_slice(archive, 0), 0, 3)


def test_figures_are_titled_and_labelled(tiny_run, models):
    fig = lsi_plots.plot_heatmap(tiny_run.archive, title="eights", colorbar_label="P(8)")
    ax = fig.axes[0]
    assert ax.get_title() == "eights" and "boldness" in ax.get_xlabel() and "lightness" in ax.get_ylabel()
    assert fig.axes[1].get_ylabel() == "P(8)"
    fig = lsi_plots.plot_elites(
        tiny_run.archive, models["generator"], boldness_values=[50, 100, 150], lightness_values=[0.7, 0.9], title="grid"
    )
    assert fig.axes[0].get_title() == "grid" and fig.axes[0].get_xlabel() == "boldness"
    fig = lsi_plots.plot_heatmap(tiny_run.archive, title="marked", marks={"typical": 150.0})
    (line,) = fig.axes[0].get_lines()
    assert line.get_xdata()[0] == 150 and [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["typical"]
    fig = lsi_plots.plot_heatmaps({"first": tiny_run.archive, "second": tiny_run.archive}, title="both", vmax=0.5)
    heatmaps = [ax for ax in fig.axes if ax.get_title()]
    assert fig.get_suptitle() == "both" and [ax.get_title() for ax in heatmaps] == ["first", "second"]
    assert all("boldness" in ax.get_xlabel() and "lightness" in ax.get_ylabel() for ax in heatmaps)
    assert heatmaps[0].get_xlim()[1] < 784  # fitted to the elites
    images = torch.rand(3, 784)
    fig = lsi_plots.plot_scored_digits(
        images, boldness=[1, 2, 3], lightness=[0.5, 0.6, 0.7], probability=[0.1, 0.2, 0.3], digit=8, title="scored"
    )
    assert fig.get_suptitle() == "scored" and fig.axes[2].get_title() == "b 3, ℓ 0.70\nP(8) 0.30"


def test_cells_per_digit_is_a_labelled_bar_chart():
    counts = [294, 136, 273, 233, 246, 249, 233, 210, 282, 255]
    fig = lsi_plots.plot_cells_per_digit(counts, title="cells per digit", capacity=1250)
    ax = fig.axes[0]
    assert ax.get_title() == "cells per digit"
    assert "digit" in ax.get_xlabel() and ax.get_ylabel() == "cells filled (of 1,250)"
    assert [bar.get_height() for bar in ax.patches] == counts
    assert [text.get_text() for text in ax.texts] == [f"{count:,}" for count in counts]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == [str(digit) for digit in range(10)]


def test_digit_styles_show_every_digit_along_a_measure(models):
    digits = lsi_search.LSIConfig("digits", cells=(10, 5, 10), emitters=2, batch_size=32, es="sep_cma_es")
    archive = lsi_search.run_lsi(models["generator"], models["lenet5"], digit=None, iterations=8, config=digits).archive
    slices = [lsi_archive.digit_slice(archive, digit) for digit in range(10)]
    slices = [piece for piece in slices if len(piece)]
    fig = lsi_plots.plot_digit_styles(slices, models["generator"], measure=1, count=4, title="styles")
    ax = fig.axes[0]
    assert ax.get_title() == "styles" and ax.get_xlabel() == "percentile of the digit's lightness"
    assert len(ax.get_yticklabels()) == len(slices) and [t.get_text() for t in ax.get_xticklabels()][0] == "5%"


def _saved_run(name: str, engine: str, cells: tuple[int, ...], seconds: float, precision: str = "float32") -> dict:
    history = [
        {"evaluations": e, "cells": c, "qd_score": c * 0.9, "iterations": e // 150, "best": 1.0, "seconds": e / 1e4}
        for e, c in zip((250_000, 500_000, 1_500_000), cells)
    ]
    breakdown = {"networks": seconds * 0.6, "ask": 10.0, "archive": 5.0, "tell": 5.0, "wait": 3.0}
    if engine == "tutorial":
        breakdown = {"networks": seconds * 0.6, "search": seconds * 0.4, "wait": seconds * 0.6}
    return {
        "name": name,
        "engine": engine,
        "config": {"precision": precision},
        "seconds": seconds,
        "breakdown": breakdown,
        "history": history,
    }


def test_benchmark_rows_and_figure_read_the_saved_results():
    results = {
        "runs": [
            _saved_run("tutorial", "tutorial", (5_000, 7_500, 11_000), 300.0),
            _saved_run("ours", "course", (10_000, 15_000, 22_000), 120.0, "bfloat16"),
        ],
        "seed_figures": lsi_benchmark.SEED_FIGURES,
        "evaluations": 1_500_000,
        "seed": 0,
        "flop_per_evaluation": 3_000_000,
        "gemm": {
            when: {"float32 1 thread": 100.0, "float32 2 threads": 200.0, "bfloat16 1 thread": 400.0}
            for when in ("before", "after")
        },
        "provenance": {"machine": {"torch_threads": 2}},
    }
    assert lsi_benchmark.speed_rows(results) == [
        {"search": "tutorial", "total s": 300, "× tutorial": 1.0, "ms / 150": 30.0},
        {"search": "ours", "total s": 120, "× tutorial": 0.4, "ms / 150": 12.0},
    ]
    # 1.5 M evaluations of 3 MFLOP in 180 s (tutorial) and 72 s (ours): 25 and 62.5 GFLOP/s.
    assert lsi_benchmark.breakdown_rows(results) == [
        {"search": "tutorial", "networks": 180, "pyribs": 120, "waiting": 180, "GFLOP/s": 25, "% of GEMM": 0.12},
        {"search": "ours", "networks": 72, "pyribs": 20, "waiting": 3, "GFLOP/s": 62, "% of GEMM": 0.16},
    ]
    assert lsi_benchmark.coverage_rows(results) == [
        {"search": "tutorial", "0.5 M": 7_500, "1.5 M": 11_000, "to 21,083": None},
        {"search": "ours", "0.5 M": 15_000, "1.5 M": 22_000, "to 21,083": 1.5},
    ]
    fig = lsi_plots.plot_benchmark_coverage(results, title="coverage", this_run=(225_000, 8_000))
    ax = fig.axes[0]
    assert ax.get_title() == "coverage" and "evaluations" in ax.get_xlabel() and "cells" in ax.get_ylabel()
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["tutorial, 300 s", "ours, 120 s", "tutorial on a GPU, 451 s", "this chapter's run"]


def test_flop_count_and_gemm_ceiling(models):
    # Generator 2 (128*256 + 256*512 + 512*1024 + 1024*784); LeNet-5: two convolutions and three layers.
    generator = 2 * (128 * 256 + 256 * 512 + 512 * 1024 + 1024 * 784)
    lenet = 2 * (6 * 25 * 24 * 24 + 16 * 150 * 8 * 8 + 256 * 120 + 120 * 84 + 84 * 10)
    assert lsi_benchmark.flop_per_evaluation(models["generator"], models["lenet5"]) == generator + lenet
    assert lsi_benchmark.gemm_peak(dtype=torch.float32, threads=1, size=256, seconds=0.05) > 1.0
    assert torch.get_num_threads() == 1  # restored


@pytest.mark.parametrize("auto", ["bfloat16", "float32"])  # OURS on a CPU with bfloat16 units, and on one without
def test_benchmark_command_prints_its_tables_and_writes_json(capsys, tmp_path, monkeypatch, auto):
    tiny_seed = lsi_search.LSIConfig("seed tiny", cells=(20, 10), emitters=2, batch_size=8)
    tiny_ours = lsi_search.replace(lsi_search.OURS, name="ours tiny", cells=(20, 10), batch_size=8)
    tiny_float32 = lsi_search.replace(tiny_ours, name="float32 tiny", precision="float32")
    monkeypatch.setitem(lsi_benchmark.CONFIGS, "seed", lsi_benchmark.Contender(tiny_seed, "tutorial"))
    monkeypatch.setitem(lsi_benchmark.CONFIGS, "ours", lsi_benchmark.Contender(tiny_ours, "course"))
    monkeypatch.setitem(lsi_benchmark.CONFIGS, "float32", lsi_benchmark.Contender(tiny_float32, "course"))
    monkeypatch.setattr(lsi_benchmark, "gemm_peak", lambda **kwargs: 100.0)
    resolve = {"auto": auto, "float32": "float32"}
    monkeypatch.setattr(lsi_benchmark, "resolve_precision", resolve.get)
    out = tmp_path / "lsi.json"
    assert main(["benchmark", "lsi", "--evaluations", "400", "--threads", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for text in ("× tutorial", "networks", "% of GEMM", "seed tiny", "ours tiny", "to 21,083", "451 s"):
        assert text in printed
    results = json.loads(out.read_text())
    # The runs record the precision they ran in; the GEMM ceilings are measured in those precisions only.
    precisions = [run["config"]["precision"] for run in results["runs"]]
    assert precisions == ["float32", auto, "float32"][: len(precisions)]
    assert set(results["gemm"]["before"]) == {"float32 1 thread"} | {f"{auto} 1 thread"}
    if auto == "float32":  # ours is the float32 search: it runs once, and there is no precision to check
        assert results["not_run"] == {"float32": "ours"} and results["precision_check"] is None
        assert [run["name"] for run in results["runs"]] == ["seed tiny", "ours tiny"]
        assert "float32: not run, the same search as ours on this CPU" in printed and "same cell" not in printed
        return
    assert results["not_run"] == {} and "same cell" in printed
    assert results["provenance"]["command"].endswith("benchmark lsi --evaluations 400 --threads 1 --out " + str(out))
    assert results["provenance"]["machine"]["torch_threads"] == 1
    assert [(run["name"], run["engine"], run["config"]["es"]) for run in results["runs"]] == [
        ("seed tiny", "tutorial", "cma_es"),
        ("ours tiny", "course", "lean_cma_es"),
        ("float32 tiny", "course", "lean_cma_es"),
    ]
    # 400 evaluations: 25 iterations of the tutorial's 16, 10 of ours' 40.
    assert [run["history"][-1]["evaluations"] for run in results["runs"]] == [400, 400, 400]
    assert 0 < results["runs"][0]["breakdown"]["networks"] < results["runs"][0]["seconds"]
    ours = results["runs"][1]["breakdown"]
    assert set(ours) == {"networks", "networks_here", "ask", "archive", "tell", "wait"}
    assert 0 < ours["networks_here"] < ours["networks"]  # a quarter of the solutions evaluated by the search's process
    checked = results["precision_check"]
    assert checked["elites"] > 0 and 0 < checked["same_cell"] <= 1 and checked["objective_error_max"] < 0.5
    assert results["competing_job"] is None and results["flop_per_evaluation"] > 3_000_000
    assert all(run["gemm_at_start"] == results["gemm"]["before"] for run in results["runs"])  # the stub's 100.0
    assert "at the start of ours tiny: float32 1 thread 100" in printed
    with pytest.raises(SystemExit):
        main(["benchmark", "lsi", "--configs", "seed,mine"])
    assert "unknown configuration ['mine']" in capsys.readouterr().err


def test_benchmark_beside_a_competing_job_stops_it_afterwards(monkeypatch):
    tiny_seed = lsi_search.LSIConfig("seed tiny", cells=(20, 10), emitters=2, batch_size=8)
    monkeypatch.setitem(lsi_benchmark.CONFIGS, "seed", lsi_benchmark.Contender(tiny_seed, "tutorial"))
    monkeypatch.setattr(lsi_benchmark, "gemm_peak", lambda **kwargs: 100.0)
    results = lsi_benchmark.run_benchmark(["seed"], evaluations=160, threads=1, competing_job=True)
    assert "one core" in results["competing_job"] and results["precision_check"] is None
    assert multiprocessing.active_children() == []
