"""vitlib.resolution (a new resolution, Sec. 3.2) and vitlib.experiments (the runs of notebook 08)."""
import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib import data, experiments, resolution

TINY = dict(image_size=8, channels=1, num_classes=10, patch_size=2, hidden_size=16, depth=1, num_heads=2, mlp_dim=16)


def tiny_vit(**kw):
    return vitlib.build_vit(None, **{**TINY, **kw})


@pytest.mark.parametrize("method", ["bilinear", "bicubic", "nearest"])
def test_at_resolution_resizes_the_position_table_and_copies_every_other_weight(method):
    small = tiny_vit()
    rng = np.random.default_rng(0)
    small.set_weights([rng.normal(size=w.shape).astype("float32") for w in small.get_weights()])  # no zero weights
    big = resolution.at_resolution(small, 16, method)
    assert big.config.image_size == (16, 16) and big.config.grid_size == (8, 8) and big.config.patch_size == 2
    table = ops.convert_to_numpy(small.get_layer("position_embedding").embeddings)
    expected = vitlib.resize_position_embeddings(table, (8, 8), old_grid=(4, 4), interpolation=method)
    np.testing.assert_array_equal(ops.convert_to_numpy(big.get_layer("position_embedding").embeddings), expected)
    for old, new in zip(small.weights, big.weights):
        if "position_embedding" not in new.path:
            np.testing.assert_array_equal(ops.convert_to_numpy(old), ops.convert_to_numpy(new))
    assert big(np.zeros((2, 16, 16, 1), "float32")).shape == (2, 10)


def test_reinit_keeps_a_fresh_random_table_and_sincos_tables_are_built_for_the_new_grid():
    small = tiny_vit()
    fresh = resolution.at_resolution(small, 16, "reinit", seed=3)
    again = resolution.at_resolution(small, 16, "reinit", seed=3)
    table = ops.convert_to_numpy(fresh.get_layer("position_embedding").embeddings)
    assert table.shape == (1, 65, 16) and 0.01 < table.std() < 0.03  # the learned table's N(0, 0.02) start
    np.testing.assert_array_equal(table, ops.convert_to_numpy(again.get_layer("position_embedding").embeddings))
    sincos = resolution.at_resolution(tiny_vit(pos_embedding="sincos2d"), 16)
    np.testing.assert_allclose(ops.convert_to_numpy(sincos.get_layer("position_embedding").embeddings)[0, 1:],
                               vitlib.sincos_2d((8, 8), 16), atol=1e-6)
    gap = resolution.at_resolution(tiny_vit(pool="gap"), 12)
    assert gap.get_layer("position_embedding").embeddings.shape == (1, 36, 16)


def test_at_resolution_and_load_vit_refuse_what_they_cannot_use(tmp_path):
    with pytest.raises(ValueError, match=r"10x10 is not divisible by patch size 4"):
        resolution.at_resolution(tiny_vit(patch_size=4, image_size=8), 10)
    with pytest.raises(ValueError, match=r"Unknown position resize method 'area'.*'bicubic'"):
        resolution.at_resolution(tiny_vit(), 16, "area")
    cnn = vitlib.training.small_cnn((8, 8, 1), 10)
    with pytest.raises(ValueError, match=r"needs a vitlib ViT.*got Functional"):
        resolution.at_resolution(cnn, 16)
    with pytest.raises(ValueError, match=r"No saved model at .*missing.keras"):
        resolution.load_vit(tmp_path / "missing.keras")
    (tmp_path / "broken.keras").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"Could not load .*broken.keras.*complete\?"):
        resolution.load_vit(tmp_path / "broken.keras")
    cnn.save(tmp_path / "cnn.keras")
    with pytest.raises(ValueError, match=r"cnn.keras' holds a Functional, not a vitlib ViT"):
        resolution.load_vit(tmp_path / "cnn.keras")


def test_resize_images_keeps_the_range_and_refuses_bad_shapes():
    x = data.load_dataset("digits").x_test[:5]
    big = resolution.resize_images(x, 16)
    assert big.shape == (5, 16, 16, 1) and big.dtype == np.float32 and 0 <= big.min() and big.max() <= 1
    np.testing.assert_allclose(big.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=0.02)  # the same ink
    assert resolution.resize_images(x, 8) is not None and np.array_equal(resolution.resize_images(x, 8), x)
    with pytest.raises(ValueError, match=r"images must be \(n, height, width, channels\), got shape \(8, 8\)"):
        resolution.resize_images(x[0, ..., 0], 16)


