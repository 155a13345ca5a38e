"""Data: sample photos shipped with matplotlib and scikit-learn, a generated task whose label depends on
*where* something is in the image, classification data sets (embedded digits; ``keras.datasets`` downloads),
input pipelines and augmentation."""
import dataclasses
import functools

import numpy as np

from vitlib import _checks

SAMPLE_IMAGES = ("grace_hopper", "china", "flower")


def _load_sample(name):
    if name == "grace_hopper":
        import matplotlib.cbook
        import matplotlib.image

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            return matplotlib.image.imread(f, format="jpg")
    from sklearn.datasets import load_sample_image

    return load_sample_image(f"{name}.jpg")


def sample_image(name="grace_hopper", size=224):
    """A real photo, centre-cropped to a square and resized: float32 (size, size, 3) in [0, 1].

    ``name``: ``"grace_hopper"`` (matplotlib), ``"china"`` or ``"flower"`` (scikit-learn).
    """
    _checks.choice("sample image", name, SAMPLE_IMAGES)
    size = _checks.positive_int("size", size)
    from PIL import Image

    image = np.asarray(_load_sample(name))[..., :3]
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = Image.fromarray(image[top:top + side, left:left + side])
    resized = crop.resize((size, size), Image.Resampling.BICUBIC)
    return (np.asarray(resized, dtype="float32") / 255.0).clip(0, 1)


