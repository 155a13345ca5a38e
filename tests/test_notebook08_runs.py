"""Notebook 08's saved runs (notebooks/models/08/runs.json, written by scripts/notebook08_runs.py) against the code.

The notebook reads its tables and curves from the saved rows and reruns a few runs live. These tests check that the
file holds every run the script makes, that each row's readings follow from its own curves (early stopping picks by
validation only), that the three saved 14x14 models score what their rows say, and that one short run, made again
here with the script's own function, gives its saved numbers: the rows, the models and the code cannot drift apart
unnoticed.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "notebooks" / "models" / "08"
ROWS = json.loads((FOLDER / "runs.json").read_text())

pytestmark = pytest.mark.tensorflow_only  # trained and measured with TensorFlow, as the notebook runs


def script():
    spec = importlib.util.spec_from_file_location("notebook08_runs", ROOT / "scripts" / "notebook08_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_run_of_the_script_is_saved_once():
    runs = script()
    keys = {"resolution": "arm", "data_size": ("model", "size"), "pooling": ("pool", "learning_rate")}
    found = {}
    for row in ROWS:
        key = keys[row["experiment"]]
        found.setdefault(row["experiment"], []).append(
            (row["seed"], *(row[k] for k in (key if isinstance(key, tuple) else (key,)))))
    assert sorted(found["data_size"]) == sorted((s, m, n) for s in runs.SEEDS for m in runs.DATA_MODELS
                                                for n in runs.SIZES)
    assert sorted(found["pooling"]) == sorted((s, p, r) for s in runs.SEEDS for p in ("token", "gap") for r in runs.RATES)
    assert len(found["resolution"]) == 7 * len(runs.SEEDS) == len(set(found["resolution"]))


def test_each_row_reads_its_own_curves_and_early_stopping_looks_only_at_validation():
    for row in ROWS:
        val, test = np.array(row["val_curve"]), np.array(row["test_curve"])
        assert len(val) == len(test) == row["epochs"]
        best = row["best_epoch"] - 1
        assert val[best] == val.max() and not (val[best + 1:] == val.max()).any()  # the last best epoch
        assert row["early_test"] == test[best] and row["last_test"] == test[-1]
        assert 0.05 < row["last_test"] <= 1


def test_the_saved_14x14_models_score_what_their_rows_say():
    import keras

    import vitlib  # noqa: F401  (registers the layers)
    from vitlib.data import datasets
    from vitlib.training import fitting

    small = datasets.load_dataset("mnist_5k", image_size=14)
    for row in (r for r in ROWS if r["experiment"] == "resolution" and r["arm"] == "at 14x14"):
        model = keras.saving.load_model(FOLDER / f"base14_{row['seed']}.keras")
        assert model.config.image_size in (14, (14, 14)) and model.config.patch_size in (7, (7, 7))
        # saved on another machine: its last bits may move an image or two across the decision boundary
        assert fitting.accuracy(model, small.x_test, small.y_test) == pytest.approx(row["last_test"], abs=2 / len(small.y_test))


def test_a_saved_run_made_again_gives_its_numbers():
    runs = script()
    from vitlib.data import datasets
    from vitlib.training import experiments

    data = datasets.load_dataset("mnist_5k")
    saved = next(r for r in ROWS if r["experiment"] == "data_size" and r["model"] == "ViT" and r["size"] == 250
                 and r["seed"] == 0)
    part = experiments.fraction_of(data, 250 / len(data.y_train), 0)
    row, _ = experiments.epoch_run(runs.DATA_MODELS["ViT"][0], part, 0, saved["epochs"])
    assert row["train_images"] == saved["train_images"]
    # The same code and seed; another CPU may differ in the last bits, which 20 epochs can grow to a point or two.
    np.testing.assert_allclose(row["val_curve"], saved["val_curve"], atol=0.03)
    assert row["last_test"] == pytest.approx(saved["last_test"], abs=0.03)


def test_the_scripts_vit_is_the_mnist_5k_recipes_model_with_plain_patches():
    from vitlib.training import recipes

    recipe = recipes.recipe("mnist_5k").model
    for vit, size, patch, stem in ((script().vit(), 28, 7, "patch"), (script().vit(14), 14, 7, "patch"),
                                   (script().DATA_MODELS["hybrid ViT"][0](0), 32, 8, "conv")):
        config = vit.config
        assert (config.image_size, config.patch_size, config.stem) in (((size, size), patch, stem),
                                                                       ((size, size), (patch, patch), stem))
        assert {k: getattr(config, k) for k in ("hidden_size", "depth", "num_heads", "mlp_dim")} == {
            k: recipe[k] for k in ("hidden_size", "depth", "num_heads", "mlp_dim")}
