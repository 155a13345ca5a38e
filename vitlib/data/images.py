"""Images made or changed for the lessons: real sample photos (shipped with matplotlib and scikit-learn), a generated
task whose label depends on *where* something is, small images placed on a larger canvas (the translated digits), and
images resized for a new resolution.
"""
import dataclasses

import numpy as np

from vitlib import _checks

SAMPLE_IMAGES = ("grace_hopper", "china", "flower")


def _load_sample(name):
    if name == "grace_hopper":
        try:
            import matplotlib.cbook
        except ImportError as exc:
            raise ImportError("The 'grace_hopper' sample photo ships with matplotlib, which is not installed: "
                              "pip install 'vitlib[lab]' (or matplotlib), or use sample_image('china').") from exc
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


def resize_images(images, image_size, interpolation="bilinear"):
    """Images (n, H, W, C) resized to ``image_size`` (an int or (height, width)), as NumPy float32 in [0, 1]."""
    import keras

    images = np.asarray(images, "float32")
    if images.ndim != 4:
        raise ValueError(f"images must be (n, height, width, channels), got shape {images.shape}.")
    size = _checks.int_pair("image_size", image_size)
    if tuple(images.shape[1:3]) == size:
        return images
    if len(images) == 0:  # an empty split (e.g. no validation images)
        return np.zeros((0, *size, images.shape[3]), "float32")
    resized = keras.ops.image.resize(images, size, interpolation=interpolation, antialias=True)
    return np.clip(keras.ops.convert_to_numpy(resized), 0.0, 1.0).astype("float32")
