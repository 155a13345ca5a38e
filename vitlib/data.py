"""Data that needs no download: sample photos shipped with matplotlib and scikit-learn, and a generated
task whose label depends on *where* something is in the image."""
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
