"""A real browser: JupyterLab on localhost, driven by Debian's Chromium through Playwright.

Opens notebook 01, runs all cells, moves the patch explorer's slider with the keyboard, and checks that the
widget re-renders (token count and picture change) and that no widget shows an error. Keeps a screenshot in
build/browser/.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.tensorflow_only

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "01_images_as_words.ipynb"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
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
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium package.")
    work = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, work / NOTEBOOK)  # JupyterLab saves: never touch the committed copy
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
    # Start the notebook's kernel session through the REST API, so that JupyterLab attaches to a running kernel
    # instead of choosing one itself (its kernel dialog can otherwise interrupt the run).
    request = urllib.request.Request(f"{url}/api/sessions", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"path": NOTEBOOK, "name": NOTEBOOK, "type": "notebook",
                                                      "kernel": {"name": "python3"}}).encode())
    urllib.request.urlopen(request, timeout=60)
    yield url
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def test_patch_explorer_slider_rerenders_in_jupyterlab(jupyterlab):
    sync_api = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{jupyterlab}/lab/tree/{NOTEBOOK}", timeout=120_000)
            page.wait_for_function("window.jupyterapp !== undefined && window.galata !== undefined", timeout=120_000)
            page.wait_for_selector(".jp-Notebook", timeout=120_000)
            news = page.get_by_role("button", name="No")  # JupyterLab's news toast can cover the outputs
            if news.count():
                news.first.click()
            # Run the notebook once its kernel is idle, cell by cell with Galata's in-page helper (awaits each cell).
            page.wait_for_function(KERNEL_IDLE, timeout=240_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
            page.evaluate("() => { window.galata.app; window.galata.runActiveNotebookCellByCell().then(() => { window.__ran = true; },"
                          " (e) => { window.__ran = String(e); }); }")
            deadline = time.time() + 300
            while page.evaluate("window.__ran === undefined"):
                if page.locator(".jp-Dialog select").count():  # "Select Kernel": keep the session we started
                    select = page.locator(".jp-Dialog select").first
                    running = [t for t in select.locator("option").all_inner_texts() if t.startswith(NOTEBOOK)]
                    assert running, "JupyterLab asked for a kernel and our session is not offered"
                    select.select_option(label=running[0])
                    page.locator(".jp-Dialog button.jp-mod-accept").first.click()
                assert time.time() < deadline, "the notebook did not finish running in 300 s"
                time.sleep(0.5)
            assert page.evaluate("window.__ran") is True, page.evaluate("window.__ran")

            stats = page.locator(".widget-html-content", has_text="tokens of")
            stats.wait_for(timeout=240_000)
            assert "N = 196" in stats.inner_text()
            picture = page.locator("img.widget-image").first
            picture.wait_for(timeout=60_000)
            before = picture.get_attribute("src")

            handle = page.locator(".widget-slider .noUi-handle").first
            handle.scroll_into_view_if_needed()
            handle.focus()
            page.keyboard.press("ArrowRight")  # 16 -> 28 pixels: 8x8 = 64 tokens
            page.wait_for_function(
                "() => [...document.querySelectorAll('.widget-html-content')].some(e => e.innerText.includes('N = 64'))",
                timeout=60_000)
            page.wait_for_function(
                "(old) => document.querySelector('img.widget-image').getAttribute('src') !== old", arg=before,
                timeout=60_000)
            assert "N² = 4,096" in stats.inner_text()
            page.get_by_text("[01.patchify]").wait_for(timeout=60_000)  # the last cell's fresh output
            assert page.locator("text=Error displaying widget").count() == 0
            assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                                has_text="Traceback").count() == 0
            stats.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "patch_explorer.png"))
        except Exception:
            page.screenshot(path=str(SHOTS / "failure.png"))
            raise
        finally:
            browser.close()
