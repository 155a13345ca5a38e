"""The notebooks' surface: code cells fit 100 characters a line, so nothing scrolls sideways in JupyterLab at
1366 px with the file browser open, or on the site."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LONGEST_LINE = 100

pytestmark = pytest.mark.backend_independent  # reads the notebooks' JSON, runs nothing


def long_lines(path):
    """(cell index, line number from 1, length, line) of every code-cell line over LONGEST_LINE characters."""
    found = []
    for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        if cell["cell_type"] != "code":
            continue
        for number, line in enumerate("".join(cell["source"]).split("\n"), start=1):
            if len(line) > LONGEST_LINE:
                found.append((index, number, len(line), line))
    return found


def test_there_are_notebooks_to_check():
    assert len(NOTEBOOKS) >= 10


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_no_code_line_is_longer_than_100_characters(path):
    found = long_lines(path)
    assert not found, f"{path.name}: {len(found)} code lines over {LONGEST_LINE} characters:\n" + "\n".join(
        f"  {path.name} cell {index} line {number} ({length} characters): {line}"
        for index, number, length, line in found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_no_committed_output_is_a_stderr_stream(path):
    """A learner reads red stderr text as a failure: TensorFlow's C++ log lines must not reach a notebook."""
    found = [(index, "".join(out.get("text", ""))[:200])
             for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"])
             for out in cell.get("outputs", []) if out.get("name") == "stderr"]
    assert not found, f"{path.name}: stderr output in cells {found}"


@pytest.mark.tensorflow_only
def test_cpp_lines_stay_out_of_a_notebook_while_python_warnings_show():
    """In a kernel, after `import vitlib` with TF_CPP_MIN_LOG_LEVEL=2 as every notebook sets it, what is written to
    file descriptor 2 (where TensorFlow's C++ layer logs, whatever its level) is dropped, and Python's own stderr
    (warnings, tracebacks) still reaches the learner."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in (
        'import os\nos.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")\nimport vitlib',
        'import sys, warnings\nos.write(2, b"E0000 a C++ log line\\n")\nwarnings.warn("a Python warning")',
    )])
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    streams = "".join(out.get("text", "") for cell in notebook.cells for out in cell.outputs)
    assert "a Python warning" in streams and "E0000" not in streams
