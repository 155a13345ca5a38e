"""GELU and LayerNorm with hand-written gradients on TensorFlow: the same functions, trained faster.

An opt-in: ``build_vit(..., custom_gradients=True)`` (the training recipes switch it on) builds the encoder with
these; by default a ViT uses Keras' own ``LayerNormalization`` and GELU, the standard layers of Eq. 2-3.

Without XLA (Keras' default on CPUs), TensorFlow runs each elementwise step of a composite function as its own
kernel over the whole tensor, and differentiates it step by step. Exact GELU, x * Phi(x), is written in
TensorFlow as `0.5 * x * erfc(-x / sqrt(2))`, and Keras' LayerNormalization as mean, variance, rsqrt, scale and
shift; their automatic gradients add another ten or so passes over the activations. Writing each backward pass
as one formula does the same arithmetic in fewer passes. On the 2-core CI CPU, for the activations of a ViT-Ti/4
at 32x32 with batch 128, GELU forward + backward goes from about 100 ms to 40 ms and LayerNorm from 29 ms to
11 ms per layer (benchmarks/RESULTS.md has the whole-model figures).

    d/dx [x Phi(x)] = Phi(x) + x phi(x),   phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    LayerNorm: x_hat = (x - mean) / sqrt(var + eps),  y = gamma * x_hat + beta
        dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps),  g = dy * gamma

Values and gradients match Keras' own `gelu` and `LayerNormalization` to float32 rounding (tests/test_fast.py),
and the weights are the same, so models saved before or after this module load either way. On JAX and PyTorch,
which fuse these steps already (XLA; PyTorch's own GELU and LayerNorm kernels), both call Keras' implementation.
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


@keras.saving.register_keras_serializable(package="vitlib")
class LayerNorm(layers.LayerNormalization):
    """`keras.layers.LayerNormalization` (same weights, config and results) with a one-formula gradient on
    TensorFlow when it normalises the last axis with both scale and shift, as every ViT LayerNorm does."""

    def call(self, inputs):
        ndim = len(inputs.shape)
        if not (_tensorflow() and self.center and self.scale and not self.rms_scaling
                and self.axis in ([-1], [ndim - 1])):
            return super().call(inputs)
        import tensorflow as tf

        dtype = "float64" if inputs.dtype == tf.float64 else "float32"  # float32 under mixed precision, as Keras
        y = layer_norm(tf.cast(inputs, dtype), self.gamma, self.beta, self.epsilon)
        return tf.cast(y, self.compute_dtype)


LAYER_NORM_EPSILON = 1e-6  # as in the paper's code (Keras' default, 1e-3, is another function)


def norm_layer(custom_gradients=False, name=None, epsilon=LAYER_NORM_EPSILON):
    """The ViT's LayerNorm layer: Keras' ``LayerNormalization``, or :class:`LayerNorm` with ``custom_gradients``."""
    return (LayerNorm if custom_gradients else layers.LayerNormalization)(epsilon=epsilon, name=name)


def mlp_activation(custom_gradients=False):
    """The MLP's exact GELU: Keras' ``gelu``, or :func:`gelu` with ``custom_gradients``."""
    return gelu if custom_gradients else functools.partial(keras.activations.gelu, approximate=False)
