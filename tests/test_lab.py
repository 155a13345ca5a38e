"""`make lab`, the README's main command, starts JupyterLab, also for root (containers, cloud machines)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lab_serves_jupyterlab_on_localhost(tmp_path):
    port = free_port()
    bin_dir = Path(sys.executable).parent
    # The lab target's own command line, with this environment's JupyterLab; -o: the install step is done already.
    command = ["make", "--no-print-directory", "-o", ".venv/.installed", "lab", f"BIN={bin_dir}",
               f"LAB_OPTIONS=--no-browser --port={port} --ServerApp.token=secret --ServerApp.ip=127.0.0.1"]
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    try:
        deadline, answer = time.time() + 120, None
        while time.time() < deadline and server.poll() is None and answer is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token=secret", timeout=5) as r:
                    answer = r.status
            except OSError:
                time.sleep(0.5)
        assert server.poll() is None, f"make lab stopped:\n{server.stdout.read()}"
        assert answer == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
    # where to open it, with its token (JupyterLab prints a token it generated in full; ours, given, as "...")
    assert f"http://127.0.0.1:{port}/lab?token=" in output
    assert ("--allow-root" in output) == (os.getuid() == 0)  # make echoes the command it runs
