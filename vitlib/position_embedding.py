"""The class token and position embeddings: the rest of Eq. 1 of Dosovitskiy et al. (2021),

    z0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos

(the patch embeddings x_p E come from a stem, :mod:`vitlib.patch_embedding`). Two registries: ``POSITION_EMBEDDINGS``, the
kinds of E_pos (name -> :class:`PositionTable`: a fixed table, a learned one, or none), and ``POSITION_RESIZES``, how a
learned table reaches a new patch grid (Sec. 3.2). Schemes that act inside attention (RoPE) have their own registry,
``vitlib.attention.ATTENTION_POSITIONS``.
"""
import math
import typing

import keras
import numpy as np
from keras import layers, ops

from vitlib import _checks


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
    _checks.width_multiple("sincos1d", dim, 2)
    omega = 1.0 / temperature ** (np.arange(dim // 2) / (dim // 2))
    angles = np.arange(num_positions)[:, None] * omega[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype("float32")


def sincos_2d(grid_size, dim, temperature=10000.0):
    """2-D sin-cos table for a (rows, cols) grid, row-major: (rows·cols, dim). A quarter of the
    channels encodes sin/cos of the column, a quarter sin/cos of the row (as in big_vision and MAE)."""
    rows, cols = _checks.int_pair("grid_size", grid_size)
    dim = _checks.positive_int("dim", dim)
    _checks.width_multiple("sincos2d", dim, 4)
    y, x = np.mgrid[:rows, :cols]
    omega = 1.0 / temperature ** (np.arange(dim // 4) / (dim // 4))
    y = y.reshape(-1)[:, None] * omega[None, :]
    x = x.reshape(-1)[:, None] * omega[None, :]
    return np.concatenate([np.sin(x), np.cos(x), np.sin(y), np.cos(y)], axis=1).astype("float32")


class PositionTable(typing.NamedTuple):
    """How a kind of position embedding makes its table E_pos (an entry of ``POSITION_EMBEDDINGS``)."""

    fixed: typing.Callable = None  # (grid, dim) -> the fixed (rows·cols, dim) table; None: learned, or no table
    learned: bool = False          # a trainable table, drawn at random and learned
    width_multiple: int = 1        # the width D must be a multiple of this (sin-cos tables pair sines with cosines)


POSITION_EMBEDDINGS = {
    "learned": PositionTable(learned=True),
    "sincos1d": PositionTable(lambda grid, dim: sincos_1d(grid[0] * grid[1], dim), width_multiple=2),
    "sincos2d": PositionTable(sincos_2d, width_multiple=4),
    "none": PositionTable(),
}


@keras.saving.register_keras_serializable(package="vitlib")
class PositionEmbedding(layers.Layer):
    """Adds E_pos to the tokens (Eq. 1): (B, T, D) -> (B, T, D) with T = num_prefix_tokens + rows·cols.

    kind: ``"learned"`` (trainable, normal init with std 0.02 as in the paper), ``"sincos1d"``,
    ``"sincos2d"`` (fixed tables) or ``"none"``. Fixed tables give the class token a zero vector, since
    it has no place in the image. ``embeddings`` is always the full (1, T, D) table in use.

    ``call(tokens, grid=None, keep=None)``: ``grid``, tokens of another patch grid (FlexiViT's patch sizes), get
    :meth:`table` for that grid; ``keep`` (B, K), patch indices, says which patches the tokens after the prefix are
    (the masked autoencoder's visible ones): each gets its own row of the table.
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
        dim, kind = input_shape[-1], POSITION_EMBEDDINGS[self.kind]
        if kind.fixed is None and not kind.learned:
            self.embeddings = None
            return
        _checks.width_multiple(self.kind, dim, kind.width_multiple)
        if kind.learned:
            init = keras.initializers.RandomNormal(stddev=0.02)
        else:
            table = kind.fixed((rows, cols), dim)
            table = np.concatenate([np.zeros((self.num_prefix_tokens, dim), "float32"), table])
            init = keras.initializers.Constant(table[None])
        self.embeddings = self.add_weight(
            shape=(1, expected, dim), initializer=init, trainable=kind.learned, name="embeddings"
        )

    def table(self, grid=None):
        """E_pos for a ``grid`` of patches (default: its own), (1, prefix + rows·cols, D), or None for ``"none"``. For
        another grid a learned table is interpolated bilinearly (Sec. 3.2) inside the forward pass, so that gradients
        reach the trained table, and a fixed one is computed for that grid; the class token's row stays as it is."""
        if self.embeddings is None:
            return None
        grid = self.grid_size if grid is None else _checks.int_pair("grid", grid)
        if grid == self.grid_size:
            return self.embeddings
        prefix, kind = self.num_prefix_tokens, POSITION_EMBEDDINGS[self.kind]
        if kind.learned:
            part = _resize_grid(self.embeddings[:, prefix:], self.grid_size, grid, "bilinear")
        else:
            part = kind.fixed(grid, self.embeddings.shape[-1])[None]
        return ops.concatenate([self.embeddings[:, :prefix], ops.cast(part, self.embeddings.dtype)], axis=1)

    def call(self, tokens, grid=None, keep=None):
        table = self.table(grid)
        if table is None:
            return tokens
        if keep is not None:  # the prefix rows, then each image's own patches' rows
            prefix = self.num_prefix_tokens
            rows = ops.take(table[0, prefix:], keep, axis=0)  # (B, K, D)
            front = ops.broadcast_to(table[:, :prefix], (ops.shape(keep)[0], prefix, table.shape[-1]))
            table = ops.concatenate([front, rows], axis=1)
        return tokens + ops.cast(table, tokens.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "grid_size": self.grid_size,
                "num_prefix_tokens": self.num_prefix_tokens}


# How a learned table reaches a new patch grid (Sec. 3.2): name -> the interpolation of resize_position_embeddings, or
# None for a fresh random table (the naive alternative: what a model without Sec. 3.2's trick would learn again).
POSITION_RESIZES = {"bilinear": "bilinear", "bicubic": "bicubic", "nearest": "nearest", "reinit": None}


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
    _checks.choice("interpolation", interpolation, tuple(k for k, v in POSITION_RESIZES.items() if v is not None))
    if old_grid != new_grid:
        grid = ops.convert_to_numpy(_resize_grid(grid, old_grid, new_grid, interpolation))
    out = np.concatenate([prefix, grid.reshape(1, -1, dim)], axis=1).astype(table.dtype)
    return out[0] if squeeze else out


def _resize_grid(grid, old_grid, new_grid, interpolation):
    """The patch rows of a position table, (1, rows·cols, D), resized to ``new_grid`` as an image with D channels (no
    antialiasing): (1, rows'·cols', D). The one resize of E_pos, for a copy at a new resolution and for FlexiViT's
    views alike."""
    dim = grid.shape[-1]
    image = ops.reshape(grid, (1, *old_grid, dim))
    resized = ops.image.resize(image, new_grid, interpolation=interpolation, antialias=False)
    return ops.reshape(resized, (1, new_grid[0] * new_grid[1], dim))
