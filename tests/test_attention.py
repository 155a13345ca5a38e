import keras
import numpy as np
from keras import ops

import vitlib


def numpy_attention(q, k, v):
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return np.einsum("bhqk,bkhd->bqhd", weights, v), weights


def test_scaled_dot_product_attention_matches_numpy_and_rows_sum_to_one(rng):
    q, k, v = (rng.normal(size=(2, 5, 3, 4)).astype("float32") for _ in range(3))
    out, weights = (ops.convert_to_numpy(t) for t in vitlib.scaled_dot_product_attention(q, k, v))
    ref_out, ref_weights = numpy_attention(q, k, v)
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    np.testing.assert_allclose(weights, ref_weights, atol=1e-6)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)


def test_attention_to_identical_keys_is_uniform():
    q = np.random.default_rng(1).normal(size=(1, 4, 1, 8)).astype("float32")
    k = np.ones((1, 4, 1, 8), "float32")
    _, weights = vitlib.scaled_dot_product_attention(q, k, k)
    np.testing.assert_allclose(ops.convert_to_numpy(weights), 0.25, atol=1e-6)


def copy_into_keras_mha(ours, width, heads):
    mha = keras.layers.MultiHeadAttention(heads, width // heads)
    x = np.zeros((1, 3, width), "float32")
    mha(x, x)
    for name, dense in [("query", ours.query), ("key", ours.key), ("value", ours.value)]:
        kernel, bias = (ops.convert_to_numpy(w) for w in dense.weights)
        layer = getattr(mha, f"_{name}_dense")
        layer.set_weights([kernel.reshape(width, heads, -1), bias.reshape(heads, -1)])
    kernel, bias = (ops.convert_to_numpy(w) for w in ours.out.weights)
    mha._output_dense.set_weights([kernel.reshape(heads, -1, width), bias])
    return mha


def test_explicit_fused_and_keras_multi_head_attention_agree(rng):
    width, heads = 32, 4
    x = rng.normal(size=(2, 7, width)).astype("float32")
    explicit = vitlib.MultiHeadSelfAttention(heads, attention_impl="explicit")
    explicit(x)
    for dense in (explicit.query, explicit.key, explicit.value, explicit.out):  # non-zero biases too
        dense.bias.assign(rng.normal(size=width).astype("float32"))
    fused = vitlib.MultiHeadSelfAttention(heads, attention_impl="fused")
    fused(x)
    fused.set_weights(explicit.get_weights())
    mha = copy_into_keras_mha(explicit, width, heads)

    y_explicit, w_explicit = explicit(x, return_attention_scores=True)
    y_keras, w_keras = mha(x, x, return_attention_scores=True)
    np.testing.assert_allclose(ops.convert_to_numpy(fused(x)), ops.convert_to_numpy(y_explicit), atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(y_keras), ops.convert_to_numpy(y_explicit), atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(w_keras), ops.convert_to_numpy(w_explicit), atol=1e-5)
    assert tuple(w_explicit.shape) == (2, heads, 7, 7)


def test_asking_for_weights_takes_the_explicit_path_even_when_fused(rng):
    x = rng.normal(size=(1, 5, 16)).astype("float32")
    layer = vitlib.MultiHeadSelfAttention(2, attention_impl="fused")
    y, weights = layer(x, return_attention_scores=True)
    np.testing.assert_allclose(ops.convert_to_numpy(y), ops.convert_to_numpy(layer(x)), atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(weights).sum(-1), 1.0, atol=1e-5)


def test_attention_dropout_is_only_active_while_training(rng):
    x = rng.normal(size=(4, 6, 16)).astype("float32")
    layer = vitlib.MultiHeadSelfAttention(2, dropout=0.5)
    a, b = layer(x, training=False), layer(x, training=False)
    np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))
    assert not np.allclose(ops.convert_to_numpy(layer(x, training=True)), ops.convert_to_numpy(a))
