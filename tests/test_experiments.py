"""vitlib.training.experiments: the runs of notebook 08, under one budget, collected in a tidy table."""
import numpy as np
import pytest

import vitlib
from vitlib.data import datasets
from vitlib.training import experiments, fitting

TINY = dict(image_size=8, channels=1, num_classes=10, patch_size=2, hidden_size=16, depth=1, num_heads=2, mlp_dim=16)


def tiny_vit(**kw):
    return vitlib.build_vit(None, **{**TINY, **kw})


@pytest.mark.backend_independent
def test_fraction_of_keeps_each_class_share_and_nests_smaller_fractions():
    d = datasets.load_dataset("digits")
    tenth, half = experiments.fraction_of(d, 0.1, seed=1), experiments.fraction_of(d, 0.5, seed=1)
    counts = np.bincount(d.y_train, minlength=10)
    np.testing.assert_array_equal(np.bincount(tenth.y_train, minlength=10), np.round(0.1 * counts))
    rows = lambda part: {row.tobytes() for row in part.x_train}  # noqa: E731
    assert rows(tenth) <= rows(half) and len(tenth.y_train) < len(half.y_train)
    assert tenth.x_test is d.x_test and len(tenth.y_val) == len(d.y_val)
    assert len(experiments.fraction_of(d, 0.001).y_train) == 10  # at least one image per class
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\], got 0"):
        experiments.fraction_of(d, 0)


def test_run_grid_equals_separate_runs_and_learns():
    d = datasets.load_dataset("digits")
    build = lambda seed: tiny_vit(patch_size=4)  # noqa: E731
    seen = []
    rows = experiments.run_grid({"vit": build}, d, fractions=(0.25, 1.0), seeds=(0, 1), steps=60,
                                progress=lambda done, total, row: seen.append((done, total, row["fraction"])))
    assert seen == [(1, 4, 0.25), (2, 4, 1.0), (3, 4, 0.25), (4, 4, 1.0)]
    assert [(r["model"], r["fraction"], r["seed"]) for r in rows] == [("vit", 0.25, 0), ("vit", 1.0, 0),
                                                                        ("vit", 0.25, 1), ("vit", 1.0, 1)]
    assert rows[0]["train_images"] == len(experiments.fraction_of(d, 0.25, 0).y_train)
    for row in rows[-1:]:  # each run on its own gives the grid's numbers (the speed layer's shared model: test_compiled)
        alone, _ = experiments.train_run(build, experiments.fraction_of(d, row["fraction"], row["seed"]), row["seed"], 60)
        assert (alone["test_accuracy"], alone["val_accuracy"]) == (row["test_accuracy"], row["val_accuracy"])
    assert all(r["test_accuracy"] > 0.5 for r in rows if r["fraction"] == 1.0)  # 60 steps: far above chance (0.1)
    kept = experiments.run_grid({"again": build}, d, fractions=(0.25, 1.0), seeds=(1,), steps=60, keep_models=True)
    assert [r["test_accuracy"] for r in kept] == [r["test_accuracy"] for r in rows[2:]]  # a second call: same numbers
    assert kept[0]["trained"] is not kept[1]["trained"]
    for row in kept:  # each kept model is the trained one of its run
        assert fitting.accuracy(row["trained"], d.x_test, d.y_test) == row["test_accuracy"]


@pytest.mark.backend_independent
def test_summarise_gives_mean_spread_and_count_per_group():
    rows = [{"model": "a", "fraction": 1.0, "test_accuracy": v} for v in (0.9, 0.8, 1.0)]
    rows.append({"model": "b", "fraction": 1.0, "test_accuracy": 0.5})
    a, b = experiments.summarise(rows)
    assert (a["model"], a["n"], b["n"]) == ("a", 3, 1)
    assert a["mean"] == pytest.approx(0.9) and a["std"] == pytest.approx(0.1) and (a["min"], a["max"]) == (0.8, 1.0)
    assert b["std"] == 0.0
    with pytest.raises(ValueError, match=r"rows need the keys \['model', 'fraction'\] and 'test_accuracy'"):
        experiments.summarise([{"model": "a"}])
    with pytest.raises(ValueError, match="builders is empty"):
        experiments.run_grid({}, None)




def test_epoch_run_records_both_curves_and_reads_the_test_curve_only_where_validation_points():
    d = datasets.load_dataset("digits")
    row, model = experiments.epoch_run(lambda seed: tiny_vit(patch_size=4), d, seed=0, epochs=4, recipe_name="digits")
    assert len(row["val_curve"]) == len(row["test_curve"]) == row["epochs"] == 4
    best = row["best_epoch"] - 1
    top = max(row["val_curve"])
    assert row["val_curve"][best] == top and max(row["val_curve"][best + 1:], default=-1) < top
    assert row["early_test"] == row["test_curve"][best] and row["last_test"] == row["test_curve"][-1]
    assert row["last_test"] == fitting.accuracy(model, d.x_test, d.y_test)  # the returned model is the last epoch's
    assert row["train_images"] == len(d.y_train) and row["last_test"] > 0.3  # it learns (chance: 0.1)
    again, _ = experiments.epoch_run(lambda seed: tiny_vit(patch_size=4), d, seed=0, epochs=4, recipe_name="digits")
    assert again["val_curve"] == row["val_curve"]  # the seed fixes the run
