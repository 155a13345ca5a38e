"""The install works wherever the README says it does: every supported Python, with make and without it.

The supported Pythons are pyproject.toml's requires-python (3.11 to 3.13); constraints.txt (the lock) must resolve on
the lowest patch release of each, and on each side of its own python_full_version markers; a Python outside the
range gets one line saying which to install.
"""
import glob
import json
import os
import re
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
sys.path.insert(0, str(ROOT / "scripts"))
from check_lower_bounds import SMOKE  # noqa: E402
from check_python import problem, supported_range  # noqa: E402
from lock import locked_versions  # noqa: E402

LOW, HIGH = supported_range((ROOT / "pyproject.toml").read_text())  # (3, 11), (3, 14)
MINORS = [f"{LOW[0]}.{minor}" for minor in range(LOW[1], HIGH[1])]
CONSTRAINTS = (ROOT / "constraints.txt").read_text()
# the lowest patch release of every supported minor version, and both sides of every marker in the lock
BOUNDARIES = sorted(set(re.findall(r'python_full_version\s*[<>=]+\s*"([0-9.]+)"', CONSTRAINTS)))
VERSIONS = sorted({f"{minor}.0" for minor in MINORS} | set(BOUNDARIES), key=lambda v: tuple(map(int, v.split("."))))
# Where the README says it installs. macOS: Apple silicon from macOS 14 (PyTorch 2.13's wheels); TensorFlow 2.21 has
# none for Intel Macs.
PLATFORMS = {"linux-x86_64": ("x86_64-manylinux_2_28", {}), "linux-aarch64": ("aarch64-manylinux_2_28", {}),
             "windows-x86_64": ("x86_64-pc-windows-msvc", {}),
             "macos-arm64": ("aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "14.0"})}


def uv():
    path = shutil.which("uv", path=str(Path(sys.executable).parent))
    assert path, f"uv is not installed next to {sys.executable}: make lab installs it into .venv"
    return path


def compile_lock(tmp_path, python_version, platform="linux-x86_64", requirements=None, expect_failure=False):
    """``uv pip compile`` of what the Makefile installs (vitlib with its lab, dev and site extras, and PyTorch), held
    to constraints.txt, for one Python and platform: a resolve only, no wheel downloaded. From uv's cache where that
    answers (about 1 s; asking PyPI again for every package's index takes about 10 s), else from PyPI.
    ``expect_failure``: a failure from the cache counts unless it is for want of a file that is not there."""
    if requirements is None:
        requirements = [str(ROOT / "pyproject.toml"), "--extra", "lab", "--extra", "dev", "--extra", "site"]
    (tmp_path / "torch.txt").write_text("torch\n")  # its version: the lock's
    target, env = PLATFORMS[platform]
    command = [uv(), "pip", "compile", *requirements, str(tmp_path / "torch.txt"), "-c", str(ROOT / "constraints.txt"),
               "--python-version", python_version, "--python-platform", target, "--no-header", "--no-annotate", "--quiet"]
    run = subprocess.run(command + ["--offline"], capture_output=True, text=True, timeout=600, env={**os.environ, **env})
    if run.returncode != 0 and (not expect_failure or "network was disabled" in run.stderr):  # ask PyPI
        run = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, **env})
    return run


def marker_environment(python_full_version):
    return {"python_full_version": python_full_version, "python_version": ".".join(python_full_version.split(".")[:2])}


@pytest.mark.parametrize("platform", list(PLATFORMS))
@pytest.mark.parametrize("python_version", VERSIONS)
def test_the_locked_install_resolves_on_every_supported_python(tmp_path, python_version, platform):
    run = compile_lock(tmp_path, python_version, platform)
    assert run.returncode == 0, f"Python {python_version} on {platform}:\n{run.stderr[-3000:]}"
    resolved = dict(line.split("==", 1) for line in run.stdout.splitlines() if "==" in line)
    resolved = {name.lower().replace("_", "-"): version.split(" ")[0] for name, version in resolved.items()}
    locked = locked_versions(CONSTRAINTS, marker_environment(python_version))
    for name in ("tensorflow", "keras", "numpy", "jax", "torch", "jupyterlab", "soupsieve", "pymdown-extensions"):
        assert resolved[name] == locked[name], (name, resolved[name], locked[name])


