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
from tests.leaks import leaks

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


def test_no_solution_code_or_hidden_test_reaches_the_book(html, secrets):
    assert len(secrets) > 20  # the solutions are really there to look for
    texts = _published_texts(html)
    assert any(path.endswith("_sources/book/lab_2d_gan.ipynb") for path in texts)
    assert {path: leaks(text, secrets) for path, text in texts.items() if leaks(text, secrets)} == {}


def test_the_leak_detector_sees_a_leaked_solution_line(secrets):
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


def _chromium(width: int, *, console: bool = False):
    """Headless Chromium ``width`` pixels wide, offline (the page must work from the build alone)."""
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
        f"--window-size={width},900",
        # No network at all.
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ):
        options.add_argument(flag)
    if width < 500:
        # Headless Chromium's windows are at least 500 px wide: a phone's width needs its emulation.
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": width, "height": 900}})
    if console:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.fixture(scope="module")
def browser():
    session = _chromium(1200)
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
    _open(browser, html / "book" / f"{page}.html")
    formulas = browser.execute_script("return document.querySelectorAll('mjx-container').length")
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
    _open(browser, page)
    assert browser.execute_script("return document.querySelectorAll('mjx-container').length") >= 40
    assert browser.execute_script("return document.querySelectorAll('mjx-merror').length") == 0

    animations = browser.find_elements(By.CSS_SELECTOR, "article div.animation video")
    assert len(animations) >= 9
    # Each video comes from the page itself and plays in the browser, with its controls;
    # its poster is where training ended, not the first frame the video shows.
    first = animations[0]
    assert first.get_attribute("controls") is not None
    assert first.get_attribute("poster").startswith("data:image/jpeg")
    source = first.find_element(By.TAG_NAME, "source").get_attribute("src")
    assert source.startswith("data:video/mp4;base64,")
    browser.execute_script("arguments[0].scrollIntoView(); arguments[0].load()", first)
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return arguments[0].readyState >= 2", first))
    assert browser.execute_script("return arguments[0].duration", first) >= 5  # tens of frames at 4 per second
    difference = browser.execute_async_script(
        """
        const [video, done] = arguments;
        const pixels = (source) => {
          const canvas = document.createElement('canvas');
          canvas.width = video.videoWidth; canvas.height = video.videoHeight;
          const context = canvas.getContext('2d');
          context.drawImage(source, 0, 0, canvas.width, canvas.height);
          return context.getImageData(0, 0, canvas.width, canvas.height).data;
        };
        const poster = new Image();
        poster.onload = () => {
          const a = pixels(video), b = pixels(poster);
          let total = 0;
          for (let i = 0; i < a.length; i += 4) total += Math.abs(a[i] - b[i]);
          done(total / (a.length / 4));
        };
        video.currentTime = 0;
        video.addEventListener('seeked', () => { poster.src = video.poster; }, {once: true});
        """,
        first,
    )
    assert difference > 1  # the first frame (on screen now) is not the poster (the last frame)
    assert "last frame" in first.find_element(By.XPATH, "..").text
    figures = browser.execute_script(
        "return Array.from(document.querySelectorAll('article img'))"
        ".filter(i => i.getAttribute('src').includes('_images/')).map(i => i.complete && i.naturalWidth > 0)"
    )
    assert len(figures) >= 6 and all(figures)
    # The quiz answers are there, folded away.
    answers = browser.find_elements(By.CSS_SELECTOR, "article .admonition.dropdown")
    assert len(answers) == 1 and "Answers" in answers[0].text
    browser.save_screenshot(str(tmp_path / "gan_recap.png"))


# --- The book as its readers see it: every page, on a laptop and on a phone -------------------------

PAGES = re.findall(r"file: book/(\w+)", (ROOT / "_toc.yml").read_text())
#: What a page may weigh: a phone on a slow network still opens it.
MAX_PAGE_BYTES = 5_000_000
#: Paths of the machine that built the book (a kernel's temp files, a home folder's cache).
MACHINE_PATH = re.compile(r"(?<![\w.:/])/(?:tmp|root|home|work|usr|var|opt)/[\w.-]+/|ipykernel_\d+")

