"""GELU and LayerNorm with hand-written gradients on TensorFlow: the same functions, trained faster.

Part of the speed layer (:mod:`vitlib.speed`): :func:`swap_in` puts them into a built ViT, whose weights, config and
outputs stay those of Keras' ``LayerNormalization`` and ``gelu``.

Without XLA (Keras' default on CPUs), TensorFlow runs each elementwise step of a composite function as its own
kernel over the whole tensor, and differentiates it step by step. Exact GELU, x * Phi(x), is written in
TensorFlow as `0.5 * x * erfc(-x / sqrt(2))`, and Keras' LayerNormalization as mean, variance, rsqrt, scale and
shift; their automatic gradients add another ten or so passes over the activations. Writing each backward pass
as one formula does the same arithmetic in fewer passes (benchmarks/RESULTS.md has the timings):

    d/dx [x Phi(x)] = Phi(x) + x phi(x),   phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    LayerNorm: x_hat = (x - mean) / sqrt(var + eps),  y = gamma * x_hat + beta
        dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps),  g = dy * gamma

Values and gradients match Keras' own `gelu` and `LayerNormalization` to float32 rounding (tests/test_gradients.py).
On JAX and PyTorch, which fuse these steps already (XLA; PyTorch's own GELU and LayerNorm kernels), both call
Keras' implementation.
"""
import functools

import keras
from keras import layers

_INV_SQRT2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


def _tensorflow():
    return keras.backend.backend() == "tensorflow"


def gelu(x):
    """Exact GELU (Hendrycks & Gimpel 2016), x * Phi(x), the MLP's activation; equals
    `keras.activations.gelu(x, approximate=False)`."""
    if not _tensorflow():
        return keras.activations.gelu(x, approximate=False)
    import tensorflow as tf

    @tf.custom_gradient
    def gelu_with_gradient(x):
        cdf = 0.5 + 0.5 * tf.math.erf(x * _INV_SQRT2)

        def grad(dy):
            return dy * (cdf + x * (_INV_SQRT_2PI * tf.exp(-0.5 * tf.square(x))))

        return x * cdf, grad

    return gelu_with_gradient(x)


def layer_norm(x, gamma, beta, epsilon=1e-6):
    """LayerNorm over the last axis, gamma * (x - mean) / sqrt(var + epsilon) + beta; equals
    `keras.ops.layer_normalization(x, gamma, beta, epsilon=epsilon)`."""
    if not _tensorflow():
        return keras.ops.layer_normalization(x, gamma, beta, axis=-1, epsilon=epsilon)
    import tensorflow as tf

    @tf.custom_gradient
    def layer_norm_with_gradient(x, gamma, beta):
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        inv = tf.math.rsqrt(variance + epsilon)
        x_hat = (x - mean) * inv

        def grad(dy):
            g = dy * gamma
            dx = inv * (g - tf.reduce_mean(g, -1, keepdims=True)
                        - x_hat * tf.reduce_mean(g * x_hat, -1, keepdims=True))
            batch_axes = list(range(len(x.shape) - 1))
            return dx, tf.reduce_sum(dy * x_hat, batch_axes), tf.reduce_sum(dy, batch_axes)

        return x_hat * gamma + beta, grad

    x = tf.convert_to_tensor(x)
    return layer_norm_with_gradient(x, tf.cast(gamma, x.dtype), tf.cast(beta, x.dtype))


def layer_norm_call(layer, inputs):
    """``keras.layers.LayerNormalization.call`` with the one-formula gradient on TensorFlow, where ``layer`` normalises
    the last axis with both scale and shift, as every ViT LayerNorm does."""
    ndim = len(inputs.shape)
    if not (_tensorflow() and layer.center and layer.scale and not layer.rms_scaling
            and layer.axis in ([-1], [ndim - 1])):
        return layers.LayerNormalization.call(layer, inputs)
    import tensorflow as tf

    dtype = "float64" if inputs.dtype == tf.float64 else "float32"  # float32 under mixed precision, as Keras
    y = layer_norm(tf.cast(inputs, dtype), layer.gamma, layer.beta, layer.epsilon)
    return tf.cast(y, layer.compute_dtype)


def swap_in(model):
    """Give every Keras ``LayerNormalization`` in ``model`` (nested layers included) the hand-written gradient of
    :func:`layer_norm`, and every Dense layer with Keras' exact GELU :func:`gelu`. In place: the layers keep their
    classes, names and weights, so the model saves and loads as before."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, layers.LayerNormalization):
            layer.call = functools.partial(layer_norm_call, layer)
        elif isinstance(layer, layers.Dense) and layer.activation is keras.activations.gelu:
            layer.activation = gelu
    return model
