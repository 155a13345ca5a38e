"""A real browser: JupyterLab on localhost, driven by Chromium (Debian's, or Playwright's own) through Playwright.

Opens notebook 01, runs all cells, moves the patch explorer's slider with the keyboard, and checks that the
widget re-renders (token count and picture change), that no widget shows an error and that the exercise feedback
shows styled. Then runs a small notebook with notebook 07's two explorers at 1366x900 with the file browser open:
the similarity explorer's model buttons sit on one row above its sliders; clicking them re-renders it; the attention
explorer's layer slider steps to the rollout with the arrow key (the cell keeps the focus), and its colour scale stays
the same when the model buttons switch to the untrained control. Every widget picture must be shown at its own size.
Keeps screenshots in build/browser/.
"""
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser import launch

pytestmark = pytest.mark.tensorflow_only

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "01_images_as_words.ipynb"
EXPLORERS = "explorers.ipynb"  # written by the fixture: notebook 07's explorers on small, quick inputs
EXPLORER_CELLS = [
    "import numpy as np\nimport vitlib\nfrom vitlib.inspection import analysis, widgets",
    "grid = (6, 6)\nsincos = analysis.position_similarity(vitlib.sincos_2d(grid, 64), grid, num_prefix_tokens=0)\n"
    "noise = analysis.position_similarity(np.random.default_rng(0).normal(size=(36, 64)), grid, num_prefix_tokens=0)\n"
    "widgets.SimilarityExplorer({'sin-cos': sincos, 'random': noise})",
    "model = vitlib.build_vit(None, image_size=12, channels=1, patch_size=2, hidden_size=32, depth=2, num_heads=2,\n"
    "                         mlp_dim=64, num_classes=10)\n"
    "images = vitlib.load_dataset('translated_digits', canvas_size=12).x_test[:4]\n"
    "widgets.AttentionExplorer({'model': model, 'control': analysis.untrained_copy(model, 1)}, images)",
]
SHOTS = ROOT / "build" / "browser"


KERNEL_IDLE = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
    return !!kernel && kernel.status === 'idle' && panel.content && panel.content.widgets.length > 0;
}"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    work = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, work / NOTEBOOK)  # JupyterLab saves: never touch the committed copy
    import nbformat

    explorers = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in EXPLORER_CELLS])
    explorers.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nbformat.write(explorers, work / EXPLORERS)
    port = free_port()
    config = work / "jupyter_test_config.py"
    config.write_text(
        "from jupyterlab.galata import configure_jupyter_server\n"
        "configure_jupyter_server(c)\n"  # test-only server: no token, the app exposed to the page
        f"c.ServerApp.port = {port}\n"
        "c.ServerApp.ip = '127.0.0.1'\n"
        "c.ServerApp.allow_root = True\n"
        f"c.ServerApp.root_dir = {str(work)!r}\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    env.pop("MPLBACKEND", None)
    log = open(work / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", f"--config={config}"], cwd=work, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2)
            break
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("JupyterLab did not start:\n" + (work / "server.log").read_text()[-3000:])
            time.sleep(0.5)
    yield url
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def start_session(url, notebook):
    """Start the notebook's kernel session through the REST API, so that JupyterLab attaches to a running kernel
    instead of choosing one itself (its kernel dialog can otherwise interrupt the run). Sessions of earlier tests
    are shut down first: one notebook, one kernel at a time."""
    for session in json.load(urllib.request.urlopen(f"{url}/api/sessions", timeout=30)):
        urllib.request.urlopen(urllib.request.Request(f"{url}/api/sessions/{session['id']}", method="DELETE"), timeout=60)
    request = urllib.request.Request(f"{url}/api/sessions", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"path": notebook, "name": notebook, "type": "notebook",
                                                      "kernel": {"name": "python3"}}).encode())
    urllib.request.urlopen(request, timeout=60)


def dismiss_news(page):
    """JupyterLab's news toast can cover the outputs (and the screenshots): answer it."""
    news = page.get_by_role("button", name="No", exact=True)
    if news.count():
        news.first.click()


