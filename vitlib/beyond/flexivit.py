"""FlexiViT (Beyer et al., CVPR 2023, "FlexiViT: One Model for All Patch Sizes"): one ViT at any patch size.

A ViT's patch embedding is a (P, P, C, D) kernel and its learned position table one vector per cell of the patch
grid. To run the model at another patch size P*, both are resized. The table is interpolated in 2-D to the new grid,
as for a new resolution (Sec. 3.2 of Dosovitskiy et al. 2021). The kernel can be resized like an image
(``"naive"``: bilinear), or by PI-resize (Sec. 3.4 of Beyer et al.):

    resize a patch:  x* = B x                  B: the bilinear resize as a (P*·P*, P·P) matrix
    naive:           w* = B w                  <x*, w*> = xᵀBᵀBw: about (P*/P)² times <x, w> when upsampling
    PI-resize:       w* = pinv(Bᵀ) w           <x*, w*> = <x, w> exactly when upsampling (Eq. 3, 4 of Beyer et al.)

PI-resize solves min over w* of E_x[(<x, w> - <Bx, w*>)²]; for P* >= P, Bᵀ has full row rank and the minimum is 0.
Trained with a patch size drawn at random for every batch (:class:`FlexiViT`), one set of weights serves them all.

    small = at_patch_size(model, 8, "pi")     # a plain ViT with 8x8 patches: a quarter of the tokens
"""
import dataclasses
import time

import keras
import numpy as np
from keras import layers, ops

from vitlib import _checks, speed
from vitlib.model import EmbeddingStage, VisionTransformer


def resize_matrix(old_size, new_size):
    """B, the bilinear resize of a (old, old) patch to (new, new) written as a matrix (new², old²): column j is
    basis patch j resized (as ``tf.image.resize``, no antialiasing, the operator of Beyer et al.'s code)."""
    old, new = _checks.positive_int("old_size", old_size), _checks.positive_int("new_size", new_size)
    basis = np.eye(old * old, dtype="float32").reshape(old * old, old, old, 1)  # one image per pixel
    resized = ops.convert_to_numpy(ops.image.resize(basis, (new, new), interpolation="bilinear", antialias=False))
    return resized.reshape(old * old, new * new).T.astype("float64")


def _naive_matrix(old, new):
    return resize_matrix(old, new)


def _pi_matrix(old, new):
    return np.linalg.pinv(resize_matrix(old, new).T)  # Eq. 4 of Beyer et al.: w* = pinv(Bᵀ) w


# name -> function (old size, new size) -> the (new², old²) matrix that maps a flattened kernel to its resized one
KERNEL_RESIZES = {"naive": _naive_matrix, "pi": _pi_matrix}


def kernel_resize_matrix(old_size, new_size, method="pi"):
    """The (new², old²) matrix M of a kernel resize: the resized kernel is M @ kernel, one column per (C, D)."""
    _checks.choice("kernel resize", method, tuple(KERNEL_RESIZES))
    return KERNEL_RESIZES[method](old_size, new_size)


def resize_kernel(kernel, new_size, method="pi"):
    """A patch-embedding kernel (P, P, C, D) resized to (P*, P*, C, D) by ``method`` (``KERNEL_RESIZES``)."""
    kernel = np.asarray(ops.convert_to_numpy(kernel))
    if kernel.ndim != 4 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"kernel must have shape (P, P, channels, width), got {kernel.shape}.")
    old, (channels, width) = kernel.shape[0], kernel.shape[2:]
    new = _checks.positive_int("new_size", new_size)
    if new == old:
        return kernel.copy()
    matrix = kernel_resize_matrix(old, new, method)
    flat = matrix @ kernel.reshape(old * old, channels * width).astype("float64")  # (P*², C·D)
    return flat.reshape(new, new, channels, width).astype(kernel.dtype)


def pi_resize(kernel, new_size):
    """PI-resize (Beyer et al., Sec. 3.4): the kernel w* with <B x, w*> = <x, w> for every patch x when upsampling
    (new_size >= P); the least-squares best such kernel when downsampling. (P, P, C, D) -> (P*, P*, C, D)."""
    return resize_kernel(kernel, new_size, "pi")


def naive_resize(kernel, new_size):
    """The kernel resized like an image (bilinear): (P, P, C, D) -> (P*, P*, C, D). Tokens grow with the patch area."""
    return resize_kernel(kernel, new_size, "naive")


def _check_vit(model, what):
    """FlexiViT resizes the one kernel E that embeds each patch, and moves the tokens to another patch grid."""
    if not isinstance(model, VisionTransformer):
        raise ValueError(f"{what} needs a vitlib ViT (vitlib.build_vit), got {type(model).__name__}.")
    c = model.config
    if model.stem.patch_kernel() is None:
        raise ValueError(f"{what} resizes the patch embedding's kernel E (x_p E), which stem={c.stem!r} does not have "
                         "(its tokens come from more than a linear map of each patch): build the ViT with stem='patch'.")
    if c.attention_position != "none":
        raise ValueError(f"{what} changes the patch grid, but attention_position={c.attention_position!r} places the "
                         "tokens on the ViT's own grid inside attention: use attention_position='none' (positions from "
                         "pos_embedding, which FlexiViT resizes).")


