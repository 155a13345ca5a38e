"""The static site (`make site`): built from the committed notebooks into a temporary folder, then read in Chromium.

Opens the landing page and notebook 03 (and notebook 01 for its widget, notebook 06 for its displayed equation)
from a local HTTP server, with no internet: the figures must be there and loaded, the navigation must reach every
notebook in order, the equation must be typeset by the bundled MathJax, and no page may show a Python traceback or
throw a script error.
Screenshots are kept in build/site-shots/.
"""
import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from browser import launch

pytestmark = pytest.mark.backend_independent

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "site-shots"
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGE_FACTS = """() => ({
    images: [...document.querySelectorAll('article img')].map(i => ({loaded: i.complete && i.naturalWidth > 0,
                                                                   src: i.getAttribute('src')})),
    links: [...document.querySelectorAll('article a')].map(a => a.getAttribute('href')),
    nav: [...document.querySelectorAll('nav.md-nav--primary a.md-nav__link')].map(a => a.getAttribute('href')),
    footer: [...document.querySelectorAll('.md-footer__link')].map(a => a.getAttribute('href')),
    typeset: document.querySelectorAll('article .MathJax, article .MathJax_Display').length,
    widget_notes: document.querySelectorAll('.vit-widget-note').length,
    text: document.querySelector('article').innerText,
})"""


def outputs_of_type(notebook, mime):
    """How many outputs of the committed notebook carry ``mime`` (e.g. "image/png")."""
    cells = json.loads((ROOT / "notebooks" / notebook).read_text())["cells"]
    return sum(mime in out.get("data", {}) for cell in cells for out in cell.get("outputs", []))


def image_outputs(notebook):
    return outputs_of_type(notebook, "image/png")


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_site.py"), "--out", str(out)],
                           capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert build.returncode == 0, build.stdout + build.stderr
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def pages(site):
    """The facts of three pages as Chromium shows them, and the script errors it met."""
    sync_api = pytest.importorskip("playwright.sync_api")
    out, url = site
    SHOTS.mkdir(parents=True, exist_ok=True)
    facts, errors = {}, []
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda error: errors.append(str(error)))
        for name in ["index.html", "01_images_as_words.html", "03_position_embeddings.html", "06_training.html"]:
            page.goto(f"{url}/{name}")
            page.wait_for_load_state("load")
            if name == "06_training.html":
                page.wait_for_selector("article .MathJax_Display", timeout=30_000)
            facts[name] = page.evaluate(PAGE_FACTS)
            page.screenshot(path=str(SHOTS / name.replace(".html", ".png")))
        browser.close()
    return facts, errors


def test_every_notebook_is_a_page_in_order(site, pages):
    out, _ = site
    facts, _ = pages
    pages_in_nav = [h for h in facts["index.html"]["nav"] if re.match(r"\d\d_", h)]
    assert pages_in_nav == [n.replace(".ipynb", ".html") for n in NOTEBOOKS]
    assert all((out / page).exists() for page in pages_in_nav)
    # the landing page's notebook table links every notebook's page; notebook 03 links back and forth in order
    assert set(pages_in_nav) <= set(facts["index.html"]["links"])
    assert facts["03_position_embeddings.html"]["footer"] == ["02_patch_embeddings.html", "04_transformer_encoder.html"]


def test_the_figures_are_there_and_load(pages):
    facts, _ = pages
    assert facts["index.html"]["images"] and all(i["loaded"] for i in facts["index.html"]["images"])
    figures = facts["03_position_embeddings.html"]["images"]
    assert len(figures) == image_outputs("03_position_embeddings.ipynb") >= 5
    assert all(i["loaded"] for i in figures), [i["src"][:40] for i in figures if not i["loaded"]]


def test_equations_are_typeset_offline(pages):
    facts, _ = pages
    assert facts["06_training.html"]["typeset"] >= 2  # the inline T and the displayed distillation loss
    assert "\\mathrm{KL}" not in facts["06_training.html"]["text"]  # no raw LaTeX left on the page


def test_no_page_shows_an_error(pages):
    facts, errors = pages
    assert errors == []
    for name, page in facts.items():
        assert "Traceback (most recent call last)" not in page["text"], name
        assert "Error displaying widget" not in page["text"], name
        assert "{{" not in page["text"], name  # no unrendered template


def test_widgets_say_where_they_move(pages):
    facts, _ = pages
    widgets = outputs_of_type("01_images_as_words.ipynb", "application/vnd.jupyter.widget-view+json")
    assert facts["01_images_as_words.html"]["widget_notes"] == widgets >= 1  # the patch explorer
