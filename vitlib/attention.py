"""Multi-head self-attention (Sec. 3.1 and Appendix A of Dosovitskiy et al. 2021).

Tensors use the layout (batch, tokens, heads, head_dim), as ``keras.ops.dot_product_attention``.
"""
import math

import keras
from keras import layers, ops

from vitlib import _checks

ATTENTION_IMPLS = ("auto", "explicit", "fused")


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


@keras.saving.register_keras_serializable(package="vitlib")
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
        self.attention_impl = _checks.choice("attention_impl", attention_impl, ATTENTION_IMPLS)
        if attention_impl == "fused" and self.dropout_rate > 0:
            raise ValueError(
                "attention_impl='fused' cannot apply attention dropout "
                f"(attention_dropout={dropout}). Use attention_impl='explicit' or 'auto', or attention_dropout=0."
            )
        self.dropout = layers.Dropout(self.dropout_rate, name="attention_dropout")

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.num_heads:
            raise ValueError(
                f"The width {width} is not divisible by num_heads={self.num_heads}. "
                f"Choose a number of heads that divides {width}, e.g. {_divisors_near(width, self.num_heads)}."
            )
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
        explicit = return_attention_scores or self.attention_impl == "explicit" or self.dropout_rate > 0
        if explicit:
            y, weights = scaled_dot_product_attention(q, k, v, self.dropout, training)
        else:
            y, weights = ops.dot_product_attention(q, k, v), None
        y = self.out(ops.reshape(y, (-1, tokens, width)))
        return (y, weights) if return_attention_scores else y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "dropout": self.dropout_rate,
                "attention_impl": self.attention_impl}


def _divisors_near(width, heads):
    divisors = [d for d in range(1, width + 1) if width % d == 0]
    return sorted(divisors, key=lambda d: abs(d - heads))[0]
