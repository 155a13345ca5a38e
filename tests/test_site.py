"""The static site (`make site`): built from the committed notebooks into a temporary folder, then read in Chromium.

Opens the landing page and every notebook page from a local HTTP server at 1366x900, every other address blocked
(so the widget viewer from unpkg.com cannot load): the figures must be there, loaded and at their own size, the
navigation must reach every notebook in order, every link of a page's table of contents must lead to a heading, each
widget must show its still picture, the equation must be typeset by the bundled MathJax, and no page may show a Python
traceback or throw a script error. The landing page must put the learner's sections first, and search results must
show each code cell once, without prompts.
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
PAGES = ["index.html"] + [n.replace(".ipynb", ".html") for n in NOTEBOOKS]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PAGE_FACTS = """() => ({
    images: [...document.querySelectorAll('article img')].map(i => ({loaded: i.complete && i.naturalWidth > 0,
        src: i.getAttribute('src'), natural: i.naturalWidth, shown: i.getBoundingClientRect().width,
        still: !!i.closest('.vit-widget-still'), visible: !!i.closest('.vit-widget-still') && !i.closest('[hidden]')})),
    column: document.querySelector('article').getBoundingClientRect().width,
    links: [...document.querySelectorAll('article a')].map(a => a.getAttribute('href')),
    nav: [...document.querySelectorAll('nav.md-nav--primary a.md-nav__link')].map(a => a.getAttribute('href')),
    toc: [...document.querySelectorAll('nav.md-nav--secondary a.md-nav__link')].map(a => ({label: a.innerText.trim(),
        href: a.getAttribute('href'),
        target: !!document.getElementById(decodeURIComponent((a.getAttribute('href') || '').replace(/^#/, '')))})),
    headings: [...document.querySelectorAll('article h2')].map(h => h.innerText.replace('¶', '').trim()),
    footer: [...document.querySelectorAll('.md-footer__link')].map(a => a.getAttribute('href')),
    typeset: document.querySelectorAll('article .MathJax, article .MathJax_Display').length,
    widget_notes: document.querySelectorAll('.vit-widget-note').length,
    text: document.querySelector('article').innerText,
})"""
# Stands in for the widget viewer (unpkg.com's embed-amd.js): renders every widget view as the viewer does, into a
# div.widget-subarea put before the view's script tag.
FAKE_VIEWER = """for (const tag of document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')) {
  const area = document.createElement('div'); area.className = 'widget-subarea';
  const view = document.createElement('div'); view.className = 'jupyter-widgets'; view.textContent = 'live widget';
  area.appendChild(view); tag.parentElement.insertBefore(area, tag);
}"""


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


def offline(page, url):
    """Every address but the local server's fails, as on a machine without internet."""
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())


@pytest.fixture(scope="module")
def pages(site):
    """The facts of every page as Chromium shows them at 1366x900, offline, and the script errors it met."""
    sync_api = pytest.importorskip("playwright.sync_api")
    out, url = site
    SHOTS.mkdir(parents=True, exist_ok=True)
    facts, errors = {}, []
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        offline(page, url)
        page.on("pageerror", lambda error: errors.append(str(error)))
        for name in PAGES:
            page.goto(f"{url}/{name}")
            page.wait_for_load_state("load")
            if name == "06_training.html":
                page.wait_for_selector("article .MathJax_Display", timeout=30_000)
            facts[name] = page.evaluate(PAGE_FACTS)
            page.screenshot(path=str(SHOTS / name.replace(".html", ".png")))
            if name == "07_what_the_vit_learns.html":
                page.locator(".vit-widget-still").last.scroll_into_view_if_needed()
                page.screenshot(path=str(SHOTS / "07_still.png"))
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


def test_every_table_of_contents_link_leads_to_a_heading(pages):
    facts, _ = pages
    for name in PAGES[1:]:
        toc = facts[name]["toc"]
        assert len(toc) >= 5, name
        assert all(entry["label"] and entry["target"] for entry in toc), (name, [e for e in toc if not e["target"]])
    route_1 = [e for e in facts["01_images_as_words.html"]["toc"] if e["label"].startswith("Route 1")]
    assert route_1[0]["label"] == "Route 1: tf.image.extract_patches, as in the source text"  # inline code kept


def test_every_widget_shows_a_still_picture_without_the_widget_viewer(pages):
    facts, _ = pages
    for notebook in NOTEBOOKS:
        widgets = outputs_of_type(notebook, WIDGET_VIEW)
        page = facts[notebook.replace(".ipynb", ".html")]
        stills = [i for i in page["images"] if i["still"]]
        assert len(stills) == widgets, notebook  # 01: the patch explorer; 07: two explorers
        assert all(i["loaded"] and i["visible"] and i["shown"] > 200 for i in stills), notebook
    assert outputs_of_type("07_what_the_vit_learns.ipynb", WIDGET_VIEW) >= 2


def test_the_live_widget_replaces_its_still_where_the_widget_viewer_loads(site):
    sync_api = pytest.importorskip("playwright.sync_api")
    _, url = site
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else
                   route.fulfill(body=FAKE_VIEWER, content_type="text/javascript") if "embed-amd.js" in route.request.url
                   else route.abort())
        page.goto(f"{url}/07_what_the_vit_learns.html")
        page.wait_for_function("() => document.querySelectorAll('.widget-subarea').length >= 2", timeout=30_000)
        page.wait_for_timeout(200)
        hidden = page.evaluate("() => [...document.querySelectorAll('.vit-widget-still')].map(f => !!f.closest('[hidden]'))")
        browser.close()
    assert hidden and all(hidden)


def test_figures_show_at_their_own_size(pages):
    facts, _ = pages
    for name in ["01_images_as_words.html", "03_position_embeddings.html", "07_what_the_vit_learns.html"]:
        page = facts[name]
        assert page["column"] >= 1000, name  # 01's patch figure is 1011 px wide
        figures = [i for i in page["images"] if i["loaded"] and i["natural"] <= page["column"]]
        assert figures and all(abs(i["shown"] - i["natural"]) <= 1 for i in figures), (name, page["column"], figures)


def test_the_landing_page_puts_the_learner_first(pages):
    facts, _ = pages
    headings, text = facts["index.html"]["headings"], facts["index.html"]["text"]
    assert headings[:2] == ["The notebooks", "Quick start"] and "For contributors" in headings
    before_contributors = text[:text.index("For contributors")]
    assert "make lab" in before_contributors
    assert not any(word in before_contributors for word in ("make test", "nbval", "ruff"))
    assert headings.index("For contributors") < headings.index("Licence and citing")


def test_search_shows_each_code_cell_once_without_prompts(site):
    out, _ = site
    entries = json.loads((out / "search" / "search_index.json").read_text())["docs"]
    notebook_text = " ".join(e["text"] for e in entries if re.match(r"\d\d_", e["location"]))
    assert "Copied!" not in notebook_text and not re.search(r"In\s*\[\d*\]:", notebook_text)
    assert notebook_text.count('IMAGE_NAME = "grace_hopper"') == 1  # notebook 01's parameters cell
