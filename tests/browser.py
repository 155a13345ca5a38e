"""The browser the browser tests drive: Debian's Chromium where it is installed, else Playwright's own build.

`make test` installs one of the two (`make chromium`: apt-get where it can install Debian's package, else
`playwright install chromium`, e.g. on Ubuntu, whose chromium is a snap, or macOS).
"""
import shutil
from pathlib import Path

import pytest

SYSTEM_CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def launch(playwright):
    """A headless Chromium from ``playwright``'s sync API; a clear failure when neither browser is installed."""
    if Path(SYSTEM_CHROMIUM).exists():
        return playwright.chromium.launch(executable_path=SYSTEM_CHROMIUM, args=ARGS)
    try:
        return playwright.chromium.launch(args=ARGS)
    except Exception as error:  # Playwright's own browser not downloaded
        pytest.fail(f"No Chromium: neither {SYSTEM_CHROMIUM} nor Playwright's own build ({error.__class__.__name__}). "
                    "`make chromium` installs one (Debian's package, or `python -m playwright install chromium`).")
