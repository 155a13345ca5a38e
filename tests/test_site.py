"""The static site (`make site`): built from the committed notebooks into a temporary folder, then read in Chromium.

Opens the landing page, every notebook page and the reference pages from a local HTTP server at 1366x900, every other
address blocked (so the widget viewer from unpkg.com cannot load): the figures must be there, loaded and at their own
size, the navigation must reach every notebook in order, every link of a page's table of contents must lead to a
heading, each widget must show its still picture, the equation must be typeset by the bundled MathJax, and no page may
show a Python traceback or throw a script error. The landing page must follow the README (its picture first, then how
to start and the notebooks), every notebook page must open with the banner that says how to get and run it, every
script a page loads from elsewhere must be pinned to one version, and search results must show each code cell once,
without prompts.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import site_hooks  # noqa: E402

pytestmark = pytest.mark.backend_independent

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "site-shots"
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGES = ["index.html"] + [n.replace(".ipynb", ".html") for n in NOTEBOOKS]
DOC_PAGES = [p.name.replace(".md", ".html") for p in sorted((ROOT / "docs").glob("*.md"))]  # the reference pages
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
    banner: [...document.querySelectorAll('article .vit-run-banner')].map(b => ({text: b.innerText,
        links: [...b.querySelectorAll('a')].map(a => a.getAttribute('href')),
        before_text: !b.previousElementSibling || /^H1$/.test(b.previousElementSibling.tagName)})),
    anchors: [...document.querySelectorAll('article a[href^="#"]')].map(a => a.getAttribute('href').slice(1))
        .filter(id => !document.getElementById(decodeURIComponent(id))),
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
        for name in PAGES + DOC_PAGES:
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


def test_the_landing_page_follows_the_readme_with_its_picture_first(pages):
    facts, _ = pages
    headings, text = facts["index.html"]["headings"], facts["index.html"]["text"]
    readme = [line[3:].strip() for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("## ")]
    assert headings == readme and headings[:2] == ["Start", "The notebooks"], headings
    first = facts["index.html"]["images"][0]
    assert first["src"] == "images/position_grid.png" and first["loaded"] and first["shown"] >= 400, first
    assert text.index("make lab") < text.index("Images as words")  # how to start, then the notebooks
    for page in DOC_PAGES + ["CONTRIBUTING.html", "RESULTS.html"]:
        assert page in facts["index.html"]["links"] and page in facts["index.html"]["nav"], page


def test_every_notebook_page_opens_with_how_to_get_and_run_it(pages):
    facts, _ = pages
    for notebook in NOTEBOOKS:
        (banner,) = facts[notebook.replace(".ipynb", ".html")]["banner"]
        assert banner["before_text"], notebook  # right after the title
        for words in ("git clone", "make lab", f"notebooks/{notebook}", "Binder", "environment.yml"):
            assert words in banner["text"], (notebook, words)
        assert any(link.startswith("https://mybinder.org") for link in banner["links"]) and "setup.html" in banner["links"]
    assert not facts["index.html"]["banner"]


def test_the_banner_links_the_notebook_on_binder_when_the_repository_is_known():
    banner = site_hooks.banner("07_what_the_vit_learns.ipynb", "someone/vit-notebooks")
    assert ('href="https://mybinder.org/v2/gh/someone/vit-notebooks/HEAD?urlpath=lab/tree/notebooks/'
            '07_what_the_vit_learns.ipynb"') in banner
    assert "git clone https://github.com/someone/vit-notebooks" in banner


def test_every_script_from_elsewhere_is_pinned_to_one_version(site):
    out, _ = site
    ipywidgets = re.search(r"^ipywidgets==(\S+)", (ROOT / "constraints.txt").read_text(), re.M)[1]
    manager = site_hooks.HTML_MANAGER[ipywidgets]  # the html-manager release that goes with the locked ipywidgets
    urls = {}
    for page in sorted(out.glob("*.html")):
        html = page.read_text()
        found = re.findall(r"<script[^>]*\ssrc=[\"']([^\"']+)", html) + re.findall(r"[\"'](https?://[^\"'\s]+\.js)\b", html)
        urls.update({url: page.name for url in found if re.match(r"(https?:)?//", url)})
    assert urls, "no page loads a script from elsewhere: the widget viewer is missing"
    unpinned = {url: page for url, page in urls.items() if not re.search(r"[@/]v?\d+\.\d+\.\d+(/|$)", url)
                or re.search(r"@(\*|latest|\^|~)", url)}
    assert not unpinned, unpinned
    viewer = [url for url in urls if "html-manager" in url]
    assert viewer and all(f"@jupyter-widgets/html-manager@{manager}/" in url for url in viewer), viewer


def test_the_reference_pages_are_there_and_their_anchors_lead_somewhere(pages):
    facts, errors = pages
    assert DOC_PAGES and errors == []
    for name in DOC_PAGES:
        page = facts[name]
        assert name in facts["index.html"]["nav"] and page["headings"], name
        assert page["anchors"] == [], (name, page["anchors"])  # every #link on the page names an element
        assert "Traceback (most recent call last)" not in page["text"], name


def test_search_shows_each_code_cell_once_without_prompts(site):
    out, _ = site
    entries = json.loads((out / "search" / "search_index.json").read_text())["docs"]
    notebook_text = " ".join(e["text"] for e in entries if re.match(r"\d\d_", e["location"]))
    assert "Copied!" not in notebook_text and not re.search(r"In\s*\[\d*\]:", notebook_text)
    assert notebook_text.count('IMAGE_NAME = "grace_hopper"') == 1  # notebook 01's parameters cell
