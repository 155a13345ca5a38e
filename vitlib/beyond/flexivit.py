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
from vitlib.embeddings import POSITION_EMBEDDINGS, resize_position_embeddings
from vitlib.model import VisionTransformer, encoder_blocks


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
    if not isinstance(model, VisionTransformer) or model.config.stem != "patch":
        raise ValueError(f"{what} needs a vitlib ViT with the plain patch embedding (build_vit(..., stem='patch')), "
                         f"got {type(model).__name__}" + (f" with stem={model.config.stem!r}."
                                                          if isinstance(model, VisionTransformer) else "."))


def at_patch_size(model, patch_size, kernel_resize="pi", into=None):
    """A copy of the vitlib ViT ``model`` (stem ``"patch"``) for patches of ``patch_size``, on images of the same size.

    The patch-embedding kernel is resized by ``kernel_resize`` (``"pi"`` or ``"naive"``), the learned position table
    interpolated bilinearly to the new grid (fixed sin-cos tables are computed anew); every other weight is copied
    unchanged. Returns the new model (not compiled): N = (H/P*)·(W/P*) tokens instead of (H/P)·(W/P).
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
    kernel = model.get_layer("patch_embedding").projection.kernel
    old_table = model.get_layer("position_embedding").embeddings
    new_kernel = new.get_layer("patch_embedding").projection.kernel
    new_table = new.get_layer("position_embedding").embeddings
    for source, target in zip(model.weights, new.weights):  # the same architecture: the same order
        if target is new_kernel:
            value = resize_kernel(kernel, config.patch_size, kernel_resize)
        elif target is new_table and new_table is not None:
            if not target.trainable:  # a fixed sin-cos table: already computed for the new grid
                continue
            value = resize_position_embeddings(ops.convert_to_numpy(old_table), config.grid_size,
                                               old_grid=model.config.grid_size,
                                               num_prefix_tokens=config.num_prefix_tokens)
        else:
            value = ops.convert_to_numpy(source)
        target.assign(value)
    return new


def position_resize_matrix(old_grid, new_grid):
    """The bilinear resize of a position table's grid part as a matrix (new rows·cols, old rows·cols), the same
    operator as :func:`vitlib.resize_position_embeddings` (``interpolation="bilinear"``)."""
    old_grid, new_grid = _checks.int_pair("old_grid", old_grid), _checks.int_pair("new_grid", new_grid)
    n = old_grid[0] * old_grid[1]
    return resize_position_embeddings(np.eye(n, dtype="float32"), new_grid, old_grid=old_grid,
                                      num_prefix_tokens=0).astype("float32")  # row k: new position k


@keras.saving.register_keras_serializable(package="vitlib")
class ResizedEmbedding(layers.Layer):
    """Eq. 1 of Dosovitskiy et al. at another patch size: images (B, H, W, C) -> tokens (B, prefix + N*, D), using
    a trained ViT's own patch embedding, class token and position table (the same weights, not copies), the kernel
    PI-resized and the table bilinearly resized inside the forward pass, so gradients reach the original weights."""

    def __init__(self, stem, class_token, position_embedding, patch_size, grid_size, pos_embedding="learned", **kwargs):
        super().__init__(**kwargs)
        self.stem, self.class_token, self.position_embedding = stem, class_token, position_embedding
        self.patch_size, self.grid_size = _checks.patch_size(patch_size), _checks.int_pair("grid_size", grid_size)
        self.pos_embedding = pos_embedding
        base = stem.patch_size
        self.kernel_map = None if self.patch_size == base else kernel_resize_matrix(base, self.patch_size).astype("float32")
        self.position_map = position_resize_matrix(position_embedding.grid_size, self.grid_size)

    def build(self, input_shape):  # the shared layers come built from a trained ViT; from a config, build them here
        if not self.stem.built:
            self.stem.build(input_shape)
        width, (rows, cols) = self.stem.hidden_size, self.position_embedding.grid_size
        if self.class_token is not None and not self.class_token.built:
            self.class_token.build((None, rows * cols, width))
        if not self.position_embedding.built:
            self.position_embedding.build((None, rows * cols + (self.class_token is not None), width))

    def call(self, images):
        projection, (rows, cols), base = self.stem.projection, self.grid_size, self.stem.patch_size
        kernel = projection.kernel  # (P, P, C, D)
        channels, width = kernel.shape[2], kernel.shape[3]
        if self.kernel_map is not None:  # PI-resize: E* = pinv(Bᵀ) E, one column per (channel, width)
            flat = ops.matmul(self.kernel_map, ops.reshape(kernel, (base * base, channels * width)))
            kernel = ops.reshape(flat, (self.patch_size, self.patch_size, channels, width))
        x = ops.conv(images, kernel, strides=self.patch_size, padding="valid") + projection.bias  # (B, rows, cols, D)
        x = ops.reshape(x, (-1, rows * cols, width))
        prefix = 0
        if self.class_token is not None:
            x, prefix = self.class_token(x), 1  # (B, 1 + N*, D)
        table = self.position_embedding.embeddings  # (1, prefix + N, D) or None
        if table is not None:
            if table.trainable:
                grid_part = ops.matmul(self.position_map, table[0, prefix:])  # bilinear resize: (N*, D)
            else:  # a fixed sin-cos table: computed for the new grid
                grid_part = POSITION_EMBEDDINGS[self.pos_embedding].fixed((rows, cols), width)
            x = x + ops.concatenate([table[:, :prefix], ops.cast(grid_part, x.dtype)[None]], axis=1)
        return x

    def compute_output_shape(self, input_shape):
        tokens = self.grid_size[0] * self.grid_size[1] + (self.class_token is not None)
        return (input_shape[0], tokens, self.stem.hidden_size)

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {**super().get_config(), "stem": serialize(self.stem), "class_token": serialize(self.class_token),
                "position_embedding": serialize(self.position_embedding), "patch_size": self.patch_size,
                "grid_size": self.grid_size, "pos_embedding": self.pos_embedding}

    @classmethod
    def from_config(cls, config):
        deserialize = keras.saving.deserialize_keras_object
        for key in ("stem", "class_token", "position_embedding"):
            config = {**config, key: deserialize(config[key]) if config[key] is not None else None}
        return cls(**config)


def flexible_view(model, patch_size):
    """The vitlib ViT ``model`` run at ``patch_size`` *with its own weights* (not copies): a Keras model images ->
    logits whose training changes ``model``. What FlexiViT trains, one view per patch size; for a trained model
    at another patch size, :func:`at_patch_size` gives the same logits as a plain ViT (a test checks it)."""
    _check_vit(model, "flexible_view")
    c = model.config
    grid = _checks.divisible(c.image_size, patch_size)
    embedding = ResizedEmbedding(model.get_layer("patch_embedding"),
                                 model.get_layer("class_token") if c.num_prefix_tokens else None,
                                 model.get_layer("position_embedding"), patch_size, grid, c.pos_embedding,
                                 name=f"embedding_at_{patch_size}")
    images = keras.Input(model.input_shape[1:], name="images")
    x = model.get_layer("embedding_dropout")(embedding(images))
    for block in encoder_blocks(model):
        x = block(x)
    logits = model.get_layer("head")(model.get_layer("pool")(model.get_layer("encoder_norm")(x)))
    return keras.Model(images, logits, name=f"{model.name}_at_{patch_size}")


def train_flexible(build, data, patch_sizes=(2, 4, 8), seeds=(0, 1, 2), steps=100, batch_size=64, progress=True,
                   **recipe_overrides):
    """FlexiViT training (Sec. 3.3 of Beyer et al.): every step takes one batch at a patch size drawn at random
    (uniformly) from ``patch_sizes``, through :func:`flexible_view`, so all sizes train the same weights. With one
    patch size it is ordinary training: the control. Same budget, optimiser and batches as
    :func:`vitlib.training.experiments.run_grid` (``experiments.budget``): ``steps`` steps of ``batch_size`` training images.

    ``build(seed)``: the vitlib ViT to start from (stem ``"patch"``), built after ``keras.utils.set_random_seed(seed)``.
    Returns one row per seed, as run_grid's: ``seed``, ``test_accuracy`` (at the ViT's own patch size), ``seconds``,
    ``patch_steps`` (steps taken at each size) and ``trained``, the trained ViT (at its own patch size).
    The views are compiled once, for all seeds: every seed starts from its own initial weights and a fresh
    optimiser state (all initial weights are drawn before the first step is traced)."""
    from vitlib.training.experiments import budget

    sizes = tuple(_checks.patch_size(p) for p in patch_sizes)
    if not sizes or not seeds:
        raise ValueError(f"train_flexible needs at least one patch size and one seed, got {patch_sizes!r} and {seeds!r}.")
    config, steps_per_epoch = budget(steps, batch_size, **recipe_overrides)
    with speed.switched(config.speed):  # the recipes' speed setting, as run_grid's
        return _train_flexible(build, data, sizes, seeds, steps, config, steps_per_epoch, progress)


def _train_flexible(build, data, sizes, seeds, steps, config, steps_per_epoch, progress):
    from vitlib.data.pipeline import make_pipeline
    from vitlib.training.fitting import accuracy, compile_for_training

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
    rows, line = [], _Progress(progress, len(seeds))
    for seed in seeds:
        work.set_weights(models[seed].get_weights())
        for variable in first.optimizer.variables:  # a fresh optimiser: step 0, moments 0
            variable.assign(ops.zeros(variable.shape, variable.dtype))
        drawn = np.random.default_rng(seed).choice(sizes, steps)
        batches = iter(make_pipeline(data.x_train, data.y_train, config.batch_size, data.num_classes, shuffle=True,
                                     seed=seed, drop_remainder=True, map_fn=data.train_map, repeat=True))
        start = time.perf_counter()
        for p in drawn:
            views[int(p)].train_on_batch(*next(batches))
        seconds = time.perf_counter() - start
        models[seed].set_weights(work.get_weights())
        rows.append({"seed": seed, "train_images": len(data.y_train), "patch_steps": {p: int(np.sum(drawn == p)) for p in sizes},
                     "val_accuracy": accuracy(work, data.x_val, data.y_val),
                     "test_accuracy": accuracy(work, data.x_test, data.y_test), "seconds": round(seconds, 2),
                     "trained": models[seed]})
        line.update(rows[-1])
    line.close()
    return rows


class _Progress:
    """One line for train_flexible: True prints one when all seeds are done, a function is called after each."""

    def __init__(self, progress, total):
        self.progress, self.total, self.rows = progress, total, []

    def update(self, row):
        self.rows.append(row)
        if callable(self.progress):
            self.progress(len(self.rows), self.total, row)

    def close(self):
        if self.progress is True:
            print(f"{len(self.rows)} runs, {sum(r['seconds'] for r in self.rows):.0f} s; mean test accuracy "
                  f"{np.mean([r['test_accuracy'] for r in self.rows]):.1%}", flush=True)
