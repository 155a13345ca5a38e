"""vitlib.fast: GELU and LayerNorm give the values and gradients of their definitions, on every backend.

The references are NumPy in float64: the formulas for the values, central differences for the gradients.
"""
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops
from scipy.special import erf

import vitlib
from vitlib import fast


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


def test_layer_norm_layer_trains_exactly_like_keras_layer_normalization(rng):
    x = rng.normal(size=(4, 5, 8)).astype("float32")
    y = rng.integers(0, 3, 4)

    def model(norm):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((5, 8))
        h = keras.layers.Dense(8)(inputs)
        h = norm(epsilon=1e-6, name="norm")(h)
        outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(h))
        m = keras.Model(inputs, outputs)
        m.compile(keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return m

    ours, theirs = model(fast.LayerNorm), model(keras.layers.LayerNormalization)
    for _ in range(3):
        ours.train_on_batch(x, y), theirs.train_on_batch(x, y)
    for a, b in zip(ours.weights, theirs.weights):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), atol=1e-5, err_msg=a.path)
    assert isinstance(ours.get_layer("norm"), keras.layers.LayerNormalization)  # same weights, same config


def test_layer_norm_layer_keeps_mixed_precision_outputs_in_the_compute_dtype(rng):
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    norm = fast.LayerNorm(epsilon=1e-6, dtype="mixed_float16")
    y = norm(ops.cast(x, "float16"))
    assert ops.convert_to_numpy(y).dtype == np.float16
    np.testing.assert_allclose(ops.convert_to_numpy(y), numpy_layer_norm(x, 1.0, 0.0), atol=5e-3)


def test_the_encoder_uses_keras_layers_by_default_and_these_when_asked():
    plain, custom = (vitlib.EncoderBlock(num_heads=2, mlp_dim=8, custom_gradients=c) for c in (False, True))
    for block in (plain, custom):
        block.build((1, 3, 4))
        assert block.mlp.fc1.activation is keras.activations.linear  # GELU follows it, in MLPBlock.call
    assert type(plain.norm1) is keras.layers.LayerNormalization and type(plain.norm2) is keras.layers.LayerNormalization
    assert isinstance(custom.norm1, fast.LayerNorm) and isinstance(custom.norm2, fast.LayerNorm)
    assert plain.mlp.activation is not fast.gelu and custom.mlp.activation is fast.gelu
    for flag, norm in ((False, keras.layers.LayerNormalization), (True, fast.LayerNorm)):
        model = vitlib.build_vit("Ti/16", image_size=32, num_classes=2, custom_gradients=flag)
        assert type(model.get_layer("encoder_norm")) is norm


def test_models_with_and_without_custom_gradients_compute_the_same_function(rng):
    x = rng.random((2, 8, 8, 3)).astype("float32")
    kwargs = dict(image_size=8, patch_size=4, hidden_size=16, depth=2, num_heads=2, mlp_dim=32, num_classes=3,
                  stem="shifted")
    plain, custom = (vitlib.build_vit(None, custom_gradients=c, **kwargs) for c in (False, True))
    custom.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in plain.get_weights()])
    plain.set_weights(custom.get_weights())
    np.testing.assert_allclose(ops.convert_to_numpy(plain(x)), ops.convert_to_numpy(custom(x)), rtol=1e-5, atol=1e-5)


def test_files_saved_before_custom_gradients_was_an_option_load_as_they_were():
    """tests/fixtures/*.keras were written by vitlib when it always used these layers (tests/fixtures/make_fixtures.py)."""
    fixtures = Path(__file__).parent / "fixtures"
    reference = np.load(fixtures / "outputs_before_refactor.npz")
    for name in ("patch_token_learned", "shifted_gap_sincos2d", "conv_token_sincos1d"):
        model = keras.saving.load_model(fixtures / f"{name}.keras", safe_mode=True)
        assert model.config.custom_gradients is True, name
        np.testing.assert_allclose(ops.convert_to_numpy(model(reference["images"])), reference[name],
                                   rtol=1e-5, atol=1e-6, err_msg=name)
