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
