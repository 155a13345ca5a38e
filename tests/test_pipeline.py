"""vitlib.data.pipeline: tf.data pipelines (batches, one-hot labels, a new place for every digit every epoch,
padding for several devices) and in-model augmentation."""
import numpy as np
import pytest
from keras import ops

from vitlib.data import datasets, pipeline


def test_pipeline_batches_and_one_hot_labels():
    x = np.zeros((10, 4, 4, 1), "float32")
    y = np.arange(10) % 3
    batches = list(pipeline.make_pipeline(x, y, batch_size=4, num_classes=3))
    assert [tuple(b[0].shape) for b in batches] == [(4, 4, 4, 1), (4, 4, 4, 1), (2, 4, 4, 1)]
    np.testing.assert_array_equal(np.asarray(batches[0][1]), np.eye(3)[y[:4]])


def test_augmentation_only_acts_in_training():
    x = np.random.default_rng(0).random((8, 16, 16, 3)).astype("float32")
    for kind in ("basic", "strong"):
        aug = pipeline.augmentation(kind)
        np.testing.assert_array_equal(ops.convert_to_numpy(aug(x, training=False)), x)
        assert not np.allclose(ops.convert_to_numpy(aug(x, training=True)), x)
    np.testing.assert_array_equal(ops.convert_to_numpy(pipeline.augmentation("none")(x, training=True)), x)
    with pytest.raises(ValueError, match="Unknown augmentation 'heavy'"):
        pipeline.augmentation("heavy")


@pytest.mark.backend_independent
def test_training_pipeline_moves_each_digit_anew_every_epoch_and_reproducibly():
    ds = datasets.load_dataset("translated_digits", canvas_size=16)
    x, y = ds.x_train[:16], ds.y_train[:16]
    first_ink = lambda batch: np.array([np.argwhere(im[..., 0] > 0).min(0) for im in batch])  # noqa: E731
    pipe = pipeline.make_pipeline(x, y, 16, map_fn=ds.train_map, seed=5)
    epochs = [next(iter(pipe))[0].numpy() for _ in range(3)]
    for batch in epochs:
        np.testing.assert_allclose(batch.sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)), rtol=1e-6)  # ink kept whole
        for moved, original in zip(batch, x):  # the same pixels, shifted
            r, c = np.argwhere(moved[..., 0] > 0).min(0) - np.argwhere(original[..., 0] > 0).min(0)
            np.testing.assert_array_equal(np.roll(original, (r, c), axis=(0, 1)), moved)
    assert not np.array_equal(first_ink(epochs[0]), first_ink(epochs[1]))  # a new place each epoch
    again = next(iter(pipeline.make_pipeline(x, y, 16, map_fn=ds.train_map, seed=5)))[0].numpy()
    np.testing.assert_array_equal(again, epochs[0])  # the same sequence from the same seed
    untouched = next(iter(pipeline.make_pipeline(ds.x_test[:4], ds.y_test[:4], 4)))[0].numpy()
    np.testing.assert_array_equal(untouched, ds.x_test[:4])  # no map: images as stored


def test_autotuning_is_off_on_a_cpu_and_changes_no_batch(monkeypatch):
    import tensorflow as tf

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])  # no GPU, whatever this machine has
    ds = datasets.load_dataset("translated_digits", canvas_size=12)
    x, y = ds.x_train[:40], ds.y_train[:40]

    def two_epochs(autotune):
        pipe = pipeline.make_pipeline(x, y, 16, 10, shuffle=True, seed=3, map_fn=ds.train_map, autotune=autotune)
        return pipe, [np.concatenate([b[0].numpy().ravel() for b in pipe]) for _ in range(2)]

    default, batches = two_epochs("auto")
    assert default.options().autotune.enabled is False  # no GPU here: the cores are left to training
    tuned, tuned_batches = two_epochs(True)
    assert tuned.options().autotune.enabled is True
    for mine, theirs in zip(batches, tuned_batches):  # the same images in the same order, epoch by epoch
        np.testing.assert_array_equal(mine, theirs)
    assert not np.array_equal(batches[0], batches[1])
    padded = pipeline.make_pipeline(x[:5], y[:5], 4, 10, pad_to=2)
    assert padded.options().autotune.enabled is False
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["a GPU"])  # "auto" keeps the autotuning
    assert pipeline.make_pipeline(x, y, 16).options().autotune.enabled is True
    assert pipeline.make_pipeline(x[:5], y[:5], 4, 10, pad_to=2).options().autotune.enabled is True
    with pytest.raises(ValueError, match="autotune must be 'auto', True or False, got 'off'"):
        pipeline.make_pipeline(x, y, 16, autotune="off")


@pytest.mark.backend_independent
def test_a_padded_pipeline_weights_its_blanks_zero_and_still_shuffles_maps_and_repeats():
    x = np.arange(5, dtype="float32").reshape(5, 1, 1, 1) + 1  # images 1..5, so a blank (0) is told apart
    y = np.arange(5) % 3
    plain = list(pipeline.make_pipeline(x, y, 8, 3, pad_to=4))
    assert len(plain) == 1 and len(plain[0]) == 3  # (images, one-hot labels, weights)
    images, labels, weights = (t.numpy() for t in plain[0])
    np.testing.assert_array_equal(images.ravel(), [1, 2, 3, 4, 5, 0, 0, 0])
    np.testing.assert_array_equal(weights, [1, 1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(labels[:5].argmax(-1), y)
    np.testing.assert_array_equal(labels[5:], 0)

    def negate(image, random):
        return -image

    pipe = pipeline.make_pipeline(x, y, 4, 3, shuffle=True, seed=1, map_fn=negate, repeat=True, pad_to=4)
    rows = [tuple(t.numpy() for t in batch) for batch, _ in zip(pipe, range(4))]  # two passes of 8
    seen = np.concatenate([r[0].ravel() for r in rows])
    kept = np.concatenate([r[2] for r in rows])
    for one_pass in (seen[:8], seen[8:]):  # every image once a pass, mapped; the blanks too
        assert sorted(one_pass) == [-5, -4, -3, -2, -1, 0, 0, 0]
    assert not np.array_equal(seen[:8], [-1, -2, -3, -4, -5, 0, 0, 0])  # shuffled
    np.testing.assert_array_equal(kept, (seen != 0).astype("float32"))  # each image keeps its own weight
    labels = np.concatenate([r[1] for r in rows])
    real = seen != 0
    np.testing.assert_array_equal(labels[real].argmax(-1), (-seen[real] - 1) % 3)  # and its own label (image v: (v - 1) % 3)
    np.testing.assert_array_equal(labels[~real], 0)
    with pytest.raises(ValueError, match="pad_to=4 keeps every image .* drop_remainder=True drops"):
        pipeline.make_pipeline(x, y, 4, 3, pad_to=4, drop_remainder=True)
