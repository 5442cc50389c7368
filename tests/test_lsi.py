"""coursepkg.lsi: measures, evaluation, the search, archive look-ups, and `python -m coursepkg benchmark lsi`."""

import json

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


def test_figures_are_titled_and_labelled(tiny_run, models):
    fig = lsi_plots.plot_heatmap(tiny_run.archive, title="eights", colorbar_label="P(8)")
    ax = fig.axes[0]
    assert ax.get_title() == "eights" and "boldness" in ax.get_xlabel() and "lightness" in ax.get_ylabel()
    assert fig.axes[1].get_ylabel() == "P(8)"
    fig = lsi_plots.plot_elites(
        tiny_run.archive, models["generator"], boldness_values=[50, 100, 150], lightness_values=[0.7, 0.9], title="grid"
    )
    assert fig.axes[0].get_title() == "grid" and fig.axes[0].get_xlabel() == "boldness"


def test_benchmark_command_prints_its_table_and_writes_json(capsys, tmp_path, monkeypatch):
    tiny_seed = lsi_search.LSIConfig("seed tiny", cells=(20, 10), emitters=2, batch_size=8)
    monkeypatch.setitem(lsi_benchmark.CONFIGS, "seed", lsi_benchmark.Contender(tiny_seed, False))
    out = tmp_path / "lsi.json"
    assert main(["benchmark", "lsi", "--iterations", "4", "--threads", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for text in (
        "ms/it",
        "evaluations",
        "QD score",
        "seed tiny",
        lsi_search.OURS.name,
        lsi_search.OURS_DIAGONAL.name,
        "21,083",
        "451 s",
    ):
        assert text in printed
    results = json.loads(out.read_text())
    assert results["provenance"]["command"].endswith("benchmark lsi --iterations 4 --threads 1 --out " + str(out))
    assert results["provenance"]["machine"]["torch_threads"] == 1
    assert [(run["name"], run["fast_pooling"], run["config"]["es"]) for run in results["runs"]] == [
        ("seed tiny", False, "cma_es"),
        (lsi_search.OURS.name, True, "cma_es"),
        (lsi_search.OURS_DIAGONAL.name, True, "sep_cma_es"),
    ]
    assert results["runs"][1]["history"][-1]["evaluations"] == 4 * lsi_search.OURS.evaluations_per_iteration
    assert 0 < results["runs"][0]["evaluate_seconds"] < results["runs"][0]["seconds"]
    with pytest.raises(SystemExit):
        main(["benchmark", "lsi", "--configs", "seed,mine"])
    assert "unknown configuration ['mine']" in capsys.readouterr().err
