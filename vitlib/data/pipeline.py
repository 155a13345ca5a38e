"""Input pipelines and augmentation: how images reach the model during training.

``make_pipeline`` is the ``tf.data`` side (shuffle, per-epoch random changes such as the translated digits' new
places, batch, prefetch), so it lives here at the edge; ``augmentation`` is Keras layers inside the model.
"""
import numpy as np

from vitlib import _checks

AUGMENTATIONS = ("none", "basic", "strong")  # see augmentation()


def make_pipeline(images, labels, batch_size=128, num_classes=None, shuffle=False, seed=0, drop_remainder=False,
                  map_fn=None, repeat=False, pad_to=None, autotune="auto"):
    """A ``tf.data`` pipeline: (pad) -> (shuffle) -> (map) -> (repeat) -> batch -> prefetch. ``repeat=True``: endless, each
    pass reshuffled (for a budget in steps rather than epochs). Labels become one-hot when ``num_classes``
    is given (needed for label smoothing). ``map_fn(image, random)`` changes each image with a fresh random int64
    every time the pipeline is iterated (every epoch), reproducibly from ``seed`` (e.g. ``Dataset.train_map``).
    ``pad_to=N`` (evaluation over N devices, which must all get equal shares of every batch): the images are padded
    with blank ones to a multiple of N (at most N - 1 blanks) and every element gets a sample weight, 1 for a real
    image and 0 for a blank, so weighted metrics (accuracy) count the real images only. Blanks then go through the
    rest like real images; ``drop_remainder=True`` with ``pad_to`` is refused (it would drop real images).
    ``autotune``: tf.data's autotuning of parallelism and prefetch buffers; ``"auto"``: on when TensorFlow sees a GPU,
    off on CPUs, where it competes with training for the cores and makes fits slower and their times erratic
    (benchmarks/RESULTS.md; the same batches, the same numbers). TensorFlow-specific, so it lives here at the edge."""
    import tensorflow as tf

    if autotune == "auto":
        autotune = bool(tf.config.list_physical_devices("GPU"))
    elif not isinstance(autotune, bool):
        raise ValueError(f"autotune must be 'auto', True or False, got {autotune!r}.")
    options = tf.data.Options()
    options.autotune.enabled = autotune

    if pad_to and drop_remainder:
        raise ValueError(f"pad_to={pad_to} keeps every image (padding with blanks) and drop_remainder=True drops the "
                         "last partial batch: use one or the other.")
    y = labels if num_classes is None else np.eye(num_classes, dtype="float32")[labels]
    columns = (images, y)
    if pad_to:
        blanks = -len(labels) % pad_to
        weights = np.concatenate([np.ones(len(labels), "float32"), np.zeros(blanks, "float32")])
        columns = tuple(np.concatenate([c, np.zeros((blanks, *np.shape(c)[1:]), np.asarray(c).dtype)]) for c in columns)
        columns += (weights,)
    ds = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle:
        ds = ds.shuffle(len(columns[1]), seed=seed, reshuffle_each_iteration=True)
    if map_fn is not None:
        randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, randoms).map(lambda row, r: (map_fn(row[0], r), *row[1:]),
                                                   num_parallel_calls=tf.data.AUTOTUNE)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE).with_options(options)


def augmentation(kind="basic", flip=True, translate=0.1, seed=0):
    """Augmentation as Keras layers, applied inside the model (so on the accelerator) and only in training.

    ``"none"``; ``"basic"``: random shifts (the padding-and-crop of CIFAR recipes, without changing the
    size) and horizontal flips; ``"strong"``: basic plus RandAugment (Cubuk et al. 2020).
    """
    import keras

    _checks.choice("augmentation", kind, AUGMENTATIONS)
    layers = []
    if kind != "none":
        layers.append(keras.layers.RandomTranslation(translate, translate, fill_mode="constant",
                                                     interpolation="nearest", seed=seed))
        if flip:
            layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if kind == "strong":
        layers.append(keras.layers.RandAugment(value_range=(0, 1), num_ops=2, factor=0.5, seed=seed))
    return keras.Sequential(layers or [keras.layers.Identity()], name=f"augment_{kind}")