def position_task(num_images=2000, image_size=32, patch_size=8, square_size=6, noise=0.1, seed=0):
    """Images of one bright square on noise; the label (0-3) is the quadrant that holds it.

    The square never crosses its quadrant, and quadrants are whole patches, so every quadrant sees the
    same patch contents: only a model that knows *where* a patch is can beat chance (25 %).
    Returns ``(images (n, S, S, 1) float32, labels (n,) int32)``. Labels: 0 top-left, 1 top-right,
    2 bottom-left, 3 bottom-right.
    """
    n = _checks.positive_int("num_images", num_images)
    s = _checks.positive_int("image_size", image_size)
    half = s // 2
    _checks.divisible(half, patch_size)
    if not 0 < square_size <= half:
        raise ValueError(f"square_size must be in 1..{half} (half the image), got {square_size!r}.")
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, noise, size=(n, s, s, 1)).astype("float32")
    labels = rng.integers(0, 4, size=n).astype("int32")
    offsets = rng.integers(0, half - square_size + 1, size=(n, 2))
    for i, (label, (dy, dx)) in enumerate(zip(labels, offsets)):
        top, left = (label // 2) * half + dy, (label % 2) * half + dx
        images[i, top:top + square_size, left:left + square_size, 0] += 1.0
    return images, labels


def place_digits(digits, canvas_size=16, step=1, seed=0):
    """Paste each small image (n, h, w, C) at a random offset on a black ``canvas_size`` square canvas.

    The (top, left) corner of each image is drawn uniformly, with ``seed``, from every multiple of ``step`` where
    the image fits whole (``step=2`` with 2x2 patches: every digit is cut into the same patches wherever it lands).
    Returns ``(canvases (n, S, S, C) float32, offsets (n, 2))``.
    """
    digits = np.asarray(digits, dtype="float32")
    if digits.ndim != 4:
        raise ValueError(f"digits must be (n, height, width, channels), got shape {digits.shape}.")
    n, h, w, c = digits.shape
    s = _checks.positive_int("canvas_size", canvas_size)
    step = _checks.positive_int("step", step)
    if s < max(h, w):
        raise ValueError(f"canvas_size={s} is smaller than the {h}x{w} images to paste on it: use a canvas of at "
                         f"least {max(h, w)} pixels (e.g. {2 * max(h, w)}, twice the image).")
    rng = np.random.default_rng(seed)
    offsets = step * np.stack([rng.integers(0, (s - h) // step + 1, n), rng.integers(0, (s - w) // step + 1, n)], 1)
    canvases = np.zeros((n, s, s, c), "float32")
    for canvas, digit, (top, left) in zip(canvases, digits, offsets):
        canvas[top:top + h, left:left + w] = digit
    return canvases, offsets


def random_placement(image, random, step=1):
    """Move the ink of one image (H, W, C) to a random place on its canvas, keeping all of it (a tf.data map).

    The box around the non-zero pixels moves by a multiple of ``step`` pixels, chosen uniformly among the moves
    that keep the whole box on the canvas; ``random`` (an int64 scalar) picks it. The translated digits use it as
    ``Dataset.train_map``: each epoch shows every digit somewhere else.
    """
    import tensorflow as tf

    shape = tf.shape(image, out_type=tf.int64)
    ink = tf.reduce_any(image > 0, axis=-1)  # (H, W)
    shifts = []
    for axis in (0, 1):
        present = tf.reduce_any(ink, axis=1 - axis)
        first = tf.argmax(present, output_type=tf.int64)
        last = shape[axis] - tf.argmax(tf.reverse(present, [0]), output_type=tf.int64)  # one past the last ink
        first, last = tf.where(tf.reduce_any(present), first, 0), tf.where(tf.reduce_any(present), last, shape[axis])
        up, down = first // step, (shape[axis] - last) // step  # whole steps free before and after the ink
        shifts.append((tf.math.floormod(random, up + down + 1) - up) * step)
        random = random // (up + down + 1)  # the rest of the random number picks the column's move
    return tf.roll(image, shift=tf.stack(shifts), axis=[0, 1])


# ---------------------------------------------------------------------------------------------------------
# Data sets for training: the embedded ones need no network; the keras.datasets ones download once.

DATASETS = ("digits", "translated_digits", "position", "mnist", "fashion_mnist", "cifar10", "cifar100")
_CLASS_NAMES = {
    "digits": [str(i) for i in range(10)],
    "translated_digits": [str(i) for i in range(10)],
    "position": ["top-left", "top-right", "bottom-left", "bottom-right"],
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}


class DatasetUnavailableError(RuntimeError):
    """A data set that must be downloaded could not be (offline, firewall): the message says what to do."""


@dataclasses.dataclass
class Dataset:
    """Images (n, H, W, C) float32 in [0, 1] and int labels, split into train / validation / test."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list
    # Applied to every training image in the input pipeline, anew each epoch: ``train_map(image, random)`` with
    # ``image`` (H, W, C) and ``random`` a fresh int64 scalar, returning the new image (a tf.data map, e.g.
    # :func:`random_placement`); None for none. Validation and test images are never changed.
    train_map: object = None

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def image_shape(self):
        return self.x_train.shape[1:]

    def with_validation_in_training(self):
        """The same data set with the validation images moved into the training split (for the final run of a
        fixed recipe): train = train + validation, an empty validation split, the same test split."""
        return dataclasses.replace(self, x_train=np.concatenate([self.x_train, self.x_val]),
                                   y_train=np.concatenate([self.y_train, self.y_val]),
                                   x_val=self.x_val[:0], y_val=self.y_val[:0])

    def __repr__(self):
        return (f"Dataset({self.name!r}: images {self.image_shape}, {self.num_classes} classes, "
                f"train {len(self.y_train)}, validation {len(self.y_val)}, test {len(self.y_test)})")


def centred_on_canvas(dataset, canvas_size):
    """The same data set with every image in the middle of a black ``canvas_size`` square canvas: the control for
    the translated digits (same images, same splits, the digit always in the same place)."""
    h, w = dataset.image_shape[:2]
    s = _checks.positive_int("canvas_size", canvas_size)
    if s < max(h, w):
        raise ValueError(f"canvas_size={s} is smaller than the {h}x{w} images: use at least {max(h, w)}.")
    top, left = (s - h) // 2, (s - w) // 2
    pad = lambda x: np.pad(x, ((0, 0), (top, s - h - top), (left, s - w - left), (0, 0)))  # noqa: E731
    return dataclasses.replace(dataset, name=f"{dataset.name} centred on {s}x{s}", x_train=pad(dataset.x_train),
                               x_val=pad(dataset.x_val), x_test=pad(dataset.x_test))


def _split(x, y, fraction, seed):
    """Stratified split: returns (x_keep, y_keep, x_out, y_out) with `fraction` of each class in `out`."""
    rng = np.random.default_rng(seed)
    out = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: int(round(fraction * np.sum(y == c)))]
                          for c in np.unique(y)])
    mask = np.zeros(len(y), bool)
    mask[out] = True
    return x[~mask], y[~mask], x[mask], y[mask]


def _download(name):
    import keras

    loader = getattr(keras.datasets, name)
    try:
        return loader.load_data()
    except Exception as exc:  # urllib, SSL or HTTP errors, depending on the platform
        raise DatasetUnavailableError(
            f"Could not load {name!r}: keras.datasets.{name}.load_data() needs to download it once "
            f"({type(exc).__name__}: {exc}). Connect to the internet and run "
            f"`python -c \"import keras; keras.datasets.{name}.load_data()\"` to cache it under ~/.keras/datasets, "
            "or use an embedded data set: load_dataset('digits') or load_dataset('position')."
        ) from exc


def load_dataset(name="digits", validation_fraction=0.1, test_fraction=0.2, seed=0, canvas_size=None, step=None):
    """Load a data set as a :class:`Dataset`.

    ``"digits"`` (scikit-learn's 8x8 handwritten digits, 1797 images, embedded: the default),
    ``"translated_digits"`` (the same digits, each pasted at a random place on a black ``canvas_size`` square
    canvas (default 16), at offsets that are multiples of ``step`` (default 1), a new place every training epoch) and ``"position"`` (the generated quadrant task of notebook 03)
    need no network. ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"`` and ``"cifar100"`` come from
    ``keras.datasets``: downloaded once, then read from the cache; their own test split is kept. The
    validation split always comes out of the training data, so the test split is never used for tuning.
    """
    _checks.choice("dataset name", name, DATASETS)
    if name != "translated_digits" and (canvas_size, step) != (None, None):
        raise ValueError(f"canvas_size and step only apply to 'translated_digits', not to {name!r}: leave them out.")
    for label, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 0.5:
            raise ValueError(f"{label} must be in (0, 0.5), got {value!r}.")
    if name in ("digits", "translated_digits", "position"):
        if name == "position":
            x, y = position_task(4000, seed=seed)
        else:
            from sklearn.datasets import load_digits

            digits = load_digits()
            x = (digits.images / 16.0).astype("float32")[..., None]  # (1797, 8, 8, 1)
            y = digits.target.astype("int32")
        x_train, y_train, x_test, y_test = _split(x, y, test_fraction, seed)
    else:
        (x_train, y_train), (x_test, y_test) = _download(name)
        scale = lambda a: (a.astype("float32") / 255.0).reshape(a.shape if a.ndim == 4 else (*a.shape, 1))  # noqa: E731
        x_train, x_test = scale(x_train), scale(x_test)
        y_train, y_test = y_train.reshape(-1).astype("int32"), y_test.reshape(-1).astype("int32")
    x_train, y_train, x_val, y_val = _split(x_train, y_train, validation_fraction, seed + 1)
    train_map = None
    if name == "translated_digits":  # the same splits of the same digits as "digits", each placed somewhere
        # on the canvas: validation and test at fixed places (from the seed), training anew every epoch.
        canvas_size, step = 16 if canvas_size is None else canvas_size, 1 if step is None else step
        (x_train, _), (x_val, _), (x_test, _) = (place_digits(x, canvas_size, step, seed + k)
                                                 for k, x in enumerate((x_train, x_val, x_test), start=100))
        train_map = functools.partial(random_placement, step=step)
    names = _CLASS_NAMES.get(name, [str(i) for i in range(int(y_train.max()) + 1)])
    return Dataset(name, x_train, y_train, x_val, y_val, x_test, y_test, names, train_map)


def make_pipeline(images, labels, batch_size=128, num_classes=None, shuffle=False, seed=0, drop_remainder=False,
                  map_fn=None):
    """A ``tf.data`` pipeline: (shuffle) -> (map) -> batch -> prefetch. Labels become one-hot when ``num_classes``
    is given (needed for label smoothing). ``map_fn(image, random)`` changes each image with a fresh random int64
    every time the pipeline is iterated (every epoch), reproducibly from ``seed`` (e.g. ``Dataset.train_map``).
    TensorFlow-specific, so it lives here at the edge."""
    import tensorflow as tf

    y = labels if num_classes is None else np.eye(num_classes, dtype="float32")[labels]
    ds = tf.data.Dataset.from_tensor_slices((images, y))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    if map_fn is not None:
        randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, randoms).map(lambda xy, r: (map_fn(xy[0], r), xy[1]),
                                                   num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def augmentation(kind="basic", flip=True, translate=0.1, seed=0):
    """Augmentation as Keras layers, applied inside the model (so on the accelerator) and only in training.

    ``"none"``; ``"basic"``: random shifts (the padding-and-crop of CIFAR recipes, without changing the
    size) and horizontal flips; ``"strong"``: basic plus RandAugment (Cubuk et al. 2020).
    """
    import keras

    _checks.choice("augmentation", kind, ("none", "basic", "strong"))
    layers = []
    if kind != "none":
        layers.append(keras.layers.RandomTranslation(translate, translate, fill_mode="constant",
                                                     interpolation="nearest", seed=seed))
        if flip:
            layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if kind == "strong":
        layers.append(keras.layers.RandAugment(value_range=(0, 1), num_ops=2, factor=0.5, seed=seed))
    return keras.Sequential(layers or [keras.layers.Identity()], name=f"augment_{kind}")
