import numpy as np
from keras import ops
from scipy.special import erf

import vitlib


def layer_norm(x, gamma, beta, eps=1e-6):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def numpy_encoder_block(x, block, heads):
    """Eq. 2-3 of the paper written out in NumPy, with the block's own weights."""
    w = {v.path.split("/", 1)[1]: ops.convert_to_numpy(v) for v in block.weights}
    b, t, d = x.shape
    y = layer_norm(x, w["norm1/gamma"], w["norm1/beta"])
    q, k, v = (y @ w[f"attention/{n}/kernel"] + w[f"attention/{n}/bias"] for n in ("query", "key", "value"))
    q, k, v = (a.reshape(b, t, heads, d // heads) for a in (q, k, v))
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(d // heads)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    y = np.einsum("bhqk,bkhd->bqhd", p, v).reshape(b, t, d)
    x = x + y @ w["attention/out/kernel"] + w["attention/out/bias"]
    y = layer_norm(x, w["norm2/gamma"], w["norm2/beta"])
    h = y @ w["mlp/fc1/kernel"] + w["mlp/fc1/bias"]
    h = 0.5 * h * (1 + erf(h / np.sqrt(2)))  # exact GELU
    return x + h @ w["mlp/fc2/kernel"] + w["mlp/fc2/bias"]


def test_encoder_block_is_eq_2_and_3_of_the_paper(rng):
    x = rng.normal(size=(2, 5, 16)).astype("float32")
    block = vitlib.EncoderBlock(num_heads=4, mlp_dim=32, name="block")
    block(x)
    for v in block.weights:  # move LayerNorm scales and biases off their trivial init
        v.assign(ops.convert_to_numpy(v) + rng.normal(scale=0.1, size=v.shape).astype("float32"))
    np.testing.assert_allclose(ops.convert_to_numpy(block(x)), numpy_encoder_block(x, block, 4), atol=1e-4)
    assert block.norm1.epsilon == 1e-6 and block.norm2.epsilon == 1e-6


def test_encoder_block_returns_attention_weights_on_request(rng):
    x = rng.normal(size=(2, 5, 16)).astype("float32")
    block = vitlib.EncoderBlock(num_heads=4, mlp_dim=32)
    y, weights = block(x, return_attention_scores=True)
    np.testing.assert_allclose(ops.convert_to_numpy(y), ops.convert_to_numpy(block(x)), atol=1e-5)
    assert tuple(weights.shape) == (2, 4, 5, 5)


def test_stochastic_depth_drops_whole_samples_and_keeps_the_mean():
    layer = vitlib.StochasticDepth(0.25, seed=1)
    x = np.ones((4000, 3, 2), "float32")
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x)), x)  # inference: identity
    y = ops.convert_to_numpy(layer(x, training=True))
    per_sample = y.reshape(4000, -1)
    assert set(np.unique(per_sample.std(1))) == {0.0}  # a sample is kept or dropped whole
    np.testing.assert_allclose(np.unique(per_sample), [0.0, 1 / 0.75], rtol=1e-6)
    assert abs((per_sample[:, 0] == 0).mean() - 0.25) < 0.03
    assert abs(y.mean() - 1.0) < 0.05


def test_mlp_block_widens_then_projects_back(rng):
    mlp = vitlib.MLPBlock(64)
    y = mlp(rng.normal(size=(2, 3, 16)).astype("float32"))
    assert tuple(y.shape) == (2, 3, 16) and mlp.fc1.kernel.shape == (16, 64) and mlp.fc2.kernel.shape == (64, 16)
