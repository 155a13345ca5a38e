"""Images as sequences of patches: the "16x16 words" of Dosovitskiy et al. (2021), Sec. 3.1.

An image (H, W, C) becomes N = (H/P)·(W/P) tokens of P·P·C values each. Patches are taken row by
row, and each patch is flattened as (row, column, channel), the same order as
``tf.image.extract_patches``. Three routes compute the same thing:

* ``"reshape"``: cut the height and width axes into (grid, patch) and transpose (the default);
* ``"conv"``: a strided convolution whose kernel is the identity, one output channel per patch pixel;
* ``"tf"``: TensorFlow's ``tf.image.extract_patches``, as in the source blog post (TensorFlow only).
"""
import keras
import numpy as np
from keras import ops

from vitlib import _checks

METHODS = ("reshape", "conv", "tf")


def patch_grid(image_size, patch_size):
    """Rows and columns of patches, e.g. ``patch_grid(224, 16) == (14, 14)``."""
    return _checks.divisible(image_size, patch_size)


def num_patches(image_size, patch_size):
    """Number of tokens N = (H/P)·(W/P), e.g. 196 for 224x224 images and 16x16 patches."""
    rows, cols = patch_grid(image_size, patch_size)
    return rows * cols


def identity_patch_kernel(patch_size, channels):
    """Conv kernel (P, P, C, P·P·C) that copies each patch pixel into its own output channel."""
    dim = patch_size * patch_size * channels
    return np.eye(dim, dtype="float32").reshape(patch_size, patch_size, channels, dim)


def extract_patches(images, patch_size, method="reshape"):
    """Split images (B, H, W, C) into patches (B, N, P·P·C)."""
    _checks.choice("method", method, METHODS)
    p = _checks.positive_int("patch_size", patch_size)
    h, w, c = _checks.image_shape(ops.shape(images))
    rows, cols = patch_grid((h, w), p)
    if method == "reshape":
        x = ops.reshape(images, (-1, rows, p, cols, p, c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))  # (B, rows, cols, P, P, C)
    elif method == "conv":
        kernel = ops.cast(identity_patch_kernel(p, c), images.dtype)
        x = ops.conv(images, kernel, strides=p, padding="valid")  # (B, rows, cols, P·P·C)
    else:
        x = _tf_extract_patches(images, p)
    return ops.reshape(x, (-1, rows * cols, p * p * c))


def _tf_extract_patches(images, p):
    import tensorflow as tf

    x = tf.image.extract_patches(
        images=tf.convert_to_tensor(ops.convert_to_numpy(images)) if keras.backend.backend() != "tensorflow" else images,
        sizes=[1, p, p, 1], strides=[1, p, p, 1], rates=[1, 1, 1, 1], padding="VALID",
    )
    return x if keras.backend.backend() == "tensorflow" else ops.convert_to_tensor(x.numpy())


def patches_to_images(patches, image_size, patch_size):
    """Inverse of :func:`extract_patches`: (B, N, P·P·C) back to (B, H, W, C)."""
    h, w = _checks.int_pair("image_size", image_size)
    p = _checks.positive_int("patch_size", patch_size)
    rows, cols = patch_grid((h, w), p)
    shape = tuple(ops.shape(patches))
    if len(shape) != 3 or shape[1] != rows * cols or shape[2] is None or shape[2] % (p * p):
        raise ValueError(
            f"patches must have shape (batch, {rows * cols}, {p}*{p}*channels) for {h}x{w} images "
            f"and patch size {p}, got {shape}. Pass the image_size and patch_size used to extract them."
        )
    c = shape[2] // (p * p)
    x = ops.reshape(patches, (-1, rows, cols, p, p, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))  # (B, rows, P, cols, P, C)
    return ops.reshape(x, (-1, h, w, c))


@keras.saving.register_keras_serializable(package="vitlib")
class Patches(keras.layers.Layer):
    """Layer form of :func:`extract_patches`: (B, H, W, C) -> (B, N, P·P·C)."""

    def __init__(self, patch_size, method="reshape", **kwargs):
        super().__init__(**kwargs)
        self.patch_size = _checks.positive_int("patch_size", patch_size)
        self.method = _checks.choice("method", method, ("reshape", "conv"))

    def build(self, input_shape):
        patch_grid(_checks.image_shape(input_shape, f"Inputs of {self.name}")[:2], self.patch_size)

    def call(self, images):
        return extract_patches(images, self.patch_size, self.method)

    def compute_output_shape(self, input_shape):
        h, w, c = _checks.image_shape(input_shape)
        return (input_shape[0], num_patches((h, w), self.patch_size), self.patch_size**2 * c)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "method": self.method}
