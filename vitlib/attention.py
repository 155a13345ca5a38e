"""Multi-head self-attention (Sec. 3.1 and Appendix A of Dosovitskiy et al. 2021).

Tensors use the layout (batch, tokens, heads, head_dim), as ``keras.ops.dot_product_attention``.

Three registries: ``ATTENTIONS``, the attention layers an :class:`vitlib.EncoderBlock` can be built with (name ->
class, as timm's ``attn_layer``): a windowed or relative-position attention is a new class registered here with
``@register_attention("name")``; ``ATTENTION_IMPLS``, how :class:`MultiHeadSelfAttention` computes softmax(QKᵀ/sqrt(d))V
(name -> function); ``ATTENTION_POSITIONS``, position schemes that act inside attention rather than on the tokens
(name -> function; rotary embeddings, RoPE, would be one).
"""
import math

import keras
from keras import layers, ops

from vitlib import _checks

ATTENTIONS = {}  # name -> attention layer class: (B, T, D) -> (B, T, D)


def register_attention(name):
    """Class decorator: make an attention layer available as ``attention=name`` in ``build_vit``, the encoder block
    and ``python -m vitlib.train --attention`` (and Keras-serializable). Its constructor takes ``(num_heads,
    dropout=0.0, **options)`` (``options``: its own, passed as the block's ``attention_options``) and its ``call``
    accepts ``training`` and ``return_attention_scores``. Token merging (:mod:`vitlib.beyond.tome`) also needs
    ``bias``, added to the scores (softmax(QKᵀ/√d + bias), proportional attention), and ``return_keys``, the keys it
    merges by (see :class:`MultiHeadSelfAttention`); it refuses a layer whose ``call`` takes neither."""
    def register(cls):
        ATTENTIONS[name] = keras.saving.register_keras_serializable(package="vitlib")(cls)
        return cls

    return register


def scaled_dot_product_attention(query, key, value, dropout=None, training=None, bias=None):
    """softmax(Q Kᵀ / sqrt(d) + bias) V, Eq. 5-6 of the paper's Appendix A (no bias there). Returns (output, weights).

    query, key, value: (B, T, h, d). output: (B, T, h, d). weights: (B, h, T_query, T_key), each row
    a probability distribution over the keys. bias: None, or added to the scores, broadcast to (B, h, T, T).
    """
    scores = ops.einsum("bqhd,bkhd->bhqk", query, key) / math.sqrt(query.shape[-1])
    if bias is not None:
        scores = scores + ops.cast(bias, scores.dtype)
    weights = ops.cast(ops.softmax(ops.cast(scores, "float32"), axis=-1), query.dtype)
    if dropout is not None:
        weights_used = dropout(weights, training=training)
    else:
        weights_used = weights
    return ops.einsum("bhqk,bkhd->bqhd", weights_used, value), weights


def fused_attention(query, key, value, dropout=None, training=None, bias=None):
    """The same softmax(Q Kᵀ / sqrt(d) + bias) V through ``keras.ops.dot_product_attention`` (flash/cuDNN kernels on
    GPUs). Returns (output, None): the weights are never materialised, so there is none to return or to drop."""
    return ops.dot_product_attention(query, key, value, bias=bias), None


# name -> function (query, key, value, dropout, training, bias) -> (output, weights or None); "auto" picks one per call
ATTENTION_IMPLS = {"auto": None, "explicit": scaled_dot_product_attention, "fused": fused_attention}

# Position schemes that act inside attention, on the queries and keys of every layer, instead of adding E_pos to the
# tokens once (Eq. 1). Rotary position embeddings (RoPE; Su et al. 2021, in 2-D for ViTs Heo et al. 2024) are the
# best-known: each query and key is rotated by angles set by its patch's row and column, so that the score of two
# patches depends on their offset. name -> function (query, key, grid_size, num_prefix_tokens) -> (query, key), both
# (B, T, h, d), the prefix tokens (the class token) first; None: no such scheme. A new scheme is one entry here
# (``build_vit(attention_position=name)``), usually with ``pos_embedding="none"``.
ATTENTION_POSITIONS = {"none": None}


