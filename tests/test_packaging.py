import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def names(requirements):
    return {re.split(r"[<>=\[;~! ]", r.strip(), maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def environment_pip_list():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "- pip:")
    items = [l.strip()[2:] for l in lines[start + 1:] if l.strip().startswith("- ")]
    return [i for i in items if not i.startswith("-e")]


def test_environment_yml_installs_the_same_packages_as_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert sorted(environment_pip_list()) == sorted(deps)
    assert {"tensorflow", "keras", "matplotlib", "ipywidgets", "jupyterlab", "nbval", "scikit-learn"} <= names(deps)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make lab" in readme
    assert ci.strip().splitlines()[-1] == "make test"


def test_python_m_vitlib_reports_backend_and_devices():
    out = subprocess.run([sys.executable, "-m", "vitlib"], capture_output=True, text=True, timeout=300, check=True).stdout
    assert re.search(r"keras\s+3\.\d+.*backend: (tensorflow|jax|torch)", out)
    assert re.search(r"^GPUs\s+\S", out, re.M)