@pytest.mark.parametrize("python_version", [f"{LOW[0]}.{LOW[1] - 1}.0", f"{HIGH[0]}.{HIGH[1]}.0"])
def test_the_lock_does_not_resolve_just_outside_requires_python(tmp_path, python_version):
    # requires-python says the truth: the lock itself (without vitlib's own requires-python) fails right outside it.
    # When it resolves on the next Python, widen requires-python in pyproject.toml and smoke-test there.
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    deps = project["dependencies"] + extras["lab"] + extras["site"] + [d for d in extras["dev"] if "vitlib" not in d]
    (tmp_path / "deps.txt").write_text("\n".join(deps) + "\n")
    run = compile_lock(tmp_path, python_version, requirements=[str(tmp_path / "deps.txt")], expect_failure=True)
    assert run.returncode != 0, f"the lock resolves on Python {python_version}: widen requires-python"
    assert "No solution found" in run.stderr and "Python" in run.stderr, run.stderr[-3000:]  # not a network failure


FAKE_PYTHON = """#!/bin/sh
exec {python} -c "import runpy, sys; sys.version_info = {version}; sys.argv = sys.argv[1:]; \
runpy.run_path(sys.argv[0], run_name='__main__')" "$@"
"""


def fake_python(tmp_path, version):
    """An executable that runs a script like a Python of that version would (sys.version_info replaced)."""
    path = tmp_path / f"python{version[0]}.{version[1]}"
    path.write_text(FAKE_PYTHON.format(python=sys.executable, version=(*version, "final", 0)))
    path.chmod(0o755)
    return path


def test_a_python_outside_requires_python_is_told_in_one_line_which_to_install():
    newest = f"{HIGH[0]}.{HIGH[1] - 1}"
    for version in (LOW + (0,), (HIGH[0], HIGH[1] - 1, 9)):
        assert problem(version, LOW, HIGH) is None
    for version in ((LOW[0], LOW[1] - 1, 13), HIGH + (0,), (2, 7, 18)):
        without_make = problem(version, LOW, HIGH)
        with_make = problem(version, LOW, HIGH, "python3", ".venv")
        for line in (without_make, with_make):
            assert "\n" not in line and f"Python {'.'.join(map(str, version))};" in line
            assert f"need Python {LOW[0]}.{LOW[1]} to {newest}. Install Python {newest} " in line
        assert without_make.endswith(f"python{newest} -m venv .venv (on Windows: py -{newest} -m venv .venv)")
        assert with_make.startswith("python3 is ") and with_make.endswith(f", delete .venv and run make again with "
                                                                         f"PYTHON=python{newest}")