def at_patch_size(model, patch_size, kernel_resize="pi", into=None):
    """A copy of the vitlib ViT ``model`` (stem ``"patch"``) for patches of ``patch_size``, on images of the same size.

    The patch-embedding kernel is resized by ``kernel_resize`` (``"pi"`` or ``"naive"``), the position table made for
    the new grid as the ViT's own position layer makes it (a learned one interpolated bilinearly, a fixed sin-cos one
    computed anew: :meth:`vitlib.PositionEmbedding.table`); every other weight is copied unchanged. Returns the new
    model (not compiled): N = (H/P*)·(W/P*) tokens instead of (H/P)·(W/P).
    ``into``: a ViT built earlier for this patch size (by this function) whose weights are overwritten instead of
    building a new one: evaluating many models at one patch size then builds it once.
    """
    _check_vit(model, "at_patch_size")
    _checks.choice("kernel resize", kernel_resize, tuple(KERNEL_RESIZES))
    config = dataclasses.replace(model.config, patch_size=patch_size)  # checks that the patch size tiles the image
    if into is not None and (not isinstance(into, VisionTransformer) or into.config != config):
        raise ValueError(f"into must be a vitlib ViT of the configuration at patch size {patch_size} (as "
                         f"at_patch_size returned), got {type(into).__name__}"
                         + (f" with patch size {into.config.patch_size}." if isinstance(into, VisionTransformer) else "."))
    new = into if into is not None else VisionTransformer(config, name=model.name)
    new_kernel, new_table = new.stem.projection.kernel, new.position_embedding.embeddings
    for source, target in zip(model.weights, new.weights):  # the same architecture: the same order
        if target is new_kernel:
            value = resize_kernel(model.stem.patch_kernel(), config.patch_size, kernel_resize).reshape(target.shape)
        elif target is new_table:
            value = ops.convert_to_numpy(model.position_embedding.table(config.grid_size))
        else:
            value = ops.convert_to_numpy(source)
        target.assign(value)
    return new


@keras.saving.register_keras_serializable(package="vitlib")
class ResizedEmbedding(EmbeddingStage, layers.Layer):
    """Eq. 1 of Dosovitskiy et al. at another patch size: images (B, H, W, C) -> tokens (B, prefix + N*, D). The ViT's
    own embedding stage (:class:`vitlib.model.EmbeddingStage`) on its own patch embedding, class token and position
    table (the same weights, not copies), given the kernel PI-resized to P*; the position layer resizes its table to
    the new grid. Both resizes happen inside the forward pass, so gradients reach the original weights."""

    def __init__(self, stem, class_token, position_embedding, patch_size, grid_size, **kwargs):
        super().__init__(**kwargs)
        self.stem, self.class_token, self.position_embedding = stem, class_token, position_embedding
        self.patch_size, self.grid_size = _checks.patch_size(patch_size), _checks.int_pair("grid_size", grid_size)
        base = stem.patch_size
        self.kernel_map = None if self.patch_size == base else kernel_resize_matrix(base, self.patch_size).astype("float32")

    def build(self, input_shape):  # the shared layers come built from a trained ViT; from a config, build them here
        if not self.stem.built:
            self.stem.build(input_shape)
        width, (rows, cols) = self.stem.hidden_size, self.position_embedding.grid_size
        if self.class_token is not None and not self.class_token.built:
            self.class_token.build((None, rows * cols, width))
        if not self.position_embedding.built:
            self.position_embedding.build((None, rows * cols + (self.class_token is not None), width))

    def resized_kernel(self):
        """E* = pinv(Bᵀ) E (PI-resize), the stem's (P, P, C, D) kernel as (P*, P*, C, D); None at its own patch size."""
        if self.kernel_map is None:
            return None
        kernel, base = self.stem.patch_kernel(), self.stem.patch_size
        channels, width = kernel.shape[2], kernel.shape[3]
        flat = ops.matmul(self.kernel_map, ops.reshape(kernel, (base * base, channels * width)))  # one column per (C, D)
        return ops.reshape(flat, (self.patch_size, self.patch_size, channels, width))

    def call(self, images):
        return self.z0(images, kernel=self.resized_kernel())

    def compute_output_shape(self, input_shape):
        tokens = self.grid_size[0] * self.grid_size[1] + (self.class_token is not None)
        return (input_shape[0], tokens, self.stem.hidden_size)

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {**super().get_config(), "stem": serialize(self.stem), "class_token": serialize(self.class_token),
                "position_embedding": serialize(self.position_embedding), "patch_size": self.patch_size,
                "grid_size": self.grid_size}

    @classmethod
    def from_config(cls, config):
        deserialize = keras.saving.deserialize_keras_object
        for key in ("stem", "class_token", "position_embedding"):
            config = {**config, key: deserialize(config[key]) if config[key] is not None else None}
        return cls(**config)