@contextlib.contextmanager
def notebook_page(url, notebook, shot):
    """A Chromium page with ``notebook`` open in JupyterLab after running it cell by cell; a screenshot on failure."""
    sync_api = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(parents=True, exist_ok=True)
    start_session(url, notebook)
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        try:
            page.goto(f"{url}/lab/tree/{notebook}?reset", timeout=120_000)  # reset: no tabs of earlier tests
            page.wait_for_function("window.jupyterapp !== undefined && window.galata !== undefined", timeout=120_000)
            page.wait_for_selector(".jp-Notebook", timeout=120_000)
            dismiss_news(page)
            # Run the notebook once its kernel is idle, cell by cell with Galata's in-page helper (awaits each cell).
            page.wait_for_function(KERNEL_IDLE, timeout=240_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
            page.evaluate("() => { window.galata.app; window.galata.runActiveNotebookCellByCell()"
                          ".then(() => { window.__ran = true; },"
                          " (e) => { window.__ran = String(e); }); }")
            deadline = time.time() + 300
            while page.evaluate("window.__ran === undefined"):
                if page.locator(".jp-Dialog select").count():  # "Select Kernel": keep the session we started
                    select = page.locator(".jp-Dialog select").first
                    running = [t for t in select.locator("option").all_inner_texts() if t.startswith(notebook)]
                    assert running, "JupyterLab asked for a kernel and our session is not offered"
                    select.select_option(label=running[0])
                    page.locator(".jp-Dialog button.jp-mod-accept").first.click()
                assert time.time() < deadline, "the notebook did not finish running in 300 s"
                time.sleep(0.5)
            assert page.evaluate("window.__ran") is True, page.evaluate("window.__ran")
            yield page
            assert page.locator("text=Error displaying widget").count() == 0
            assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                                has_text="Traceback").count() == 0
            dismiss_news(page)
            page.screenshot(path=str(SHOTS / shot))
        except Exception:
            page.screenshot(path=str(SHOTS / f"failure_{shot}"))
            raise
        finally:
            browser.close()


IMAGE_SIZES = """() => [...document.querySelectorAll('img.widget-image')].filter(i => i.naturalWidth > 0).map(i => {
    const box = i.getBoundingClientRect();
    return [box.width, box.height, i.naturalWidth, i.naturalHeight];
})"""


def assert_pictures_at_their_own_size(page):
    sizes = page.evaluate(IMAGE_SIZES)
    assert sizes, "no widget picture on the page"
    for shown_w, shown_h, natural_w, natural_h in sizes:  # not stretched to the output's width
        assert abs(shown_w - natural_w) <= 1 and abs(shown_h - natural_h) <= 1, sizes


def test_patch_explorer_slider_rerenders_in_jupyterlab(jupyterlab):
    with notebook_page(jupyterlab, NOTEBOOK, "patch_explorer.png") as page:
        stats = page.locator(".widget-html-content", has_text="tokens of").first  # the photo's explorer
        stats.wait_for(timeout=240_000)
        assert "N = 196" in stats.text_content()
        digit = page.locator(".widget-html-content", has_text="28x28")  # the handwritten digit's explorer
        digit.wait_for(timeout=60_000)
        assert "N = 16" in digit.text_content() and "49 values" in digit.text_content()
        picture = page.locator("img.widget-image").first
        picture.wait_for(timeout=60_000)
        before = picture.get_attribute("src")

        handle = page.locator(".widget-slider .noUi-handle").first
        handle.scroll_into_view_if_needed()
        handle.focus()
        page.keyboard.press("ArrowRight")  # 16 -> 28 pixels: 8x8 = 64 tokens
        page.wait_for_function(
            "() => [...document.querySelectorAll('.widget-html-content')].some(e => e.textContent.includes('N = 64'))",
            timeout=60_000)
        page.wait_for_function(
            "(old) => document.querySelector('img.widget-image').getAttribute('src') !== old", arg=before,
            timeout=60_000)
        assert "N² = 4,096" in stats.text_content()
        page.get_by_text("[01.patchify]").wait_for(timeout=60_000)  # the last cell's fresh output
        feedback = page.locator(".vit-feedback-open")  # the four unanswered exercises, shown styled
        assert feedback.count() == 4 and "✎ Not answered yet" in feedback.first.text_content()
        feedback.first.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "exercise_feedback.png"))
        assert_pictures_at_their_own_size(page)
        stats.scroll_into_view_if_needed()


