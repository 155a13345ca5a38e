"""vitlib.speed.gradients: GELU and LayerNorm give the values and gradients of their definitions, on every backend,
and swapped into a ViT they leave its weights, outputs and saved file as they were.

The references are NumPy in float64: the formulas for the values, central differences for the gradients.
"""
import keras
import numpy as np
import pytest
from keras import ops
from scipy.special import erf

import vitlib
from vitlib import speed
from vitlib.speed import gradients as fast


def numpy_gelu(x):
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def numpy_layer_norm(x, gamma, beta, eps=1e-6):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def numerical_gradient(fn, arrays, index, probe, h=1e-5):
    """d sum(fn(*arrays) * probe) / d arrays[index], by central differences in float64."""
    arrays = [a.astype("float64") for a in arrays]
    grad = np.zeros_like(arrays[index])
    for i in np.ndindex(grad.shape):
        for sign in (1, -1):
            shifted = [a.copy() for a in arrays]
            shifted[index][i] += sign * h
            grad[i] += sign * (fn(*shifted) * probe).sum() / (2 * h)
    return grad


def backend_gradients(fn, arrays, probe):
    """Value of fn(*arrays) and the gradients of sum(fn(*arrays) * probe) with respect to every array,
    computed by the active Keras backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xs = [tf.constant(a) for a in arrays]
        with tf.GradientTape() as tape:
            tape.watch(xs)
            y = fn(*xs)
            loss = tf.reduce_sum(y * probe)
        return y.numpy(), [g.numpy() for g in tape.gradient(loss, xs)]
    if backend == "jax":
        import jax

        def loss(*xs):
            return (fn(*xs) * probe).sum()

        return np.asarray(fn(*arrays)), [np.asarray(g) for g in jax.grad(loss, range(len(arrays)))(*arrays)]
    if backend == "torch":
        import torch

        xs = [torch.tensor(a, requires_grad=True) for a in arrays]
        y = fn(*xs)
        (y * torch.tensor(probe)).sum().backward()
        return y.detach().cpu().numpy(), [x.grad.cpu().numpy() for x in xs]
    pytest.skip(f"no gradient helper for the {backend} backend")


def test_gelu_is_x_times_the_normal_cdf_with_the_matching_gradient(rng):
    x = rng.normal(scale=2.0, size=(3, 7)).astype("float32")
    probe = rng.normal(size=x.shape).astype("float32")
    y, (dx,) = backend_gradients(fast.gelu, [x], probe)
    np.testing.assert_allclose(y, numpy_gelu(x.astype("float64")), atol=1e-6)
    np.testing.assert_allclose(dx, numerical_gradient(numpy_gelu, [x], 0, probe), atol=1e-5)
    # and it is Keras' exact GELU, not the tanh approximation (which differs by up to about 1e-3)
    np.testing.assert_allclose(y, ops.convert_to_numpy(keras.activations.gelu(x, approximate=False)), atol=1e-6)


def test_layer_norm_matches_its_definition_and_its_gradients(rng):
    x = rng.normal(loc=1.0, scale=3.0, size=(2, 3, 6)).astype("float32")
    gamma = rng.normal(loc=1.0, size=6).astype("float32")
    beta = rng.normal(size=6).astype("float32")
    probe = rng.normal(size=x.shape).astype("float32")
    y, grads = backend_gradients(lambda a, g, b: fast.layer_norm(a, g, b, 1e-6), [x, gamma, beta], probe)
    np.testing.assert_allclose(y, numpy_layer_norm(x, gamma, beta), atol=1e-5)
    for index, grad in enumerate(grads):
        expected = numerical_gradient(numpy_layer_norm, [x, gamma, beta], index, probe)
        np.testing.assert_allclose(grad, expected, atol=2e-4, rtol=1e-4)


def _swapped(model):
    with speed.switched():
        return speed.accelerate(model)


@pytest.mark.speed
def test_a_swapped_layer_norm_trains_exactly_like_keras_layer_normalization(rng):
    x = rng.normal(size=(4, 5, 8)).astype("float32")
    y = rng.integers(0, 3, 4)

    def model(swap):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((5, 8))
        h = keras.layers.Dense(8)(inputs)
        h = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")(h)
        outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(h))
        m = keras.Model(inputs, outputs)
        if swap:
            _swapped(m)
        m.compile(keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return m

    ours, theirs = model(True), model(False)
    for _ in range(3):
        ours.train_on_batch(x, y), theirs.train_on_batch(x, y)
    for a, b in zip(ours.weights, theirs.weights):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), atol=1e-5, err_msg=a.path)
    assert type(ours.get_layer("norm")) is keras.layers.LayerNormalization  # the same layer, its call replaced


def test_layer_norm_keeps_mixed_precision_outputs_in_the_compute_dtype(rng):
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    norm = keras.layers.LayerNormalization(epsilon=1e-6, dtype="mixed_float16")
    norm.build(x.shape)
    y = fast.layer_norm_call(norm, ops.cast(x, "float16"))
    assert ops.convert_to_numpy(y).dtype == np.float16
    np.testing.assert_allclose(ops.convert_to_numpy(y), numpy_layer_norm(x, 1.0, 0.0), atol=5e-3)


@pytest.mark.speed
def test_the_swap_reaches_every_layer_norm_and_gelu_of_a_vit_on_tensorflow_only(monkeypatch):
    calls = []
    monkeypatch.setattr(fast, "layer_norm", lambda *a: calls.append("norm") or a[0])
    model = _swapped(vitlib.build_vit(None, image_size=8, patch_size=4, hidden_size=8, depth=2, num_heads=2, mlp_dim=8,
                                      num_classes=2, stem="shifted"))
    fc1 = [layer.mlp.fc1 for layer in vitlib.encoder_blocks(model)]
    model(np.zeros((1, 8, 8, 3), "float32"))
    if keras.backend.backend() == "tensorflow":  # the stem's, two per block and the encoder's: 6
        assert calls.count("norm") == 6 and all(f.activation is fast.gelu for f in fc1)
    else:  # JAX and PyTorch fuse these already: nothing swapped
        assert calls == [] and all(f.activation is keras.activations.gelu for f in fc1)
    plain = vitlib.build_vit("Ti/16", image_size=32, num_classes=2)  # without the speed layer: Keras' own
    assert plain.get_layer("encoder_block_0").mlp.fc1.activation is keras.activations.gelu


@pytest.mark.speed
def test_a_vit_computes_the_same_function_and_saves_the_same_file_with_and_without_the_swap(rng, tmp_path):
    x = rng.random((2, 8, 8, 3)).astype("float32")
    kwargs = dict(image_size=8, patch_size=4, hidden_size=16, depth=2, num_heads=2, mlp_dim=32, num_classes=3,
                  stem="shifted")
    plain, swapped = vitlib.build_vit(None, **kwargs), _swapped(vitlib.build_vit(None, **kwargs))
    swapped.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in plain.get_weights()])
    plain.set_weights(swapped.get_weights())
    np.testing.assert_allclose(ops.convert_to_numpy(plain(x)), ops.convert_to_numpy(swapped(x)), rtol=1e-5, atol=1e-5)
    swapped.save(tmp_path / "swapped.keras")  # the weights under the names of the plain model's
    loaded = keras.saving.load_model(tmp_path / "swapped.keras", safe_mode=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(plain(x)))
