"""Numbers computed on another machine are compared with a float32 tolerance, never bit for bit.

CPUs round the last bits differently (AVX-512 against AVX2 kernels: about 1e-6 on a logit), so a fixture, a saved
model's numbers or a notebook's saved output computed elsewhere can only be matched to float32 rounding. Exact
equality is kept for what is computed here, in the same run (the speed layer against the plain layer, a model before
and after saving). These tests list every such comparison the suite and the notebooks make, so a new one is read.
"""
import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.backend_neutral

EXACT = {"assert_array_equal", "assert_equal", "array_equal"}
# Names the tests give to numbers read from committed files: fixtures, manifests, saved runs and models' results.
FROM_ELSEWHERE = re.compile(r"\b(reference|fixture|saved|MANIFEST|RUNS|ROWS|manifest|run\[|row\[|expected_logits)\b")

# nbval compares these cells' saved outputs, which hold floats computed when the notebook was last run. Each is listed
# with why another CPU's last bits cannot change its printed digits (the unrounded values, measured once).
CHECKED_FLOATS = {
    ("03_position_embeddings", "image = vitlib.sample_image"):
        "logit changes 0.6422, 0.2219, 0.0595 lie >= 5e-5 from a rounding edge, 50x float32 noise; 'none' is 2e-6 "
        "against the 1e-5 threshold",
    ("03_position_embeddings", "def neighbour_similarity"):
        "similarities 0.9662, 0.7004, 0.9786, -0.0025, 0.0057: >= 2e-3 from a rounding edge",
    ("06_training", "for key, value in vars(config).items():"):
        "the recipe's settings (learning rate 0.003, weight decay 0.05): constants, not computed",
    ("05_vision_transformer", "# A softmax head"):
        "losses of fixed logits (20.00, 16.12 = -ln 1e-7) and standard deviations over thousands of values, "
        ">= 1e-3 from a rounding edge",
}


def test_no_test_compares_numbers_from_another_machine_bit_for_bit():
    found = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in EXACT:
                arguments = " ".join(ast.get_source_segment(source, a) or "" for a in node.args)
                line = source.splitlines()[node.lineno - 1]
                if FROM_ELSEWHERE.search(arguments) and "# computed here" not in line:
                    found.append(f"{path.name}:{node.lineno}: {arguments}")
    assert not found, "compare these with a float32 tolerance (assert_allclose), not bit for bit:\n" + "\n".join(found)


def checked_cells_with_floats():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if "nbval-check-output" not in cell.get("metadata", {}).get("tags", []):
                continue
            text = json.dumps(cell.get("outputs", []))
            if re.search(r"(?<![\d.e-])-?\d+\.\d{2,}(?![\d.])", text):  # two or more decimals: a computed float
                yield path.stem, "".join(cell["source"]).strip()


def test_every_nbval_checked_float_is_listed_with_why_it_is_stable_across_cpus():
    listed = set(CHECKED_FLOATS)
    found = {(notebook, key) for notebook, source in checked_cells_with_floats()
             for (name, key) in listed if name == notebook and source.startswith(key)}
    unlisted = [(notebook, source.splitlines()[0]) for notebook, source in checked_cells_with_floats()
                if not any(name == notebook and source.startswith(key) for name, key in listed)]
    assert not unlisted, ("nbval compares floats in these cells; print them at a precision another CPU cannot change "
                          f"and list them in CHECKED_FLOATS with the reason: {unlisted}")
    assert found == listed, f"listed but no longer checked or printing floats: {listed - found}"
