import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def names(requirements):
    return {re.split(r"[<>=\[;~! ]", r.strip(), maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def environment_pip_list():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    items = [line.strip()[2:] for line in lines[start + 1:] if line.strip().startswith("- ")]
    return [i for i in items if not i.startswith("-e")]


@pytest.mark.backend_independent
def test_environment_yml_installs_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps, extras = project["dependencies"], project["optional-dependencies"]
    assert sorted(environment_pip_list()) == sorted(deps + extras["lab"])
    assert {"tensorflow", "keras", "numpy", "scikit-learn", "pillow", "safetensors", "mlxtend"} == names(deps)
    assert {"jupyterlab", "ipywidgets", "matplotlib", "ipykernel"} <= names(extras["lab"])
    assert {"nbval", "nbformat", "nbclient", "pytest", "ruff"} <= names(extras["dev"])


@pytest.mark.backend_independent
def test_every_third_party_import_of_vitlib_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = names(project["dependencies"] + project["optional-dependencies"]["lab"]
                     + project["optional-dependencies"]["dev"]) | {"torch", "jax"}  # torch: the Makefile's CPU build
    imports = set()
    for path in (ROOT / "vitlib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imports |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imports.add(node.module.split(".")[0])
    stdlib = set(sys.stdlib_module_names)
    aliases = {"PIL": "pillow", "sklearn": "scikit-learn", "IPython": "ipython"}
    third_party = {aliases.get(m, m).replace("_", "-") for m in imports - stdlib - {"vitlib"}}
    assert third_party - declared == set()


BLOCK_NOTEBOOK_PACKAGES = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('matplotlib', 'ipywidgets', 'jupyterlab', 'IPython', 'ipykernel'):
            raise ImportError(f'{name} is blocked: not installed')
sys.meta_path.insert(0, Block())
"""


@pytest.mark.backend_independent
def test_vitlib_works_without_the_notebook_packages():
    # As after `pip install vitlib` without the lab extra: the core, data and training import and run.
    code = BLOCK_NOTEBOOK_PACKAGES + (
        "import vitlib, vitlib.training.loop\n"
        "m = vitlib.build_vit(None, image_size=8, patch_size=4, hidden_size=8, depth=1, num_heads=2, mlp_dim=8, num_classes=3)\n"
        "print(tuple(m(vitlib.load_dataset('digits').x_test[:2].repeat(3, -1)).shape))\n"
        "try:\n    import vitlib.inspection.figures\nexcept ImportError as e:\n    print('plotting:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == ["(2, 3)", "plotting: matplotlib is blocked: not installed"]


@pytest.mark.backend_independent
def test_import_vitlib_leaves_plotting_and_widgets_for_later():
    code = ("import sys, vitlib; print([m for m in ('vitlib.inspection.figures', 'vitlib.inspection.widgets', 'ipywidgets')"
            " if m in sys.modules]); import vitlib.inspection.widgets; print('ipywidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True).stdout
    assert out.split() == ["[]", "True"]  # loaded on first use (Keras itself may import matplotlib when installed)


@pytest.mark.backend_independent
def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make lab" in readme
    assert ci.strip().splitlines()[-1] == "make test"


def test_python_m_vitlib_reports_backend_and_devices():
    out = subprocess.run([sys.executable, "-m", "vitlib"], capture_output=True, text=True, timeout=300, check=True).stdout
    assert re.search(r"keras\s+3\.\d+.*backend: (tensorflow|jax|torch)", out)
    assert re.search(r"^GPUs\s+\S", out, re.M)


@pytest.mark.backend_independent
def test_notebook_sources_hold_no_control_characters():
    # A LaTeX "\alpha" written in a non-raw Python string becomes BEL + "lpha": the formula then renders wrong.
    import json

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for number, cell in enumerate(json.loads(path.read_text())["cells"]):
            bad = sorted({hex(ord(c)) for c in "".join(cell["source"]) if ord(c) < 32 and c not in "\n\t"})
            assert not bad, f"{path.name} cell {number}: control characters {bad}"


@pytest.mark.backend_independent
def test_licence_citation_and_every_notebook_ends_with_its_references():
    import json

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]["text"]
    assert declared == "Apache-2.0" and "Apache License\n                           Version 2.0" in (ROOT / "LICENSE").read_text()
    citation = (ROOT / "CITATION.cff").read_text()
    for line in ("cff-version: 1.2.0", f"license: {declared}", 'url: "https://arxiv.org/abs/2010.11929"'):
        assert re.search(rf"^\s*{re.escape(line)}$", citation, re.M), line
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        text = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown")
        assert "## References" in text and "https://arxiv.org/abs/2010.11929" in text, path.name


@pytest.mark.backend_independent
def test_every_notebook_starts_with_a_tagged_parameters_cell_of_plain_assignments():
    import json

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        first = next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        assert first["metadata"].get("tags") == ["parameters"], path.name
        body = ast.parse("".join(first["source"])).body
        assert body and all(isinstance(node, ast.Assign) for node in body), path.name  # papermill overrides them

