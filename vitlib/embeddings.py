"""From patches to tokens: patch embedding, the class token and position embeddings.

Eq. 1 of Dosovitskiy et al. (2021):  z0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos
"""
import math

import numpy as np
import keras
from keras import layers, ops

from vitlib import _checks
from vitlib.fast import LayerNorm
from vitlib.patches import Patches, patch_grid

POSITION_EMBEDDINGS = ("learned", "sincos1d", "sincos2d", "none")


class TokenStem(layers.Layer):
    """What the three stems below share: images (B, H, W, C) -> tokens (B, N, D), with N = (H/P)·(W/P)
    whatever happens in between."""

    def __init__(self, hidden_size, patch_size, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.patch_size = _checks.positive_int("patch_size", patch_size)

    def compute_output_shape(self, input_shape):
        rows, cols = patch_grid(_checks.image_shape(input_shape)[:2], self.patch_size)
        return (input_shape[0], rows * cols, self.hidden_size)

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size, "patch_size": self.patch_size}


@keras.saving.register_keras_serializable(package="vitlib")
class PatchEmbedding(TokenStem):
    """Linear projection E of every flattened patch: (B, H, W, C) -> (B, N, D).

    ``mode="conv"`` uses a Conv2D with kernel size = stride = P (fast, as in the paper's code);
    ``mode="linear"`` flattens patches and applies a Dense layer (as in the paper's text). They are the
    same function: the Conv2D kernel (P, P, C, D) is the Dense kernel (P·P·C, D) reshaped.
    """

    def __init__(self, hidden_size, patch_size, mode="conv", **kwargs):
        super().__init__(hidden_size, patch_size, **kwargs)
        self.mode = _checks.choice("patch embedding mode", mode, ("conv", "linear"))
        if mode == "conv":
            self.projection = layers.Conv2D(hidden_size, patch_size, strides=patch_size, name="projection")
        else:
            self.patches = Patches(patch_size, name="patches")
            self.projection = layers.Dense(hidden_size, name="projection")

    def build(self, input_shape):
        h, w, c = _checks.image_shape(input_shape, f"Inputs of {self.name}")
        self.grid_size = patch_grid((h, w), self.patch_size)
        if self.mode == "conv":
            self.projection.build(input_shape)
        else:
            self.projection.build((input_shape[0], None, self.patch_size**2 * c))

    def call(self, images):
        if self.mode == "conv":
            x = self.projection(images)  # (B, rows, cols, D)
            return ops.reshape(x, (-1, self.grid_size[0] * self.grid_size[1], self.hidden_size))
        return self.projection(self.patches(images))  # (B, N, P·P·C) -> (B, N, D)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="vitlib")
