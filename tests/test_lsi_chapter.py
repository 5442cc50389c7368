"""The LSI chapter (book/lsi_mnist.ipynb) as its readers see it, without running it.

Its prose quotes the saved benchmarks (book/data/lsi_benchmark*.json): rerun the benchmark and these
tests say which figures of the text went stale. The built page is checked by tests/test_book.py.
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from coursepkg.lsi.benchmark import breakdown_rows, coverage_rows, speed_rows
from coursepkg.lsi.search import OURS, OURS_FLOAT32, SEED_CONFIG
from tests.conftest import ROOT

NOTEBOOK = nbformat.read(ROOT / "book" / "lsi_mnist.ipynb", as_version=4)
PROSE = "\n\n".join(cell.source for cell in NOTEBOOK.cells if cell.cell_type == "markdown")
CODE = [cell.source for cell in NOTEBOOK.cells if cell.cell_type == "code"]
BENCH = json.loads((ROOT / "book" / "data" / "lsi_benchmark.json").read_text())
#: The same benchmark beside another job (``--competing-job``).
SHARED = json.loads((ROOT / "book" / "data" / "lsi_benchmark_shared.json").read_text())
#: The same benchmark on a CPU without bfloat16 units (AVX2 only).
AVX2 = json.loads((ROOT / "book" / "data" / "lsi_benchmark_avx2.json").read_text())
#: What fits the book's column at 1280 px without scrolling.
CODE_WIDTH = 76


def _by_name(rows: list[dict]) -> dict[str, dict]:
    return {row["search"]: row for row in rows}


def test_the_text_quotes_the_saved_benchmark_as_it_is():
    speed, coverage = _by_name(speed_rows(BENCH)), _by_name(coverage_rows(BENCH))
    breakdown, check = _by_name(breakdown_rows(BENCH)), BENCH["precision_check"]
    shared = _by_name(speed_rows(SHARED))
    target = f"to {BENCH['seed_figures']['cells']:,}"
    quoted = {
        f"{coverage[OURS.name][target]:.2f} M",
        *(f"{coverage[name]['4.5 M']:,}" for name in (SEED_CONFIG.name, OURS.name, OURS_FLOAT32.name)),
        *(f"{speed[name]['total s']} s" for name in (SEED_CONFIG.name, OURS.name, OURS_FLOAT32.name)),
        f"{speed[OURS.name]['× tutorial']:.2f} of the tutorial configuration's",
        f"{shared[OURS.name]['× tutorial']:.2f} of the tutorial configuration's",
        f"networks' {breakdown[OURS.name]['networks']} s",
        f"pyribs' {breakdown[OURS.name]['pyribs']} s",
        f"instead of {breakdown[OURS_FLOAT32.name]['networks']} s",
        f"{breakdown[OURS.name]['GFLOP/s']} GFLOP/s",
        f"{check['same_cell']:.1%}".replace("%", " %"),
        f"{check['objective_error_mean']:.4f}",
        f"{check['float32_cells']:,}",
        f"{BENCH['seed_figures']['seconds_on_gpu']} s",
        f"{BENCH['seed_figures']['cells']:,}",
        f"{BENCH['seed_figures']['cells_current_tutorial']:,}",
    }
    # The run on a CPU without bfloat16 units, where ours runs in float32 and is not run twice.
    speed, coverage, breakdown = (_by_name(rows(AVX2)) for rows in (speed_rows, coverage_rows, breakdown_rows))
    quoted |= {
        *(f"{speed[name]['total s']} s" for name in (SEED_CONFIG.name, OURS.name)),
        *(f"{coverage[name]['4.5 M']:,}" for name in (SEED_CONFIG.name, OURS.name)),
        f"{speed[OURS.name]['× tutorial']:.2f} of the tutorial configuration's",
        f"after {coverage[OURS.name][target]:.2f} M evaluations",
        f"{breakdown[OURS.name]['networks']} s of CPU time, at {breakdown[OURS.name]['GFLOP/s']} GFLOP/s",
        f"pyribs {breakdown[OURS.name]['pyribs']} s",
        f"about {round((breakdown[OURS.name]['networks'] + breakdown[OURS.name]['pyribs']) / 2, -1):.0f} s",
        f"float32 at {AVX2['gemm']['before']['float32 1 thread']:.0f} GFLOP/s on one",
    }
    missing = sorted(figure for figure in quoted if figure not in PROSE)
    assert missing == [], f"the benchmark files say {missing}, the chapter's text does not"
    assert SHARED["competing_job"] and SHARED["provenance"]["machine"]["torch_threads"] == 1
    assert AVX2["provenance"]["machine"]["cpu_features"] == ["avx2", "fma"]
    assert AVX2["not_run"] == {"float32": "ours"}
    assert [run["config"]["precision"] for run in AVX2["runs"]] == ["float32", "float32"]


def test_the_text_states_what_the_discriminator_table_shows():
    section = PROSE.split("## 4.")[1].split("## 5.")[0]
    # On the shipped generator (200 epochs of the course's recipe) D passes under a fifth of the elites,
    # fewer than of its samples; the first shipped generator's elites passed more often than its samples.
    assert "most of the archive looks less real than what the generator draws" in section
    assert "passes **more** of them than of the generator's own samples" not in PROSE


def test_sources_are_cited_from_the_bibliography_not_written_by_hand():
    assert re.findall(r"et al\.,? \(?\d{4}", PROSE) == []
    assert "**References.**" not in PROSE
    cited = {key.strip() for group in re.findall(r"\{cite(?::[tp])?\}`([^`]+)`", PROSE) for key in group.split(",")}
    expected = {
        "pyribs_lsi",
        "fontaine2021",
        "fontaine2020",
        "fontaine2023",
        "tjanaka2023",
        "bontrager2018",
        "lecun1998",
    }
    assert expected <= cited


@pytest.mark.parametrize("target", sorted(set(re.findall(r"\{doc\}`([^`]+)`", PROSE))))
def test_links_to_other_pages_resolve(target):
    assert (ROOT / "book" / f"{target}.md").exists() or (ROOT / "book" / f"{target}.ipynb").exists()


def test_the_chapter_reads_in_order_and_ends_with_a_quiz_and_where_to_go_next():
    assert "{doc}`lab_lsi`" in PROSE.split("## Setup")[0], "the introduction starts from the LSI lab"
    headings = re.findall(r"^## (.+)$", PROSE, re.M)
    assert headings[-3:] == ["Summary", "Check your understanding", "Where to go next"]
    quiz = PROSE.split("## Check your understanding")[1]
    assert re.search(r"```\{admonition\} Answers\n:class: dropdown", quiz)
    questions = re.findall(r"^\d\. ", quiz.split("```{admonition}")[0], re.M)
    answers = re.findall(r"^\d\. ", quiz.split("```{admonition}")[1], re.M)
    assert 3 <= len(questions) == len(answers) <= 5
    assert "{doc}`next`" in PROSE.split("## Where to go next")[1]


def test_code_fits_the_page_and_every_figure_is_named():
    install = re.compile(r"^if importlib\.util\.find_spec")
    wide = [line for source in CODE for line in source.splitlines() if len(line) > CODE_WIDTH]
    assert [line for line in wide if not install.match(line)] == []
    drawn = [source for source in CODE if re.search(r"\bplot_\w+\(", source)]
    assert drawn and all("title=" in source for source in drawn)
    assert not any("print(config)" in source or "format_table" in source for source in CODE)