def test_notebook_07_explorers_rerender_on_clicks_in_jupyterlab(jupyterlab):
    with notebook_page(jupyterlab, EXPLORERS, "explorers.png") as page:
        similarity = page.locator(".widget-html-content", has_text="most similar other patch")
        similarity.wait_for(timeout=240_000)
        attention = page.locator(".widget-html-content", has_text="Colour scale")
        attention.wait_for(timeout=240_000)
        pictures = page.locator("img.widget-image")
        assert pictures.count() == 2
        before = [pictures.nth(i).get_attribute("src") for i in range(2)]
        assert_pictures_at_their_own_size(page)
        page.evaluate("window.jupyterapp.shell.activateById('filebrowser')")  # the file browser open, as a learner has it
        page.wait_for_timeout(500)

        buttons = [page.get_by_role("button", name=n, exact=True).bounding_box() for n in ("sin-cos", "random")]
        row_slider = page.locator(".widget-slider", has_text="row").first.bounding_box()
        assert buttons[0]["y"] == buttons[1]["y"]  # the model buttons on one row ...
        assert abs(row_slider["x"] - buttons[0]["x"]) < 120 and row_slider["y"] > buttons[0]["y"]  # ... sliders below
        page.get_by_role("button", name="random", exact=True).click()  # the similarity explorer's model toggle
        page.wait_for_function("(old) => document.querySelectorAll('img.widget-image')[0].getAttribute('src') !== old",
                               arg=before[0], timeout=60_000)

        assert attention.text_content().startswith("model, rollout")  # it opens on the view that finds the digit
        layer = page.locator(".widget-slider", has_text="layer").locator(".noUi-handle")
        layer.scroll_into_view_if_needed()
        layer.click()
        cell = page.evaluate(ACTIVE_CELL)
        page.keyboard.press("ArrowLeft")  # the rollout, the last stop -> layer 2
        page.wait_for_function(READOUT_STARTS, arg="model, layer 2, head mean", timeout=60_000)
        assert page.evaluate(ACTIVE_CELL) == cell  # the slider kept the arrow key
        page.wait_for_function("(old) => document.querySelectorAll('img.widget-image')[1].getAttribute('src') !== old",
                               arg=before[1], timeout=60_000)
        page.keyboard.press("ArrowRight")  # back to the rollout
        page.wait_for_function(READOUT_STARTS, arg="model, rollout", timeout=60_000)
        scale = colour_scale(attention.text_content())
        picture = pictures.nth(1).get_attribute("src")
        page.get_by_role("button", name="control", exact=True).click()
        page.wait_for_function(READOUT_STARTS, arg="control, rollout", timeout=60_000)
        page.wait_for_function("(old) => document.querySelectorAll('img.widget-image')[1].getAttribute('src') !== old",
                               arg=picture, timeout=60_000)
        assert colour_scale(attention.text_content()) == scale  # one colour scale across the model toggle
        attention.scroll_into_view_if_needed()
        assert_pictures_at_their_own_size(page)


READOUT_STARTS = "(text) => [...document.querySelectorAll('.widget-html-content')].some(e => e.textContent.startsWith(text))"
ACTIVE_CELL = "() => window.jupyterapp.shell.currentWidget.content.activeCellIndex"


def colour_scale(readout):
    """The colour scale an attention explorer's readout reports, e.g. '0 to 7.8%'."""
    found = re.search(r"Colour scale (0 to [\d.]+%)", readout)
    assert found, readout
    return found.group(1)
