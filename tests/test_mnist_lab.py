"""The MNIST lab as its readers see it, without running it: its numbers are the saved measurements.

The lab's prose quotes the MNIST benchmark (book/data/mnist_benchmark.json) and the sweep its short run
was chosen from (book/data/mnist_lab_sweep.jsonl): rerun either and these tests say which figures of the
text went stale. The released page (book/lab_mnist_gan.ipynb, made by ``make release``) carries what the
short run drew on the machine that released it.
"""

from __future__ import annotations

import json
import re

import nbformat
import pandas as pd
import pytest

from coursepkg.mnist import pretrained
from coursepkg.mnist.benchmark import FLOOR, METRICS
from coursepkg.mnist.train import RECIPES, GANRecipe
from tests.conftest import ROOT

SOLUTION = nbformat.read(ROOT / "solutions" / "lab_mnist_gan" / "lab_mnist_gan.ipynb", as_version=4)
PROSE = "\n\n".join(cell.source for cell in SOLUTION.cells if cell.cell_type == "markdown")
PAGE = nbformat.read(ROOT / "book" / "lab_mnist_gan.ipynb", as_version=4)
BENCH = json.loads((ROOT / "book" / "data" / "mnist_benchmark.json").read_text())
SWEEP = pd.read_json(ROOT / "book" / "data" / "mnist_lab_sweep.jsonl", lines=True)
#: The long runs that chose the discriminator's learning rate.
LONG = pd.read_json(ROOT / "book" / "data" / "mnist_long_sweep.jsonl", lines=True)


def _row(generator: str, budget: float | None = None) -> dict:
    return next(r for r in BENCH["rows"] if r["generator"] == generator and r["cpu_budget_s"] == budget)


def _page_table_row(name: str) -> list[str]:
    """The cells of row ``name`` in the page's table of the short run, the shipped generator and the floor."""
    for cell in PAGE.cells:
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html", "")
            match = re.search(rf"<th[^>]*>{re.escape(name)}</th>(.*?)</tr>", html, re.S)
            if match and "Fréchet" in html:
                return re.findall(r"<td[^>]*>\s*([^<]*?)\s*</td>", match.group(1))
    raise AssertionError(f"no table row {name!r} in the released page")


def test_the_released_short_run_draws_every_digit_far_better_than_the_first_version():
    digits, kl, frechet, precision, recall, density, coverage = _page_table_row("your short run")
    assert int(digits) == 10 and float(frechet) < 150  # the first version: 2 digits, Fréchet 828
    floor = _page_table_row("real fit digits (floor)")
    assert float(floor[2]) < float(frechet) and float(recall) > 0.3 and float(coverage) > 0.3


def test_the_short_run_uses_the_course_recipe_and_the_sweep_measured_it():
    train = next(cell.source for cell in SOLUTION.cells if "averaged.update_parameters(generator)" in cell.source)
    ours = RECIPES["ours"]
    assert (ours.lr, ours.d_lr, ours.betas, ours.batch_size, ours.ema) == (1e-3, 2e-4, (0.0, 0.99), 128, 0.999)
    optimizers = (
        "discriminator.parameters(), lr=2e-4, betas=(0.0, 0.99)",
        "generator.parameters(), lr=1e-3, betas=(0.0, 0.99)",
    )
    for text in (*optimizers, "ema_with_warmup(0.999)", "(30, 128)"):
        assert text in train
    chosen = SWEEP[(SWEEP["recipe"] == "ours") & (SWEEP["epochs"] == 30)].iloc[0]
    assert chosen["digits"] == 10 and chosen["frechet"] < 150
    first = SWEEP[(SWEEP["recipe"] == "lab_dcgan") & (SWEEP["epochs"] == 30)].iloc[0]
    assert chosen["frechet"] < first["frechet"]


def test_the_benchmark_carries_both_recipes_at_both_budgets_with_every_metric_and_the_floor():
    assert BENCH["cpu_budgets_s"] == [600.0, 1300.0]
    for budget in BENCH["cpu_budgets_s"]:
        for name in ("ours", "peer"):
            row = _row(name, budget)
            assert row["cpu_budget_s"] <= row["cpu_seconds"] and all(row[key] is not None for key in METRICS)
    # At both budgets ours is at least 25 % closer to the held-out digits and covers the classes better.
    for budget in BENCH["cpu_budgets_s"]:
        ours, peer = _row("ours", budget), _row("peer", budget)
        assert ours["frechet"] <= 0.75 * peer["frechet"] and ours["class_kl"] < peer["class_kl"], budget
    floor = _row(FLOOR)
    assert all(floor[key] is not None for key in METRICS) and floor["frechet"] < ours["frechet"]
    shipped, entry = _row("shipped"), pretrained.manifest()["models"]["generator"]
    assert shipped["epochs"] == entry["training"]["epochs"]
    assert shipped["frechet"] == pytest.approx(entry["metrics"]["frechet_lenet"], abs=1e-3)
    assert GANRecipe.from_dict(entry["training"]["recipe"]) == RECIPES["ours"]
    assert entry["training"]["command"].endswith("--recipe ours")


def test_the_long_runs_show_why_the_discriminator_is_slower():
    runs = {name: LONG[LONG["recipe"] == name] for name in ("ours", "lab_beta0_ema", "beta0_ema_dropout05")}
    ours, one_rate = runs["ours"].iloc[-1], runs["lab_beta0_ema"].iloc[-1]
    assert ours["cpu_seconds"] == one_rate["cpu_seconds"] == 1300.0  # both ran their whole budget
    # One learning rate degrades: its last distance is far above its best; ours stays near its best.
    assert one_rate["frechet"] > 3 * runs["lab_beta0_ema"]["frechet"].min()
    assert ours["frechet"] < 1.5 * runs["ours"]["frechet"].min() and ours["frechet"] < one_rate["frechet"] / 3
    quoted = {f"{run['frechet'].min():.1f}" for run in runs.values()}
    quoted |= {f"{run['frechet'].iloc[-1]:.1f}" for run in runs.values()}
    missing = sorted(figure for figure in quoted if figure not in PROSE)
    assert missing == [], f"the long runs say {missing}, the lab's text does not"


def test_the_text_quotes_the_saved_measurements_as_they_are():
    quoted = set()
    for budget in BENCH["cpu_budgets_s"]:
        quoted |= {f"{_row(name, budget)['frechet']:.1f}" for name in ("ours", "peer")}
    ours, peer = _row("ours", 600.0), _row("peer", 600.0)
    quoted |= {f"{1 - ours['frechet'] / peer['frechet']:.0%}", f"{ours['class_kl']:.3f}", f"{peer['class_kl']:.3f}"}
    shipped, floor = _row("shipped"), _row(FLOOR)
    quoted |= {f"{shipped['frechet']:.1f}", f"{floor['frechet']:.1f}", f"{shipped['epochs']} epochs"}
    at_30 = SWEEP[SWEEP["epochs"] == 30].set_index("recipe")
    quoted |= {f"{at_30.loc[name, 'frechet']:.0f}" for name in ("ours", "lab_beta0_ema", "lab_dcgan")}
    missing = sorted(figure.replace("%", " %") for figure in quoted if figure.replace("%", " %") not in PROSE)
    assert missing == [], f"the saved measurements say {missing}, the lab's text does not"
