"""The class token and position embeddings: the rest of Eq. 1 of Dosovitskiy et al. (2021),

    z0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos

(the patch embeddings x_p E come from a stem, :mod:`vitlib.stems`). ``POSITION_EMBEDDINGS`` is the registry of
position embedding kinds: name -> the function that makes its fixed table, or ``None`` for a learned one
(``"learned"``) or none at all (``"none"``).
"""
import math

import keras
import numpy as np
from keras import layers, ops

from vitlib import _checks
from vitlib.stems import STEMS, ConvStem, PatchEmbedding, ShiftedPatchEmbedding, TokenStem  # noqa: F401  (re-exported)


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
    _checks.sincos_width("sincos1d", dim)
    omega = 1.0 / temperature ** (np.arange(dim // 2) / (dim // 2))
    angles = np.arange(num_positions)[:, None] * omega[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype("float32")


def sincos_2d(grid_size, dim, temperature=10000.0):
    """2-D sin-cos table for a (rows, cols) grid, row-major: (rows·cols, dim). A quarter of the
    channels encodes sin/cos of the column, a quarter sin/cos of the row (as in big_vision and MAE)."""
    rows, cols = _checks.int_pair("grid_size", grid_size)
    dim = _checks.positive_int("dim", dim)
    _checks.sincos_width("sincos2d", dim)
    y, x = np.mgrid[:rows, :cols]
    omega = 1.0 / temperature ** (np.arange(dim // 4) / (dim // 4))
    y = y.reshape(-1)[:, None] * omega[None, :]
    x = x.reshape(-1)[:, None] * omega[None, :]
    return np.concatenate([np.sin(x), np.cos(x), np.sin(y), np.cos(y)], axis=1).astype("float32")


# name -> the fixed (rows·cols, dim) table for a grid, or None: "learned" starts random and is trained, "none" adds nothing
POSITION_EMBEDDINGS = {
    "learned": None,
    "sincos1d": lambda grid, dim: sincos_1d(grid[0] * grid[1], dim),
    "sincos2d": sincos_2d,
    "none": None,
}


@keras.saving.register_keras_serializable(package="vitlib")
class PositionEmbedding(layers.Layer):
    """Adds E_pos to the tokens (Eq. 1): (B, T, D) -> (B, T, D) with T = num_prefix_tokens + rows·cols.

    kind: ``"learned"`` (trainable, normal init with std 0.02 as in the paper), ``"sincos1d"``,
    ``"sincos2d"`` (fixed tables) or ``"none"``. Fixed tables give the class token a zero vector, since
    it has no place in the image. ``embeddings`` is always the full (1, T, D) table in use.
    """

    def __init__(self, kind, grid_size, num_prefix_tokens=1, **kwargs):
        super().__init__(**kwargs)
        self.kind = _checks.choice("pos_embedding", kind, tuple(POSITION_EMBEDDINGS))
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
        _checks.sincos_width(self.kind, dim)
        if self.kind == "learned":
            init = keras.initializers.RandomNormal(stddev=0.02)
        else:
            table = POSITION_EMBEDDINGS[self.kind]((rows, cols), dim)
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