def flexible_view(model, patch_size):
    """The vitlib ViT ``model`` run at ``patch_size`` *with its own weights* (not copies): a Keras model images ->
    logits whose training changes ``model``. Its embedding stage is replaced by :class:`ResizedEmbedding`; the
    embedding dropout, the encode stage and the head are the model's own. What FlexiViT trains, one view per patch
    size; for a trained model at another patch size, :func:`at_patch_size` gives the same logits as a plain ViT (a
    test checks it)."""
    _check_vit(model, "flexible_view")
    grid = _checks.divisible(model.config.image_size, patch_size)
    embedding = ResizedEmbedding(model.stem, model.class_token, model.position_embedding, patch_size, grid,
                                 name=f"embedding_at_{patch_size}")
    images = keras.Input(model.input_shape[1:], name="images")
    tokens = model.embedding_dropout(embedding(images))
    return keras.Model(images, model.head(model.encode(tokens)), name=f"{model.name}_at_{patch_size}")


def train_flexible(build, data, patch_sizes=(2, 4, 8), seeds=(0, 1, 2), steps=100, batch_size=64, progress=True,
                   **recipe_overrides):
    """FlexiViT training (Sec. 3.3 of Beyer et al.): every step takes one batch at a patch size drawn at random
    (uniformly) from ``patch_sizes``, through :func:`flexible_view`, so all sizes train the same weights. With one
    patch size it is ordinary training: the control. Same budget, optimiser and batches as
    :func:`vitlib.training.experiments.run_grid` (:func:`vitlib.training.fitting.step_budget`): ``steps`` steps of
    ``batch_size`` training images.

    ``build(seed)``: the vitlib ViT to start from (stem ``"patch"``), built after ``keras.utils.set_random_seed(seed)``.
    Returns one row per seed, as run_grid's (:func:`vitlib.training.experiments.run_row`): ``seed``, ``test_accuracy``
    (at the ViT's own patch size), ``seconds``, ..., plus ``patch_steps`` (steps taken at each size) and ``trained``,
    the trained ViT (at its own patch size). ``progress``: as run_grid's (:class:`vitlib.training.progress.Runs`).
    The views are compiled once, for all seeds: every seed starts from its own initial weights and a fresh
    optimiser state (all initial weights are drawn before the first step is traced)."""
    from vitlib.training.fitting import step_budget

    sizes = tuple(_checks.patch_size(p) for p in patch_sizes)
    if not sizes or not seeds:
        raise ValueError(f"train_flexible needs at least one patch size and one seed, got {patch_sizes!r} and {seeds!r}.")
    config, steps_per_epoch = step_budget(steps, batch_size, **recipe_overrides)
    with speed.switched(config.speed):  # the recipes' speed setting, as run_grid's
        return _train_flexible(build, data, sizes, seeds, steps, config, steps_per_epoch, progress)


def _train_flexible(build, data, sizes, seeds, steps, config, steps_per_epoch, progress):
    """The budget of :func:`vitlib.training.fitting.train_budget` (its optimiser, pipeline and rows), stepped by hand:
    each step trains the view of the patch size drawn for it, so one ``fit`` cannot run them."""
    from vitlib.speed.compiled import reset_optimizer
    from vitlib.training.experiments import run_row
    from vitlib.training.fitting import compile_for_training, training_batches
    from vitlib.training.progress import Runs

    models = {}
    for seed in seeds:
        keras.utils.set_random_seed(seed)
        models[seed] = build(seed)
    for model in models.values():
        _check_vit(model, "train_flexible")
    work = speed.accelerate(models[seeds[0]].__class__(models[seeds[0]].config))  # trains; each seed's weights copied in
    views = {p: flexible_view(work, p) for p in sizes}
    first = compile_for_training(views[sizes[0]], config, steps_per_epoch)
    for p in sizes[1:]:  # one optimiser for all views: its moments and step count follow the one set of weights
        views[p].compile(optimizer=first.optimizer, loss=first.loss, jit_compile=False)
    runs = Runs(progress, len(seeds))
    for seed in seeds:
        work.set_weights(models[seed].get_weights())
        reset_optimizer(first.optimizer)
        drawn = np.random.default_rng(seed).choice(sizes, steps)
        batches = iter(training_batches(data, config, seed, repeat=True))
        start = time.perf_counter()
        for p in drawn:
            views[int(p)].train_on_batch(*next(batches))
        seconds = time.perf_counter() - start
        models[seed].set_weights(work.get_weights())
        runs.add({**run_row(work, data, seed, seconds), "patch_steps": {p: int(np.sum(drawn == p)) for p in sizes},
                  "trained": models[seed]})
    runs.done("FlexiViT")
    return runs.rows