class ConvStem(TokenStem):
    """Convolutional stem for a hybrid ViT: (B, H, W, C) -> (B, N, D) with the same N as patches.

    The paper's hybrid models feed CNN feature maps to the transformer (Sec. 3.1, "Hybrid
    Architecture"). This small stem, after Xiao et al. (2021), "Early convolutions help transformers
    see better", stacks log2(P) stride-2 3x3 convolutions (BatchNorm, ReLU) and a 1x1 projection to D.
    """

    def __init__(self, hidden_size, patch_size, **kwargs):
        super().__init__(hidden_size, patch_size, **kwargs)
        steps = int(round(math.log2(patch_size)))
        if 2**steps != patch_size:
            raise ValueError(
                f"stem='conv' halves the image log2(P) times, so the patch size must be a power of 2, "
                f"got {patch_size}. Use patch size {2**steps} or {2**(steps + 1)}, or stem='patch'."
            )
        widths = [max(16, hidden_size // 2 ** (steps - i)) for i in range(steps)]
        self.blocks = []
        for i, width in enumerate(widths):
            self.blocks += [
                layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False, name=f"conv_{i}"),
                layers.BatchNormalization(name=f"norm_{i}"),
                layers.ReLU(name=f"relu_{i}"),
            ]
        self.projection = layers.Conv2D(hidden_size, 1, name="projection")

    def build(self, input_shape):
        h, w, _ = _checks.image_shape(input_shape, f"Inputs of {self.name}")
        self.grid_size = patch_grid((h, w), self.patch_size)
        shape = tuple(input_shape)
        for block in self.blocks + [self.projection]:
            block.build(shape)
            shape = block.compute_output_shape(shape)

    def call(self, images, training=None):
        x = images
        for block in self.blocks:
            x = block(x, training=training)
        x = self.projection(x)
        return ops.reshape(x, (-1, self.grid_size[0] * self.grid_size[1], self.hidden_size))


@keras.saving.register_keras_serializable(package="vitlib")
class ShiftedPatchEmbedding(TokenStem):
    """Shifted Patch Tokenization (Lee, Lee & Song 2021, "Vision Transformer for Small-Size Datasets"):
    (B, H, W, C) -> (B, N, D), the same N as plain patches.

    The image and four copies shifted diagonally by half a patch are stacked along the channels, so each
    patch also sees a rim of its neighbours; the stacked patches are flattened, layer-normalised and
    projected to D. The grid, the tokens and everything after them stay those of a plain ViT.
    """

    def __init__(self, hidden_size, patch_size, **kwargs):
        super().__init__(hidden_size, patch_size, **kwargs)
        if patch_size < 2:
            raise ValueError(f"stem='shifted' shifts by half a patch, so the patch size must be at least 2, got {patch_size}.")
        self.shift = patch_size // 2
        self.patches = Patches(patch_size, name="patches")
        self.norm = LayerNorm(epsilon=1e-6, name="norm")
        self.projection = layers.Dense(hidden_size, name="projection")

    def build(self, input_shape):
        h, w, c = _checks.image_shape(input_shape, f"Inputs of {self.name}")
        self.grid_size = patch_grid((h, w), self.patch_size)
        features = self.patch_size**2 * 5 * c
        self.norm.build((input_shape[0], None, features))
        self.projection.build((input_shape[0], None, features))

    def shifted(self, images):
        """(B, H, W, C) -> (B, H, W, 5C): the image and its four diagonal shifts by P // 2 (zeros shifted in)."""
        s, h, w = self.shift, images.shape[1], images.shape[2]
        padded = ops.pad(images, [[0, 0], [s, s], [s, s], [0, 0]])
        copies = [padded[:, s + dy: s + dy + h, s + dx: s + dx + w] for dy, dx in ((-s, -s), (-s, s), (s, -s), (s, s))]
        return ops.concatenate([images, *copies], axis=-1)

    def call(self, images):
        return self.projection(self.norm(self.patches(self.shifted(images))))  # (B, N, P·P·5C) -> (B, N, D)


@keras.saving.register_keras_serializable(package="vitlib")
class ClassToken(layers.Layer):
    """Prepends a learnable [class] token: (B, N, D) -> (B, 1 + N, D). Zero-initialised, as in the
    official implementation; its final state is the image representation (Eq. 4)."""

    def build(self, input_shape):
        self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="zeros", name="token")

    def call(self, tokens):
        batch = ops.shape(tokens)[0]
        cls = ops.broadcast_to(ops.cast(self.token, tokens.dtype), (batch, 1, ops.shape(tokens)[-1]))
        return ops.concatenate([cls, tokens], axis=1)

    def compute_output_shape(self, input_shape):
        n = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], n, input_shape[-1])


