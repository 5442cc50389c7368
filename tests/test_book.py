"""The built book: no solution leaks, every asset local, and the lab page renders offline."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from tests.conftest import ROOT
from tests.leaks import leaks, secret_lines

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    """Build the book, as `make book` does, into a scratch folder."""
    out = tmp_path_factory.mktemp("book")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "jupyter-book"),
            "build",
            str(ROOT),
            "--path-output",
            str(out),
            "--warningiserror",
            "--keep-going",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out / "_build" / "html"


def _published_texts(html: Path) -> dict[str, str]:
    """What a reader can reach: page text, search index, downloadable sources."""
    texts = {}
    for path in html.rglob("*"):
        if path.suffix == ".html":
            texts[str(path)] = BeautifulSoup(path.read_text(), "html.parser").get_text()
        elif path.suffix in (".js", ".txt", ".md") and "_static" not in path.parts:
            texts[str(path)] = path.read_text()
        elif path.suffix == ".ipynb":
            notebook = json.loads(path.read_text())
            texts[str(path)] = "\n".join("".join(cell["source"]) for cell in notebook["cells"])
    return texts


def test_no_solution_code_or_hidden_test_reaches_the_book(html):
    secrets = secret_lines()
    assert len(secrets) > 20  # the solutions are really there to look for
    texts = _published_texts(html)
    assert any(path.endswith("_sources/book/lab_2d_gan.ipynb") for path in texts)
    assert {path: leaks(text, secrets) for path, text in texts.items() if leaks(text, secrets)} == {}


def test_the_leak_detector_sees_a_leaked_solution_line():
    secrets = secret_lines()
    solution_line = "x_fake = gan.generator(z).detach()"
    assert solution_line in secrets
    page = "<pre><span>x_fake</span> = gan.generator(z).detach()</pre>"
    assert leaks(BeautifulSoup(page, "html.parser").get_text(), secrets) == [solution_line]


def test_pages_load_no_asset_from_the_network(html):
    remote = re.compile(r"^(https?:)?//")
    offenders = []
    for page in html.rglob("*.html"):
        soup = BeautifulSoup(page.read_text(), "html.parser")
        for tag, attribute in (("script", "src"), ("img", "src"), ("iframe", "src"), ("link", "href")):
            for element in soup.find_all(tag):
                url = element.get(attribute) or ""
                is_asset = tag != "link" or set(element.get("rel", [])) & {
                    "stylesheet",
                    "preload",
                    "icon",
                    "modulepreload",
                }
                if is_asset and remote.match(url):
                    offenders.append(f"{page.name}: <{tag} {attribute}={url}>")
    assert offenders == []


def test_launch_and_download_buttons_point_at_the_student_notebook(html):
    soup = BeautifulSoup((html / "book" / "lab_2d_gan.html").read_text(), "html.parser")
    links = [a.get("href", "") for a in soup.find_all("a")]
    assert any(
        link.startswith("https://colab.research.google.com/github/") and link.endswith("/book/lab_2d_gan.ipynb")
        for link in links
    )
    assert any(link.startswith("https://mybinder.org/v2/gh/") and "book/lab_2d_gan.ipynb" in link for link in links)
    download = html / "_sources" / "book" / "lab_2d_gan.ipynb"
    assert json.loads(download.read_text()) == json.loads((ROOT / "book" / "lab_2d_gan.ipynb").read_text())


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "Chromium is missing: `make test` installs Debian's chromium and chromium-driver."
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,900",
        # No network at all: the page must work from the build alone.
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ):
        options.add_argument(flag)
    session = webdriver.Chrome(service=Service(driver), options=options)
    yield session
    session.quit()


@pytest.mark.parametrize(
    "page, min_formulas, min_figures",
    [
        ("lab_2d_gan", 30, 8),
        ("lab_js_divergence", 60, 5),
        ("lab_mnist_gan", 10, 9),
        ("lab_lsi", 5, 4),
        ("lsi_mnist", 10, 10),
    ],
)
def test_lab_pages_typeset_math_and_show_their_figures_offline(
    html, browser, tmp_path, page, min_formulas, min_figures
):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get((html / "book" / f"{page}.html").as_uri())
    typeset = "return document.querySelectorAll('mjx-container').length"
    WebDriverWait(browser, 60).until(lambda b: b.execute_script(typeset) > 0)
    # Wait until MathJax has gone through every formula of the page.
    WebDriverWait(browser, 60).until(
        lambda b: b.execute_script("return window.MathJax && MathJax.startup && MathJax.startup.promise && true")
    )
    browser.execute_script("return MathJax.startup.promise")
    formulas = browser.execute_script(typeset)
    assert formulas >= min_formulas
    assert browser.execute_script("return document.querySelectorAll('mjx-merror').length") == 0
    # No raw TeX left in the prose a reader sees (code and typeset math set aside).
    text = browser.execute_script(
        "const a = document.querySelector('article').cloneNode(true);"
        "a.querySelectorAll('pre, code, .highlight, mjx-container').forEach(e => e.remove());"
        "return a.innerText"
    )
    assert re.findall(r"\\[A-Za-z]{2,}|\$\$", text) == []

    images = browser.execute_script(
        "return Array.from(document.querySelectorAll('article img'))"
        ".map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
    )
    figures = [src for src, _ in images if "_images/" in src]
    assert len(figures) >= min_figures
    assert [src for src, loaded in images if not loaded] == []
    browser.save_screenshot(str(tmp_path / f"{page}.png"))


def test_recap_page_typesets_math_and_plays_its_animations_offline(html, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = html / "book" / "gan_recap.html"
    assert page.stat().st_size < 40_000_000  # about a dozen animations of at most 5 MB each
    browser.get(page.as_uri())
    WebDriverWait(browser, 60).until(
        lambda b: b.execute_script("return window.MathJax && MathJax.startup && MathJax.startup.promise && true")
    )
    browser.execute_script("return MathJax.startup.promise")
    assert browser.execute_script("return document.querySelectorAll('mjx-container').length") >= 40
    assert browser.execute_script("return document.querySelectorAll('mjx-merror').length") == 0

    animations = browser.find_elements(By.CSS_SELECTOR, "article div.animation")
    assert len(animations) >= 9
    # matplotlib's player shows frame 0 as soon as its script has run, from the page itself.
    first = animations[0]
    image = first.find_element(By.TAG_NAME, "img")
    WebDriverWait(browser, 30).until(lambda b: (image.get_attribute("src") or "").startswith("data:image/png"))
    slider = first.find_element(By.CSS_SELECTOR, "input.anim-slider")
    start_src, start_frame = image.get_attribute("src"), slider.get_attribute("value")
    browser.execute_script("arguments[0].scrollIntoView()", first)
    first.find_element(By.CSS_SELECTOR, "button[title='Next frame']").click()
    assert slider.get_attribute("value") == str(int(start_frame) + 1)
    assert image.get_attribute("src") != start_src
    assert int(slider.get_attribute("max")) >= 20  # tens of frames
    figures = browser.execute_script(
        "return Array.from(document.querySelectorAll('article img'))"
        ".filter(i => i.getAttribute('src').includes('_images/')).map(i => i.complete && i.naturalWidth > 0)"
    )
    assert len(figures) >= 6 and all(figures)
    # The quiz answers are there, folded away.
    answers = browser.find_elements(By.CSS_SELECTOR, "article .admonition.dropdown")
    assert len(answers) == 1 and "Answers" in answers[0].text
    browser.save_screenshot(str(tmp_path / "gan_recap.png"))