def test_check_python_runs_on_old_pythons_and_says_one_line(tmp_path):
    # the script's whole point is an old Python: it must not stop at a syntax error there
    pythons = [fake_python(tmp_path, HIGH + (0,))]
    pythons += [p for p in glob.glob(os.path.expanduser(os.environ.get("PYENV_ROOT", "~/.pyenv")) + "/versions/*/bin/python")
                if re.search(r"/versions/(2\.7|3\.[0-9]|3\.10)\.", p)]
    for python in pythons:
        run = subprocess.run([str(python), str(ROOT / "scripts" / "check_python.py")], capture_output=True, text=True,
                             timeout=60)
        assert run.returncode == 1 and run.stdout == "", (python, run.stdout, run.stderr)
        assert len(run.stderr.splitlines()) == 1 and "Install Python" in run.stderr, (python, run.stderr)
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_python.py")], capture_output=True, text=True,
                         timeout=60)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_with_an_unsupported_python_stops_with_one_line_before_installing(tmp_path):
    python = fake_python(tmp_path, HIGH + (0,))
    venv = tmp_path / "venv"
    run = subprocess.run(["make", "--no-print-directory", f"VENV={venv}", f"PYTHON={python}", f"{venv}/.installed"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and run.stdout == "", run.stdout
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert f"{python} is Python {HIGH[0]}.{HIGH[1]}.0;" in run.stderr
    assert f"run make again with PYTHON=python{HIGH[0]}.{HIGH[1] - 1}" in run.stderr
    assert not venv.exists()


def readme_commands_without_make():
    """The code block after the README's "Without `make`" paragraph, one command per line."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^Without `make`.*?\n```bash\n(.*?)```", readme, re.S | re.M)
    assert match, "README.md: no ```bash block after the paragraph starting 'Without `make`'"
    return [line for line in match[1].splitlines() if line.strip()]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_of_the_repository(destination):
    """The working tree's files that git does not ignore: a fresh clone, with this checkout's changes."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout
    for name in filter(None, files.split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def test_the_readme_commands_without_make_install_and_open_jupyterlab(tmp_path):
    # Runs the README's lines as written, in order, in a copy of the repository, with the python3 on PATH and the
    # machine's pip configuration. JupyterLab's line runs until it serves: a configuration file (not the command line)
    # picks the port and token, no browser, and allows root; then the test asks the server for the notebooks folder.
    commands = readme_commands_without_make()
    assert len(commands) == 5 and "venv .venv" in commands[1] and "jupyter lab notebooks/" in commands[-1], commands
    assert all("-c constraints.txt" in c for c in commands if "pip install" in c), commands
    repo = tmp_path / "repo"
    copy_of_the_repository(repo)
    config, port = tmp_path / "jupyter", free_port()
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {
        "port": port, "port_retries": 0, "ip": "127.0.0.1", "token": "secret", "open_browser": False, "allow_root": True}}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("VIRTUAL_ENV", None)
    for command in commands[:-1]:
        run = subprocess.run(command, shell=True, cwd=repo, env=env, capture_output=True, text=True, timeout=1800)
        assert run.returncode == 0, f"{command}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        if "check_python" in command:
            assert run.stdout + run.stderr == ""
    locked = locked_versions(CONSTRAINTS, marker_environment(
        subprocess.run([str(repo / ".venv/bin/python"), "-c", "import platform; print(platform.python_version())"],
                       capture_output=True, text=True, check=True).stdout.strip()))
    versions = subprocess.run([str(repo / ".venv/bin/python"), "-c", "import importlib.metadata as m; print(*(m.version(n) "
                               "for n in ('tensorflow', 'keras', 'torch', 'jupyterlab', 'soupsieve')))"],
                              capture_output=True, text=True, check=True).stdout.split()
    assert [v.split("+")[0] for v in versions] == [locked[n] for n in ("tensorflow", "keras", "torch", "jupyterlab",
                                                                       "soupsieve")]
    server = subprocess.Popen(commands[-1], shell=True, cwd=repo, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline, listing = time.time() + 180, None
        while time.time() < deadline and server.poll() is None and listing is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token=secret", timeout=5) as r:
                    listing = r.read().decode()
            except OSError:
                time.sleep(1)
        assert server.poll() is None, f"{commands[-1]} stopped:\n{server.stdout.read()}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token=secret", timeout=30) as r:
            assert r.status == 200 and "JupyterLab" in r.read().decode()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=60)
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert listing is not None and all(f'"name": "{name}"' in listing for name in notebooks), listing


def python_of(minor):
    """An interpreter of that minor version on this machine (PATH, pyenv), or None."""
    candidates = [shutil.which(f"python{minor}")]
    candidates += sorted(glob.glob(os.path.expanduser(os.environ.get("PYENV_ROOT", "~/.pyenv"))
                                   + f"/versions/{minor}.*/bin/python{minor}"), reverse=True)
    for candidate in filter(None, candidates):
        run = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True)
        if run.returncode == 0 and run.stdout.strip() == minor:
            return candidate
    return None


def test_the_newest_supported_python_installs_builds_and_trains_a_vit(tmp_path):
    # vitlib's own dependencies (no lab extra, no PyTorch), held to the lock, then the lower-bound check's smoke run:
    # import, build a ViT, one training epoch, save and reload.
    newest = MINORS[-1]
    python = python_of(newest)
    if python is None:
        pytest.skip(f"no Python {newest} on this machine (PATH or pyenv)")
    venv = tmp_path / "venv"
    subprocess.run([uv(), "venv", "--quiet", "--python", python, str(venv)], check=True, timeout=120)
    run = subprocess.run([uv(), "pip", "install", "--quiet", "--python", str(venv / "bin/python"), "-c",
                          str(ROOT / "constraints.txt"), "-e", str(ROOT)], capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    names = ["tensorflow", "keras", "numpy", "scikit-learn"]
    run = subprocess.run([str(venv / "bin/python"), "-c", f"NAMES = {names!r}\n" + SMOKE], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600,
                         env={"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().endswith("lower bounds OK")  # SMOKE's last line: every check passed
    installed = eval(next(line for line in run.stdout.splitlines() if line.startswith("{")))
    full_version = subprocess.run([str(venv / "bin/python"), "-c", "import platform; print(platform.python_version())"],
                                  capture_output=True, text=True, check=True).stdout.strip()
    assert full_version.startswith(newest + ".")
    locked = locked_versions(CONSTRAINTS, marker_environment(full_version))
    assert installed == {name: locked[name] for name in names}
