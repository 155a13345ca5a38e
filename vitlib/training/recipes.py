"""Training recipes: :class:`TrainConfig`, everything about one run, and ``RECIPES``, the named, tuned ones.

    config = vitlib.training.recipes.recipe("digits", epochs=5)   # then vitlib.training.loop.train(config)
"""
import dataclasses

from vitlib import _checks
from vitlib.data.pipeline import AUGMENTATIONS
from vitlib.position_embedding import POSITION_RESIZES
from vitlib.training.devices import JIT_SETTINGS, PRECISIONS, STRATEGIES


@dataclasses.dataclass
class TrainConfig:
    """Everything about one training run. ``model`` holds ``build_vit`` keyword arguments (``patch_size="auto"``:
    :func:`generic_patch_size` of the data's images)."""

    dataset: str = "digits"
    dataset_options: dict = dataclasses.field(default_factory=dict)  # load_dataset keywords, e.g. {"canvas_size": 16}
    model: dict = dataclasses.field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 3
    label_smoothing: float = 0.1
    clip_norm: float = 1.0
    augment: str = "basic"
    flip: bool = False
    translate: float = 0.1          # random shifts of up to this fraction of the image size ("basic", "strong")
    mixed_precision: str = "auto"   # "auto": bfloat16/float16 on a capable GPU, float32 on CPU
    jit_compile: object = "auto"    # one of devices.JIT_SETTINGS: "auto" | "xla" | True | False (resolve_jit)
    strategy: str = "auto"          # "auto" | "none" | "mirrored" | "multiworker"
    seed: int = 0
    distill: float = 0.0            # weight of the teacher's soft labels in the loss; 0: no teacher
    distill_temperature: float = 2.0
    keep: str = "best"              # the model tested at the end: "best" (by validation accuracy) or "last" epoch
    train_on_validation: bool = False  # once a recipe is fixed: train on the validation images too (keep="last")
    image_size: int = None          # resize every image to this size first (e.g. 16: digits at twice their resolution)
    init_from: str = None           # a saved vitlib ViT (.keras) to fine-tune: its architecture replaces `model`
    pos_resize: str = "bilinear"    # init_from at a new size: how its position embeddings reach the new grid
    shuffle_labels: bool = False    # a control: the training labels permuted at random, so there is nothing to learn
    track_layout: bool = False      # the locality gap after every epoch (history.csv), position tables in layout.npz
    speed: bool = False             # the speed layer (vitlib.speed): the same numbers, faster on TensorFlow

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            _checks.positive_int(name, getattr(self, name))
        _checks.choice("mixed_precision", self.mixed_precision, PRECISIONS)
        _checks.choice("strategy", self.strategy, STRATEGIES)
        _checks.choice("jit_compile", self.jit_compile, JIT_SETTINGS)
        _checks.choice("augment", self.augment, AUGMENTATIONS)
        _checks.choice("keep", self.keep, ("best", "last"))
        _checks.choice("pos_resize", self.pos_resize, tuple(POSITION_RESIZES))
        if self.image_size is not None:
            _checks.positive_int("image_size", self.image_size)
        if self.train_on_validation and self.keep != "last":
            raise ValueError(f"train_on_validation=True leaves no validation images to pick the best epoch by, but "
                             f"keep={self.keep!r}: use keep='last', or train_on_validation=False.")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs={self.epochs}), got {self.warmup_epochs}.")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}.")
        if not 0 <= self.translate < 0.5:
            raise ValueError(f"translate is a fraction of the image size in [0, 0.5), got {self.translate}.")
        if not 0 <= self.distill <= 1:
            raise ValueError(f"distill is the teacher's weight in the loss, in [0, 1]; got {self.distill}.")
        if self.distill_temperature <= 0:
            raise ValueError(f"distill_temperature must be positive, got {self.distill_temperature}.")