# Every math, output, table, code and picture in the main column either fits it or scrolls inside
# a box whose scrollbar takes room on the page (a reader sees that there is more).
OVERFLOW = r"""
const main = document.querySelector('article');
const column = main.getBoundingClientRect();
const found = [];
const items = 'mjx-container, div.cell_output, div.output, table, pre, img, video, svg';
for (const e of main.querySelectorAll(items)) {
  const r = e.getBoundingClientRect();
  if (r.width === 0) continue;
  let box = e, scroller = null;
  while (box && box !== main) {
    const s = getComputedStyle(box);
    if (['auto', 'scroll'].includes(s.overflowX) && box.scrollWidth > box.clientWidth + 1) { scroller = box; break; }
    box = box.parentElement;
  }
  const what = (e.innerText || e.getAttribute('src') || e.tagName).slice(0, 80);
  if (scroller) {
    if (scroller.offsetHeight - scroller.clientHeight <= 0) found.push(`${e.tagName} scrolls unseen: ${what}`);
  } else if (r.left < column.left - 1 || r.right > column.right + 1) {
    found.push(`${e.tagName} ${Math.round(r.width)} px in a ${Math.round(column.width)} px column: ${what}`);
  } else if (['PRE', 'DIV', 'TABLE'].includes(e.tagName) && e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1) {
    // The box fits, but the text it holds spills out of it (or is clipped by it).
    found.push(`${e.tagName} holds ${e.scrollWidth} px in a ${e.clientWidth} px box: ${what}`);
  }
}
return found;
"""


def test_every_page_is_light_and_names_no_machine_path(html):
    pages = {page: html / "book" / f"{page}.html" for page in PAGES}
    assert all(path.exists() for path in pages.values())
    sizes = {page: path.stat().st_size for page, path in pages.items()}
    assert {page: size for page, size in sizes.items() if size > MAX_PAGE_BYTES} == {}
    paths = {page: MACHINE_PATH.findall(path.read_text()) for page, path in pages.items()}
    assert {page: found for page, found in paths.items() if found} == {}


def test_the_machine_path_pattern_finds_what_a_kernel_leaves():
    warning = "/tmp/ipykernel_4242/1234.py:3: UserWarning: see /root/.cache/torch/x"
    assert MACHINE_PATH.findall(warning) == ["/tmp/ipykernel_4242/", "/root/.cache/"]
    assert MACHINE_PATH.findall('File "ipykernel_77/12.py", line 3') == ["ipykernel_77"]
    assert MACHINE_PATH.findall('<a href="https://example.org/tmp/x/">, <img src="../_images/a.png">') == []


@pytest.fixture(scope="module", params=[1280, 414], ids=["laptop", "phone"])
def reader(request):
    """Headless Chromium at a laptop's or a phone's width, offline, keeping the console."""
    session = _chromium(request.param, console=True)
    session.width = request.param
    yield session
    session.quit()


def _open(reader, page: Path) -> None:
    """Load a page and wait until MathJax, on a page with math, has typeset all of it."""
    from selenium.webdriver.support.ui import WebDriverWait

    reader.get(page.as_uri())
    WebDriverWait(reader, 60).until(lambda b: b.execute_script("return document.readyState") == "complete")
    if reader.execute_script("return !!document.querySelector('script[src*=\"mathjax\"]')"):
        WebDriverWait(reader, 60).until(
            lambda b: b.execute_script("return !!(window.MathJax && MathJax.startup && MathJax.startup.promise)")
        )
        reader.execute_async_script("MathJax.startup.promise.then(() => arguments[arguments.length - 1](true))")


@pytest.mark.parametrize("page", PAGES)
def test_a_reader_sees_every_page_whole_without_errors(html, reader, page, tmp_path):
    _open(reader, html / "book" / f"{page}.html")
    width = reader.execute_script("return window.innerWidth")
    assert width == reader.width
    errors = [entry["message"] for entry in reader.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    assert reader.execute_script(OVERFLOW) == []
    # The page itself does not scroll sideways.
    assert reader.execute_script("return document.documentElement.scrollWidth") <= width
    broken = reader.execute_script(
        "return Array.from(document.querySelectorAll('article img'))"
        ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src').slice(0, 80))"
    )
    assert broken == []
    reader.save_screenshot(str(tmp_path / f"{page}-{width}.png"))


def test_the_overflow_check_sees_a_cut_equation_and_an_unseen_scrollbar(html, reader):
    _open(reader, html / "book" / "notation.html")
    reader.execute_script(
        "const a = document.querySelector('article');"
        "const wide = document.createElement('pre'); wide.style.overflow = 'visible';"
        "wide.textContent = 'x'.repeat(400); a.appendChild(wide);"
        "const hidden = document.createElement('div'); hidden.style.overflowX = 'auto';"
        "hidden.style.scrollbarWidth = 'none'; hidden.innerHTML = '<svg width=\"3000\" height=\"10\"></svg>';"
        "a.appendChild(hidden);"
    )
    found = reader.execute_script(OVERFLOW)
    assert any(item.startswith("PRE holds") for item in found)
    assert any(item.startswith("svg") and "scrolls unseen" in item for item in found)