@register_attention("mhsa")
class MultiHeadSelfAttention(layers.Layer):
    """(B, T, D) -> (B, T, D): project to h heads of D/h values, attend, concatenate, project back.

    attention_impl: ``"explicit"`` computes the weights as written above; ``"fused"`` calls
    ``keras.ops.dot_product_attention`` (flash/cuDNN kernels on GPUs); ``"auto"`` uses the fused path
    unless attention dropout is on or a bias is given (flash kernels take none). Asking for the weights always takes
    the explicit path.
    position: a scheme of ``ATTENTION_POSITIONS`` applied to the queries and keys, for tokens laid out as
    ``num_prefix_tokens`` + a ``grid_size`` grid of patches.

    ``call(x, training=None, return_attention_scores=False, bias=None, return_keys=False)``: ``bias`` is added to the
    scores, softmax(QKᵀ/√d + bias), broadcast to (B, h, T, T): token merging's log of each token's size
    (proportional attention); ``return_keys`` also returns the keys K (B, T, h, d), what token merging compares.
    Returns y, or a tuple of y, then the weights, then the keys, as asked.
    """

    def __init__(self, num_heads, dropout=0.0, attention_impl="auto", position="none", grid_size=None,
                 num_prefix_tokens=0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.dropout_rate = _checks.rate("attention_dropout", dropout)
        self.attention_impl = _checks.choice("attention_impl", attention_impl, tuple(ATTENTION_IMPLS))
        _checks.fused_without_dropout(attention_impl, self.dropout_rate)
        self.position = _checks.choice("attention_position", position, tuple(ATTENTION_POSITIONS))
        self.grid_size = None if grid_size is None else _checks.int_pair("grid_size", grid_size)
        if self.position != "none" and self.grid_size is None:
            raise ValueError(f"attention position {position!r} needs the patch grid: pass grid_size=(rows, cols).")
        self.num_prefix_tokens = num_prefix_tokens
        self.dropout = layers.Dropout(self.dropout_rate, name="attention_dropout")

    def build(self, input_shape):
        width = input_shape[-1]
        _checks.heads_divide(width, self.num_heads)
        self.head_dim = width // self.num_heads
        self.query = layers.Dense(width, name="query")
        self.key = layers.Dense(width, name="key")
        self.value = layers.Dense(width, name="value")
        self.out = layers.Dense(width, name="out")
        for dense in (self.query, self.key, self.value, self.out):
            dense.build(input_shape)

    def _split_heads(self, x, tokens):
        return ops.reshape(x, (-1, tokens, self.num_heads, self.head_dim))  # (B, T, h, d)

    def call(self, x, training=None, return_attention_scores=False, bias=None, return_keys=False):
        tokens, width = x.shape[1], x.shape[2]
        q, k, v = (self._split_heads(f(x), tokens) for f in (self.query, self.key, self.value))
        if ATTENTION_POSITIONS[self.position] is not None:
            q, k = ATTENTION_POSITIONS[self.position](q, k, self.grid_size, self.num_prefix_tokens)
        impl = self.attention_impl
        if impl == "auto" or return_attention_scores:  # weights asked for, or dropped: they must be computed
            explicit = return_attention_scores or self.dropout_rate > 0 or bias is not None
            impl = "explicit" if explicit else "fused"
        y, weights = ATTENTION_IMPLS[impl](q, k, v, self.dropout, training, bias)
        y = self.out(ops.reshape(y, (-1, tokens, width)))
        extra = ([weights] if return_attention_scores else []) + ([k] if return_keys else [])
        return (y, *extra) if extra else y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "dropout": self.dropout_rate,
                "attention_impl": self.attention_impl, "position": self.position, "grid_size": self.grid_size,
                "num_prefix_tokens": self.num_prefix_tokens}