def sincos_1d(num_positions, dim, temperature=10000.0):
    """Transformer sin-cos table (Vaswani et al. 2017) for positions 0..num_positions-1: (num_positions, dim).
    Sines fill the first half of the channels and cosines the second."""
    dim = _checks.positive_int("dim", dim)
    if dim % 2:
        raise ValueError(f"1-D sin-cos embeddings need an even width, got {dim}. Use {dim + 1}.")
    omega = 1.0 / temperature ** (np.arange(dim // 2) / (dim // 2))
    angles = np.arange(num_positions)[:, None] * omega[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype("float32")


def sincos_2d(grid_size, dim, temperature=10000.0):
    """2-D sin-cos table for a (rows, cols) grid, row-major: (rows·cols, dim). A quarter of the
    channels encodes sin/cos of the column, a quarter sin/cos of the row (as in big_vision and MAE)."""
    rows, cols = _checks.int_pair("grid_size", grid_size)
    dim = _checks.positive_int("dim", dim)
    if dim % 4:
        raise ValueError(
            f"2-D sin-cos embeddings need a width divisible by 4, got {dim}. Use {dim + (-dim) % 4}."
        )
    y, x = np.mgrid[:rows, :cols]
    omega = 1.0 / temperature ** (np.arange(dim // 4) / (dim // 4))
    y = y.reshape(-1)[:, None] * omega[None, :]
    x = x.reshape(-1)[:, None] * omega[None, :]
    return np.concatenate([np.sin(x), np.cos(x), np.sin(y), np.cos(y)], axis=1).astype("float32")


@keras.saving.register_keras_serializable(package="vitlib")
class PositionEmbedding(layers.Layer):
    """Adds E_pos to the tokens (Eq. 1): (B, T, D) -> (B, T, D) with T = num_prefix_tokens + rows·cols.

    kind: ``"learned"`` (trainable, normal init with std 0.02 as in the paper), ``"sincos1d"``,
    ``"sincos2d"`` (fixed tables) or ``"none"``. Fixed tables give the class token a zero vector, since
    it has no place in the image. ``embeddings`` is always the full (1, T, D) table in use.
    """

    def __init__(self, kind, grid_size, num_prefix_tokens=1, **kwargs):
        super().__init__(**kwargs)
        self.kind = _checks.choice("pos_embedding", kind, POSITION_EMBEDDINGS)
        self.grid_size = _checks.int_pair("grid_size", grid_size)
        if num_prefix_tokens not in (0, 1):
            raise ValueError(f"num_prefix_tokens must be 0 or 1 (the class token), got {num_prefix_tokens!r}.")
        self.num_prefix_tokens = num_prefix_tokens

    def build(self, input_shape):
        rows, cols = self.grid_size
        expected = self.num_prefix_tokens + rows * cols
        if input_shape[1] != expected:
            raise ValueError(
                f"{self.name} was set up for {self.num_prefix_tokens} + {rows}x{cols} = {expected} tokens, "
                f"got inputs of shape {tuple(input_shape)}. Use grid_size matching the patch grid."
            )
        dim = input_shape[-1]
        if self.kind == "none":
            self.embeddings = None
            return
        if self.kind == "learned":
            init = keras.initializers.RandomNormal(stddev=0.02)
        else:
            table = sincos_1d(rows * cols, dim) if self.kind == "sincos1d" else sincos_2d((rows, cols), dim)
            table = np.concatenate([np.zeros((self.num_prefix_tokens, dim), "float32"), table])
            init = keras.initializers.Constant(table[None])
        self.embeddings = self.add_weight(
            shape=(1, expected, dim), initializer=init, trainable=self.kind == "learned", name="embeddings"
        )

    def call(self, tokens):
        if self.embeddings is None:
            return tokens
        return tokens + ops.cast(self.embeddings, tokens.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "grid_size": self.grid_size,
                "num_prefix_tokens": self.num_prefix_tokens}


def resize_position_embeddings(embeddings, new_grid, *, old_grid=None, num_prefix_tokens=1,
                               interpolation="bilinear"):
    """Resize a learned (1, T, D) or (T, D) table to a new patch grid by 2-D interpolation (Sec. 3.2).

    Used to fine-tune at a higher resolution than pre-training: the class-token slot is kept as it is
    and the rows·cols grid part is interpolated. Returns a NumPy array shaped like the input.
    """
    table = np.asarray(embeddings)
    squeeze = table.ndim == 2
    if squeeze:
        table = table[None]
    if table.ndim != 3 or table.shape[0] != 1:
        raise ValueError(f"embeddings must have shape (1, tokens, dim) or (tokens, dim), got {np.shape(embeddings)}.")
    prefix, grid = table[:, :num_prefix_tokens], table[:, num_prefix_tokens:]
    n, dim = grid.shape[1], grid.shape[2]
    if old_grid is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(
                f"Cannot infer the grid of {n} position embeddings (after {num_prefix_tokens} prefix "
                f"tokens): not a square. Pass old_grid=(rows, cols)."
            )
        old_grid = (side, side)
    old_grid = _checks.int_pair("old_grid", old_grid)
    new_grid = _checks.int_pair("new_grid", new_grid, "A grid needs at least one row and one column.")
    if old_grid[0] * old_grid[1] != n:
        raise ValueError(
            f"old_grid {old_grid} holds {old_grid[0] * old_grid[1]} positions but the table has {n} "
            f"(after {num_prefix_tokens} prefix tokens). Check old_grid and num_prefix_tokens."
        )
    _checks.choice("interpolation", interpolation, ("bilinear", "bicubic", "nearest"))
    grid = grid.reshape(1, *old_grid, dim)
    if old_grid != new_grid:
        grid = ops.convert_to_numpy(ops.image.resize(grid, new_grid, interpolation=interpolation, antialias=False))
    out = np.concatenate([prefix, grid.reshape(1, -1, dim)], axis=1).astype(table.dtype)
    return out[0] if squeeze else out