@pytest.mark.backend_independent
def test_fraction_of_keeps_each_class_share_and_nests_smaller_fractions():
    d = data.load_dataset("digits")
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
    d = data.load_dataset("digits")
    build = lambda seed: tiny_vit(patch_size=4)  # noqa: E731
    seen = []
    rows = experiments.run_grid({"vit": build}, d, fractions=(0.25, 1.0), seeds=(0, 1), steps=60,
                                progress=lambda done, total, row: seen.append((done, total, row["fraction"])))
    assert seen == [(1, 4, 0.25), (2, 4, 1.0), (3, 4, 0.25), (4, 4, 1.0)]
    assert [(r["model"], r["fraction"], r["seed"]) for r in rows] == [("vit", 0.25, 0), ("vit", 1.0, 0),
                                                                        ("vit", 0.25, 1), ("vit", 1.0, 1)]
    assert rows[0]["train_images"] == len(experiments.fraction_of(d, 0.25, 0).y_train)
    import keras

    shared = keras.backend.backend() == "tensorflow"  # elsewhere every run compiles its own model: one check is enough
    for row in rows[1:] if shared else rows[-1:]:  # re-initialised in place, the compiled model trains as a fresh one
        alone, _ = experiments.train_run(build, experiments.fraction_of(d, row["fraction"], row["seed"]), row["seed"], 60)
        assert (alone["test_accuracy"], alone["val_accuracy"]) == (row["test_accuracy"], row["val_accuracy"])
    assert all(r["test_accuracy"] > 0.5 for r in rows if r["fraction"] == 1.0)  # 60 steps: far above chance (0.1)
    kept = experiments.run_grid({"again": build}, d, fractions=(0.25, 1.0), seeds=(1,), steps=60, keep_models=True)
    assert [r["test_accuracy"] for r in kept] == [r["test_accuracy"] for r in rows[2:]]  # a second call: same numbers
    assert kept[0]["trained"] is not kept[1]["trained"]
    for row in kept:  # each kept model is the trained one of its run
        assert experiments.accuracy(row["trained"], d.x_test, d.y_test) == row["test_accuracy"]


def test_set_seed_seeds_like_keras_but_holds_tensorflows_global_seed():
    import keras
    import tensorflow as tf

    from vitlib._seed import TF_GLOBAL_SEED, set_seed

    keras.utils.set_random_seed(5)
    expected_weights, expected_draw = tiny_vit().get_weights(), np.random.rand()
    tf.random.set_seed(123)  # someone else's seed: set_seed puts TensorFlow's back to its fixed value
    set_seed(5)
    weights, draw = tiny_vit().get_weights(), np.random.rand()
    for a, b in zip(expected_weights, weights):
        np.testing.assert_array_equal(a, b)  # the same initial weights as keras.utils.set_random_seed(5) gives
    assert draw == expected_draw and tf.compat.v1.random.get_seed(0)[0] == TF_GLOBAL_SEED
    set_seed(6)
    assert not np.array_equal(tiny_vit().get_weights()[0], weights[0])
    d = data.load_dataset("digits")
    config, _ = experiments.budget(10)
    first = lambda s: next(iter(experiments._pipeline(d, config, s)))[1].numpy().argmax(-1)  # noqa: E731
    set_seed(0)
    a = first(0)
    set_seed(1)
    assert not np.array_equal(a, first(1))  # each seed its own shuffle
    set_seed(0)
    np.testing.assert_array_equal(a, first(0))  # and the same again
    with pytest.raises(ValueError, match=r"seed must be an int, got 1.5"):
        set_seed(1.5)


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


def test_cli_fine_tunes_a_saved_model_at_a_new_image_size(tmp_path, monkeypatch, capsys):
    from vitlib import train as cli
    from vitlib import training

    saved = tiny_vit(patch_size=2)
    saved.save(tmp_path / "small.keras")
    started = {}
    original = resolution.at_resolution

    def spy(model, image_size, method="bilinear", seed=0):
        new = original(model, image_size, method, seed)
        started.update(saved=[w.copy() for w in model.get_weights()], new=[w.copy() for w in new.get_weights()],
                       method=method)
        return new

    monkeypatch.setattr(resolution, "at_resolution", spy)
    args = ["--dataset", "digits", "--resume-from", str(tmp_path / "small.keras"), "--image-size", "16",
            "--pos-resize", "bicubic", "--epochs", "1", "--warmup-epochs", "0", "--out", str(tmp_path / "run")]
    assert cli.main(args) == 0, capsys.readouterr().err
    assert started["method"] == "bicubic"
    table = ops.convert_to_numpy(saved.get_layer("position_embedding").embeddings)
    for old, new, weight in zip(started["saved"], started["new"], saved.weights):
        if weight is saved.get_layer("position_embedding").embeddings:
            np.testing.assert_array_equal(new, vitlib.resize_position_embeddings(table, (8, 8), interpolation="bicubic"))
        else:
            np.testing.assert_array_equal(new, old)  # every other weight copied unchanged
    tuned = vitlib.resolution.load_vit(tmp_path / "run" / "last.keras")
    assert tuned.config.image_size == (16, 16) and tuned.config.grid_size == (8, 8)
    metrics = training.read_history(tmp_path / "run" / "history.csv")
    assert len(metrics["loss"]) == 1
    # wrong uses: a one-line error and exit code 2
    bad = [(["--resume-from", str(tmp_path / "nothing.keras")], "No saved model at"),
           (["--resume-from", str(tmp_path / "small.keras"), "--image-size", "15"], "15x15 is not divisible by patch size 2"),
           (["--resume-from", str(tmp_path / "small.keras"), "--stem", "conv"], "--stem cannot change the architecture"),
           (["--resume-from", str(tmp_path / "small.keras"), "--dataset", "position"], "has 10 classes, but 'position'")]
    for extra, message in bad:
        capsys.readouterr()
        assert cli.main([*extra, "--epochs", "1", "--warmup-epochs", "0", "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
