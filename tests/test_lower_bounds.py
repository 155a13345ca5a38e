"""Versions: the lower bounds pyproject.toml claims still work, and constraints.txt (the lock) is what is installed."""
import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.backend_independent
def test_the_installed_versions_are_the_locked_ones():
    # `make lab` and `make test` install with -c constraints.txt: the versions that produced the committed outputs,
    # those with a python_full_version marker as it says for this Python (older ones for 3.11.0 to 3.11.4).
    sys.path.insert(0, str(ROOT / "scripts"))
    from lock import locked_versions

    locked = locked_versions((ROOT / "constraints.txt").read_text())
    assert {"tensorflow", "keras", "numpy", "jax", "torch", "jupyterlab", "nbval", "mkdocs-jupyter"} <= set(locked)
    installed = {d.metadata["Name"].lower().replace("_", "-"): d.version for d in importlib.metadata.distributions()}
    for name in ("tensorflow", "keras", "numpy", "scikit-learn", "jax", "torch", "jupyterlab", "ipywidgets",
                 "matplotlib", "nbval", "transformers", "soupsieve", "pymdown-extensions"):
        assert installed[name].split("+")[0] == locked[name], (name, installed[name], locked[name])


@pytest.mark.backend_independent
def test_the_lower_bounds_of_the_runtime_dependencies_work():
    # scripts/check_lower_bounds.py installs the oldest release line of every runtime dependency pyproject.toml allows
    # (tensorflow 2.16, keras 3.8, ...) into build/lower-bounds, then builds, trains, saves and reloads a ViT there.
    sys.path.insert(0, str(ROOT / "scripts"))
    from check_lower_bounds import lower_bounds

    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_lower_bounds.py")], capture_output=True,
                         text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert run.stdout.strip().endswith("lower bounds OK")
    installed = ast.literal_eval(next(line for line in run.stdout.splitlines() if line.startswith("{")))
    for pin in lower_bounds():  # e.g. "keras>=3.8,<3.9": the venv really has a 3.8 release
        name, bounds = pin.split(">=")
        low, high = bounds.split(",<")
        version = tuple(int(p) for p in re.findall(r"\d+", installed[name])[:len(low.split("."))])
        assert tuple(map(int, low.split("."))) <= version < tuple(map(int, high.split("."))), (name, installed[name])
