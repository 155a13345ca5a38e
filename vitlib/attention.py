"""Multi-head self-attention (Sec. 3.1 and Appendix A of Dosovitskiy et al. 2021).

Tensors use the layout (batch, tokens, heads, head_dim), as ``keras.ops.dot_product_attention``.

Two registries: ``ATTENTION_IMPLS``, how softmax(QKᵀ/sqrt(d))V is computed (name -> function); ``ATTENTIONS``, the
attention layers an :class:`vitlib.EncoderBlock` can be built with (name -> class, as timm's ``attn_layer``): a
windowed or relative-position attention is a new class registered here with ``@register_attention("name")``.
"""
import math

import keras
from keras import layers, ops

from vitlib import _checks

ATTENTIONS = {}  # name -> attention layer class: (B, T, D) -> (B, T, D)


def register_attention(name):
    """Class decorator: make an attention layer available as ``attention=name`` in ``build_vit`` and the encoder
    block (and Keras-serializable). Its constructor takes ``(num_heads, dropout, attention_impl, **kwargs)`` and its
    ``call`` accepts ``training`` and ``return_attention_scores``."""
    def register(cls):
        ATTENTIONS[name] = keras.saving.register_keras_serializable(package="vitlib")(cls)
        return cls

    return register


def scaled_dot_product_attention(query, key, value, dropout=None, training=None):
    """softmax(Q Kᵀ / sqrt(d)) V, Eq. 5-6 of the paper's Appendix A. Returns (output, weights).

    query, key, value: (B, T, h, d). output: (B, T, h, d). weights: (B, h, T_query, T_key), each row
    a probability distribution over the keys.
    """
    scores = ops.einsum("bqhd,bkhd->bhqk", query, key) / math.sqrt(query.shape[-1])
    weights = ops.cast(ops.softmax(ops.cast(scores, "float32"), axis=-1), query.dtype)
    if dropout is not None:
        weights_used = dropout(weights, training=training)
    else:
        weights_used = weights
    return ops.einsum("bhqk,bkhd->bqhd", weights_used, value), weights


def fused_attention(query, key, value, dropout=None, training=None):
    """The same softmax(Q Kᵀ / sqrt(d)) V through ``keras.ops.dot_product_attention`` (flash/cuDNN kernels on GPUs).
    Returns (output, None): the weights are never materialised, so there is none to return or to drop."""
    return ops.dot_product_attention(query, key, value), None


# name -> function (query, key, value, dropout, training) -> (output, weights or None); "auto" picks one per call
ATTENTION_IMPLS = {"auto": None, "explicit": scaled_dot_product_attention, "fused": fused_attention}


@register_attention("mhsa")
class MultiHeadSelfAttention(layers.Layer):
    """(B, T, D) -> (B, T, D): project to h heads of D/h values, attend, concatenate, project back.

    attention_impl: ``"explicit"`` computes the weights as written above; ``"fused"`` calls
    ``keras.ops.dot_product_attention`` (flash/cuDNN kernels on GPUs); ``"auto"`` uses the fused path
    unless attention dropout is on. Asking for the weights always takes the explicit path.
    """

    def __init__(self, num_heads, dropout=0.0, attention_impl="auto", **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.dropout_rate = _checks.rate("attention_dropout", dropout)
        self.attention_impl = _checks.choice("attention_impl", attention_impl, tuple(ATTENTION_IMPLS))
        _checks.fused_without_dropout(attention_impl, self.dropout_rate)
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

    def call(self, x, training=None, return_attention_scores=False):
        tokens, width = x.shape[1], x.shape[2]
        q, k, v = (self._split_heads(f(x), tokens) for f in (self.query, self.key, self.value))
        impl = self.attention_impl
        if impl == "auto" or return_attention_scores:  # weights asked for, or dropped: they must be computed
            impl = "explicit" if return_attention_scores or self.dropout_rate > 0 else "fused"
        y, weights = ATTENTION_IMPLS[impl](q, k, v, self.dropout, training)
        y = self.out(ops.reshape(y, (-1, tokens, width)))
        return (y, weights) if return_attention_scores else y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "dropout": self.dropout_rate,
                "attention_impl": self.attention_impl}