# Every recipe turns the speed layer on (speed=True, vitlib.speed): the same numbers, faster on TensorFlow
# (benchmarks/RESULTS.md); VITLIB_SPEED=off, or speed=False, trains on plain Keras.
# Recipes: digits for CPUs (the default, and what CI runs); CIFAR-10 for GPUs, after ViT-Lite-7/4 of
# Hassani et al. (2021), "Escaping the Big Data Paradigm with Compact Transformers" (about 91 % reported
# with 200+ epochs): patch 4, 7 layers, width 256, 4 heads, MLP 512, AdamW, warm-up + cosine, strong augmentation.
RECIPES = {
    # Chosen by 5-fold cross-validation on the training and validation images, ties to the fastest (the search and
    # its numbers: benchmarks/RESULTS.md, "Recipes' choices and what they rest on"): 4x4 patches, shifted patch
    # tokenization, no augmentation; random shifts, rotations, longer training and distillation from a CNN did not
    # help. The last epoch is kept, since 143 validation images are too few to pick an epoch by; with nothing left
    # to pick, the final run trains on the validation images too (more images to learn from).
    "digits": dict(dataset="digits", epochs=20, batch_size=64, learning_rate=3e-3, weight_decay=0.05, warmup_epochs=3,
                   augment="none", flip=False, keep="last", train_on_validation=True,
                   model=dict(variant=None, patch_size=4, hidden_size=64, depth=3, num_heads=4, mlp_dim=128,
                              stem="shifted"), speed=True),
    # Digits at random places on a 16x16 canvas (an 8x8 grid of 2x2 patches), a new place every epoch. Shifted patch
    # tokenization, whose tokens also see their neighbours' pixels: plain 2x2 patches learn this task slowly (chosen on
    # the validation split; benchmarks/RESULTS.md).
    "translated_digits": dict(dataset="translated_digits", dataset_options={"canvas_size": 16}, epochs=30,
                              batch_size=32,
                              learning_rate=2e-3, weight_decay=0.05, warmup_epochs=3, augment="none", flip=False,
                              model=dict(variant=None, patch_size=2, hidden_size=64, depth=3, num_heads=4, mlp_dim=128,
                                         stem="shifted"), speed=True),
    # Notebook 07's experiment: the same model with the paper's plain patch embedding, on a 12x12 canvas (a 6x6 grid),
    # trained until it has learned the task, so that what its position embeddings hold comes from a working model:
    # plain 2x2 patches learn translated digits slowly, hence 120 epochs (tuned on the validation split, seed 0;
    # benchmarks/RESULTS.md). The validation images are held out, so history.csv shows the validation accuracy beside
    # the locality gap of every epoch (track_layout); the last epoch is tested. XLA on TensorFlow and JAX, where a
    # run this long repays compiling.
    "translated_digits_patches": dict(dataset="translated_digits", dataset_options={"canvas_size": 12}, epochs=120,
                                      batch_size=64, learning_rate=2e-3, weight_decay=0.05, warmup_epochs=2,
                                      augment="none", flip=False, keep="last", jit_compile="xla", track_layout=True,
                                      model=dict(variant=None, patch_size=2, hidden_size=64, depth=3, num_heads=4,
                                                 mlp_dim=128, stem="patch"), speed=True),
    # 5,000 handwritten MNIST digits at 28x28 (load_dataset("mnist_5k"), offline). Tuned on the 400 validation images,
    # seed 0 (benchmarks/RESULTS.md, "28x28 digits offline"): 7x7 patches (a 4x4 grid: 16 tokens, so fast steps) and
    # random shifts and rotations ("basic": handwriting varies in place and slant), where a wider, deeper model or
    # more epochs did not help. The last epoch is kept, and the final run trains on the validation images too, as for
    # the digits.
    "mnist_5k": dict(dataset="mnist_5k", epochs=20, batch_size=64, learning_rate=3e-3, weight_decay=0.05,
                     warmup_epochs=3, augment="basic", flip=False, keep="last", train_on_validation=True,
                     model=dict(variant=None, patch_size=7, hidden_size=64, depth=3, num_heads=4, mlp_dim=128,
                                stem="shifted"), speed=True),
    "position": dict(dataset="position", epochs=8, batch_size=64, augment="none", flip=False,
                     model=dict(variant=None, patch_size=8, hidden_size=32, depth=2, num_heads=4, mlp_dim=64), speed=True),
    "cifar10": dict(dataset="cifar10", epochs=200, batch_size=128, learning_rate=1e-3, weight_decay=0.05,
                    warmup_epochs=10, augment="strong", flip=True,
                    model=dict(variant=None, patch_size=4, hidden_size=256, depth=7, num_heads=4, mlp_dim=512,
                               drop_path=0.1), speed=True),
}


# A data set without a recipe of its own (recipe_for) trains with this one: the optimiser and model size of the digits
# recipes, which train a small ViT from scratch on a CPU; the paper's plain patches, of the size generic_patch_size
# picks for the images; no augmentation, since whether a shift or a flip keeps an image's label depends on the data;
# the best epoch by validation accuracy, since nothing was tuned that could choose one.
GENERIC = dict(epochs=20, batch_size=64, learning_rate=3e-3, weight_decay=0.05, warmup_epochs=3, augment="none",
               flip=False, keep="best", train_on_validation=False,
               model=dict(variant=None, patch_size="auto", hidden_size=64, depth=3, num_heads=4, mlp_dim=128,
                          stem="patch"), speed=True)
GENERIC_PATCH_SIZES = range(16, 0, -1)  # the patch sides the generic recipe tries, largest first
GENERIC_MIN_GRID = 4  # patches along each side at least: with fewer, there is little layout left to learn


def generic_patch_size(image_size):
    """The generic recipe's patch side for ``image_size`` (an int or (height, width)): the largest of
    ``GENERIC_PATCH_SIZES`` that divides both sides and leaves a grid of at least ``GENERIC_MIN_GRID`` patches along
    each (8 -> 2, 12 -> 3, 20 -> 5, 28 -> 7, 32 -> 8, 224 -> 16): as few tokens as keep a layout to learn, so steps
    are fast; 1 (every pixel a token) when none does."""
    height, width = _checks.int_pair("image_size", image_size)
    return next((p for p in GENERIC_PATCH_SIZES
                 if height % p == 0 and width % p == 0 and min(height, width) // p >= GENERIC_MIN_GRID), 1)


def recipe(name, **overrides):
    """A :class:`TrainConfig` from a named recipe (one of ``RECIPES``), with overrides; ``model`` and
    ``dataset_options`` are merged key by key."""
    _checks.choice("recipe", name, tuple(RECIPES))
    return _with_overrides(RECIPES[name], overrides)


def recipe_for(dataset, /, **overrides):
    """The recipe a data set trains with when none is named: its own (``RECIPES[dataset]``), or else ``GENERIC`` for
    it, whose ``patch_size="auto"`` becomes :func:`generic_patch_size` of the data's images when the ViT is built."""
    if dataset in RECIPES:
        return recipe(dataset, **overrides)
    return _with_overrides({**GENERIC, "dataset": dataset}, overrides)


def _with_overrides(base, overrides):
    base = dict(base)
    if overrides.get("keep") == "best":  # picking the best epoch needs the validation images held out
        overrides.setdefault("train_on_validation", False)
    for nested in ("model", "dataset_options"):  # dicts are merged with the recipe's, key by key
        if nested in overrides:
            overrides[nested] = {**base.get(nested, {}), **overrides[nested]}
    return TrainConfig(**{**base, **overrides})
