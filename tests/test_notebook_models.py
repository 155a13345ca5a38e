"""Notebook 07's committed models against their manifest and their recipe (and notebook 10's against their logits).

The notebook loads twelve small ViTs from notebooks/models/07, each trained by the one command its manifest lists.
The first tests check that the files are what the manifest says (their test accuracy and locality gap, measured
again here) and that they load and compute what they computed for the code that trained them; the last retrains
one of them from its command and checks it against the manifest, within the spread
of the seeds, so that neither the models nor the recipe can drift from each other unnoticed.
"""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "notebooks" / "models" / "07"
MANIFEST = json.loads((MODELS / "MANIFEST.json").read_text())
RUNS = {(run["arm"], run["seed"]): run for run in MANIFEST["runs"]}

pytestmark = pytest.mark.tensorflow_only  # trained and measured with TensorFlow, as the notebook runs


def position_table(keras_file):
    """The position embeddings of a saved vitlib ViT, read from the .keras zip without Keras, by the reader the
    README's figure script uses (scripts/readme_figure.py)."""
    spec = importlib.util.spec_from_file_location("readme_figure", ROOT / "scripts" / "readme_figure.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script.position_table(keras_file)


def gap_and_curve(table, grid=(6, 6)):
    from vitlib.inspection import analysis

    similarity = analysis.position_similarity(table, grid, num_prefix_tokens=1)
    return analysis.locality_gap(similarity), analysis.similarity_by_distance(similarity)[1]


def test_manifest_lists_every_arm_and_seed_with_one_command_each():
    assert sorted(RUNS) == sorted((arm, seed) for arm in ("translated", "centred", "shifted", "shuffled") for seed in (0, 1, 2))
    for (arm, seed), run in RUNS.items():
        assert run["command"].startswith("python -m vitlib.train --recipe translated_digits_patches")
        assert run["command"].endswith(f"--seed {seed} --out notebooks/models/07/{arm}_{seed}")
        assert {"last.keras", "history.csv", "metrics.json", "layout.npz"} <= {p.name for p in (MODELS / run["folder"]).iterdir()}


@pytest.mark.parametrize("arm", ["translated", "centred", "shifted", "shuffled"])
def test_committed_models_have_the_accuracy_and_gap_their_manifest_says(arm):
    import keras

    from vitlib.data import datasets
    from vitlib.training import fitting

    for seed in (0, 1, 2):
        run = RUNS[arm, seed]
        folder = MODELS / run["folder"]
        gap, _ = gap_and_curve(position_table(folder / "last.keras"))
        assert gap == pytest.approx(run["locality_gap"], abs=5e-4)  # the table the history's last row measured
        model = keras.saving.load_model(folder / "last.keras")
        test = datasets.load_dataset("centred_digits" if arm == "centred" else "translated_digits", seed=seed, canvas_size=12)
        measured = fitting.accuracy(model, test.x_test, test.y_test)
        assert abs(measured - run["test_accuracy"]) <= 2 / len(test.y_test)  # float rounding may move an image


def test_committed_models_give_the_logits_of_the_code_that_trained_them():
    """tests/fixtures/notebook07_logits.npz holds each model's logits on 8 random images, computed by vitlib at 8afa0e1
    (which trained them, with the hand-written LayerNorm and GELU in the model). The models load with plain Keras and
    give those logits to float32 rounding (Keras' LayerNorm and GELU compute the same functions in other steps), and
    so do they with the speed layer's LayerNorm and GELU swapped in: the same steps as the code that trained them, yet
    not the same bits, since the fixture was computed on another CPU (another CPU's kernels round differently)."""
    import keras

    from vitlib.speed import gradients

    reference = np.load(ROOT / "tests" / "fixtures" / "notebook07_logits.npz")
    images = reference["images"]
    for arm, seed in sorted(RUNS):
        folder = RUNS[arm, seed]["folder"]
        model = keras.saving.load_model(MODELS / folder / "last.keras")
        logits = keras.ops.convert_to_numpy(model(images, training=False))
        np.testing.assert_allclose(logits, reference[folder], rtol=1e-5, atol=2e-5, err_msg=folder)
        assert (logits.argmax(-1) == reference[folder].argmax(-1)).all()
        swapped = keras.ops.convert_to_numpy(gradients.swap_in(model)(images, training=False))
        # float32 tolerance: the fixture comes from another machine, whose kernels round the last bits differently
        np.testing.assert_allclose(swapped, reference[folder], rtol=1e-5, atol=2e-5, err_msg=folder)
        assert (swapped.argmax(-1) == reference[folder].argmax(-1)).all()


def test_notebook_10s_models_give_the_logits_of_the_code_that_trained_them():
    """Notebook 10 loads nine more models from notebooks/models/10 (scripts/train_beyond_models.py trained them, with
    the hand-written LayerNorm and GELU then part of the model). tests/fixtures/notebook10_logits.npz holds their
    logits on 8 random 24x24 images, computed by vitlib before its layout changed (7172ae8): they load with plain
    Keras and give those logits to float32 rounding, the MAE models' ViT included."""
    import keras

    reference = np.load(ROOT / "tests" / "fixtures" / "notebook10_logits.npz")
    names = sorted(p.stem for p in (ROOT / "notebooks" / "models" / "10").glob("*.keras"))
    assert names == sorted(k for k in reference.files if k != "images") and len(names) == 9
    for name in names:
        model = keras.saving.load_model(ROOT / "notebooks" / "models" / "10" / f"{name}.keras")
        vit = getattr(model, "vit", model)  # a MaskedAutoencoder holds the ViT it pre-trained
        logits = keras.ops.convert_to_numpy(vit(reference["images"], training=False))
        np.testing.assert_allclose(logits, reference[name], rtol=1e-5, atol=2e-5, err_msg=name)
        assert (logits.argmax(-1) == reference[name].argmax(-1)).all()


def test_the_translated_recipe_retrained_from_its_command_matches_the_manifest(tmp_path):
    """The issue's bar: seed 0 of notebook 07's recipe reaches >= 85 % test accuracy, its position embeddings fall in
    similarity over distances 1, 2, 3 with a locality gap >= 0.30, and both lie within the seeds' spread of the
    manifest (plus a margin for another CPU's rounding). About 4 minutes on 2 cores."""
    run = RUNS["translated", 0]
    command = run["command"].split()[3:-2] + ["--out", str(tmp_path / "run"), "--verbose", "0"]
    done = subprocess.run([sys.executable, "-m", "vitlib.train", *command], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    gap, curve = gap_and_curve(position_table(tmp_path / "run" / "last.keras"))
    assert metrics["test_accuracy"] >= 0.85 and gap >= 0.30 and curve[0] > curve[1] > curve[2], (metrics, gap, curve)
    seeds = [RUNS["translated", s] for s in (0, 1, 2)]
    for key, value, margin in (("test_accuracy", metrics["test_accuracy"], 0.03), ("locality_gap", gap, 0.05)):
        values = [r[key] for r in seeds]
        spread = max(values) - min(values)
        assert abs(value - run[key]) <= spread + margin, (key, value, values)
    history = np.genfromtxt(tmp_path / "run" / "history.csv", delimiter=",", names=True)
    assert len(history) == 120 and history["locality_gap"][-1] == pytest.approx(gap, abs=5e-4)
