import keras
import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib import data


def test_digits_load_with_disjoint_stratified_splits():
    ds = data.load_dataset("digits")
    assert ds.image_shape == (8, 8, 1) and ds.num_classes == 10
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 1797
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0 and ds.x_train.dtype == np.float32
    assert abs(len(ds.y_test) / 1797 - 0.2) < 0.01
    for split in (ds.y_train, ds.y_val, ds.y_test):  # every class in every split, in proportion
        assert np.bincount(split, minlength=10).min() > 0.7 * len(split) / 10
    rows = lambda x: {r.tobytes() for r in x.reshape(len(x), -1)}  # noqa: E731
    assert not rows(ds.x_test) & rows(ds.x_val)
    assert "train" in repr(ds)


def test_validation_images_can_join_the_training_split():
    ds = data.load_dataset("digits")
    final = ds.with_validation_in_training()
    np.testing.assert_array_equal(final.x_train, np.concatenate([ds.x_train, ds.x_val]))
    np.testing.assert_array_equal(final.y_train, np.concatenate([ds.y_train, ds.y_val]))
    assert final.x_val.shape == (0, 8, 8, 1) and len(final.y_val) == 0
    np.testing.assert_array_equal(final.x_test, ds.x_test)
    assert len(ds.y_val) == 143  # the original is unchanged


def test_same_seed_same_split_other_seed_other_split():
    a, b, c = data.load_dataset("digits", seed=0), data.load_dataset("digits", seed=0), data.load_dataset("digits", seed=1)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_test, c.x_test)


def test_position_dataset_is_embedded():
    ds = data.load_dataset("position")
    assert ds.image_shape == (32, 32, 1) and ds.class_names[0] == "top-left"


def test_unknown_dataset_and_bad_fractions_are_refused():
    with pytest.raises(ValueError, match="Unknown dataset name 'imagenet'.*'cifar10'"):
        data.load_dataset("imagenet")
    with pytest.raises(ValueError, match="validation_fraction must be in"):
        data.load_dataset("digits", validation_fraction=0.0)


def test_offline_download_fails_with_a_clear_message(monkeypatch):
    def offline():
        raise Exception("URL fetch failure on https://...: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(data.DatasetUnavailableError, match=r"download it once.*keras.datasets.cifar10.load_data\(\).*'digits'"):
        data.load_dataset("cifar10")


def test_cached_keras_dataset_is_scaled_and_split(monkeypatch):
    rng = np.random.default_rng(0)
    train = (rng.integers(0, 256, (500, 28, 28), dtype=np.uint8), rng.integers(0, 10, 500).astype(np.uint8))
    test = (rng.integers(0, 256, (100, 28, 28), dtype=np.uint8), rng.integers(0, 10, 100).astype(np.uint8))
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: (train, test))
    ds = data.load_dataset("mnist")
    assert ds.image_shape == (28, 28, 1) and len(ds.y_test) == 100 and len(ds.y_train) + len(ds.y_val) == 500
    np.testing.assert_allclose(ds.x_test[..., 0], test[0] / 255.0, atol=1e-7)


def test_pipeline_batches_and_one_hot_labels():
    x = np.zeros((10, 4, 4, 1), "float32")
    y = np.arange(10) % 3
    batches = list(data.make_pipeline(x, y, batch_size=4, num_classes=3))
    assert [tuple(b[0].shape) for b in batches] == [(4, 4, 4, 1), (4, 4, 4, 1), (2, 4, 4, 1)]
    np.testing.assert_array_equal(np.asarray(batches[0][1]), np.eye(3)[y[:4]])


def test_augmentation_only_acts_in_training():
    x = np.random.default_rng(0).random((8, 16, 16, 3)).astype("float32")
    for kind in ("basic", "strong"):
        aug = data.augmentation(kind)
        np.testing.assert_array_equal(ops.convert_to_numpy(aug(x, training=False)), x)
        assert not np.allclose(ops.convert_to_numpy(aug(x, training=True)), x)
    np.testing.assert_array_equal(ops.convert_to_numpy(data.augmentation("none")(x, training=True)), x)
    with pytest.raises(ValueError, match="Unknown augmentation 'heavy'"):
        data.augmentation("heavy")
