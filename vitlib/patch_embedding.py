"""Stems: images (B, H, W, C) -> tokens (B, N, D), N = (H/P)·(W/P), the first step of Eq. 1 of Dosovitskiy et al.
(2021), z0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos: the x_p E part.

``STEMS`` is the registry: ``build_vit(stem=name)``, ``ViTConfig`` checks and the CLI's ``--stem`` choices all read
it. A new stem is a :class:`TokenStem` subclass registered with ``@register_stem("name")`` (CONTRIBUTING.md).
"""
import math
import re

import keras
from keras import layers, ops

from vitlib import _checks
from vitlib.patches import Patches, patch_grid

STEMS = {}  # name -> TokenStem subclass


def register_stem(name):
    """Class decorator: make a :class:`TokenStem` subclass available as ``stem=name`` (and as a Keras
    serializable class, so that saved models load it)."""
    def register(cls):
        STEMS[name] = keras.saving.register_keras_serializable(package="vitlib")(cls)
        return cls

    return register


def layer_name(cls):
    """The name a stem's layer gets inside a ViT: ``PatchEmbedding`` -> ``"patch_embedding"``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


class Conv2D(layers.Conv2D):
    """``keras.layers.Conv2D`` whose output has its computed shape for zero images too. TensorFlow's oneDNN
    convolution (on by default on CPUs with AVX-512 VNNI, BF16 or AMX) returns an empty batch in the *input's*
    shape, on which the bias then fails ("Incompatible shapes: [0,32,32,3] vs. [1,1,1,192]"). For any other batch
    the reshape changes nothing."""

    def convolution_op(self, inputs, kernel):
        outputs = super().convolution_op(inputs, kernel)
        return ops.reshape(outputs, (-1, *self.compute_output_shape(inputs.shape)[1:]))  # (B, rows, cols, filters)


class TokenStem(layers.Layer):
    """What every stem shares: images (B, H, W, C) -> tokens (B, N, D), with N = (H/P)·(W/P) whatever happens in
    between."""

    def __init__(self, hidden_size, patch_size, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.patch_size = _checks.patch_size(patch_size)

    def patch_kernel(self):
        """E of x_p E as a (P, P, C, D) kernel when the stem is one linear map of each patch alone, else None (a CNN
        or shifted patches see beyond their patch). What FlexiViT resizes to another patch size, and why the masked
        autoencoder can hide a patch by leaving out its token."""
        return None

    def compute_output_shape(self, input_shape):
        rows, cols = patch_grid(_checks.image_shape(input_shape)[:2], self.patch_size)
        return (input_shape[0], rows * cols, self.hidden_size)

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size, "patch_size": self.patch_size}


@register_stem("patch")
class PatchEmbedding(TokenStem):
    """Linear projection E of every flattened patch: (B, H, W, C) -> (B, N, D).

    ``mode="conv"`` uses a Conv2D with kernel size = stride = P (fast, as in the paper's code);
    ``mode="linear"`` flattens patches and applies a Dense layer (as in the paper's text). They are the
    same function: the Conv2D kernel (P, P, C, D) is the Dense kernel (P·P·C, D) reshaped.

    ``call(images, kernel=None)``: ``kernel``, another E of shape (P*, P*, C, D), embeds P*×P* patches with it and
    this layer's bias (FlexiViT's resized kernel): N = (H/P*)·(W/P*) tokens.
    """

    def __init__(self, hidden_size, patch_size, mode="conv", **kwargs):
        super().__init__(hidden_size, patch_size, **kwargs)
        self.mode = _checks.choice("patch embedding mode", mode, ("conv", "linear"))
        if mode == "conv":
            self.projection = Conv2D(hidden_size, self.patch_size, strides=self.patch_size, name="projection")
        else:
            self.patches = Patches(self.patch_size, name="patches")
            self.projection = layers.Dense(hidden_size, name="projection")

    def build(self, input_shape):
        h, w, c = _checks.image_shape(input_shape, f"Inputs of {self.name}")
        self.grid_size = patch_grid((h, w), self.patch_size)
        if self.mode == "conv":
            self.projection.build(input_shape)
        else:
            self.projection.build((input_shape[0], None, self.patch_size**2 * c))

    def call(self, images, kernel=None):
        if kernel is not None:
            size = kernel.shape[0]
            rows, cols = patch_grid(_checks.image_shape(images.shape)[:2], size)
            x = ops.conv(images, ops.cast(kernel, images.dtype), strides=size, padding="valid")  # (B, rows, cols, D)
            return ops.reshape(x, (-1, rows * cols, self.hidden_size)) + ops.cast(self.projection.bias, x.dtype)
        if self.mode == "conv":
            x = self.projection(images)  # (B, rows, cols, D)
            return ops.reshape(x, (-1, self.grid_size[0] * self.grid_size[1], self.hidden_size))
        return self.projection(self.patches(images))  # (B, N, P·P·C) -> (B, N, D)

    def patch_kernel(self):
        kernel = self.projection.kernel
        return kernel if self.mode == "conv" else ops.reshape(kernel, (self.patch_size, self.patch_size, -1,
                                                                       self.hidden_size))

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@register_stem("conv")
class ConvStem(TokenStem):
    """Convolutional stem for a hybrid ViT: (B, H, W, C) -> (B, N, D) with the same N as patches.

    The paper's hybrid models feed CNN feature maps to the transformer (Sec. 3.1, "Hybrid
    Architecture"). This small stem, after Xiao et al. (2021), "Early convolutions help transformers
    see better", stacks log2(P) stride-2 3x3 convolutions (BatchNorm, ReLU) and a 1x1 projection to D.
    """

    def __init__(self, hidden_size, patch_size, **kwargs):
        super().__init__(hidden_size, patch_size, **kwargs)
        steps = int(round(math.log2(self.patch_size)))
        if 2**steps != self.patch_size:
            raise ValueError(
                f"stem='conv' halves the image log2(P) times, so the patch size must be a power of 2, "
                f"got {self.patch_size}. Use patch size {2**steps} or {2**(steps + 1)}, or stem='patch'."
            )
        widths = [max(16, hidden_size // 2 ** (steps - i)) for i in range(steps)]
        self.blocks = []
        for i, width in enumerate(widths):
            self.blocks += [
                Conv2D(width, 3, strides=2, padding="same", use_bias=False, name=f"conv_{i}"),
                # momentum 0.9 (PyTorch's and timm's default) rather than Keras' 0.99, whose running statistics
                # still remember their start after a few hundred steps, so that a short run tests far below what it
                # trained to (benchmarks/RESULTS.md, notebook 08's settings)
                layers.BatchNormalization(momentum=0.9, name=f"norm_{i}"),
                layers.ReLU(name=f"relu_{i}"),
            ]
        self.projection = Conv2D(hidden_size, 1, name="projection")

    def build(self, input_shape):
        h, w, _ = _checks.image_shape(input_shape, f"Inputs of {self.name}")
        self.grid_size = patch_grid((h, w), self.patch_size)
        shape = tuple(input_shape)
        for block in self.blocks + [self.projection]:
            block.build(shape)
            shape = block.compute_output_shape(shape)

    def call(self, images, training=None):
        x = images
        for block in self.blocks:
            x = block(x, training=training)
        x = self.projection(x)
        return ops.reshape(x, (-1, self.grid_size[0] * self.grid_size[1], self.hidden_size))


@register_stem("shifted")
class ShiftedPatchEmbedding(TokenStem):
    """Shifted Patch Tokenization (Lee, Lee & Song 2021, "Vision Transformer for Small-Size Datasets"):
    (B, H, W, C) -> (B, N, D), the same N as plain patches.

    The image and four copies shifted diagonally by half a patch are stacked along the channels, so each
    patch also sees a rim of its neighbours; the stacked patches are flattened, layer-normalised and
    projected to D. The grid, the tokens and everything after them stay those of a plain ViT.
    """

    def __init__(self, hidden_size, patch_size, **kwargs):
        super().__init__(hidden_size, patch_size, **kwargs)
        if self.patch_size < 2:
            raise ValueError(f"stem='shifted' shifts by half a patch, so the patch size must be at least 2, "
                             f"got {self.patch_size}.")
        self.shift = self.patch_size // 2
        self.patches = Patches(self.patch_size, name="patches")
        self.norm = layers.LayerNormalization(epsilon=1e-6, name="norm")  # the epsilon of the encoder's LayerNorms
        self.projection = layers.Dense(hidden_size, name="projection")

    def build(self, input_shape):
        h, w, c = _checks.image_shape(input_shape, f"Inputs of {self.name}")
        self.grid_size = patch_grid((h, w), self.patch_size)
        features = self.patch_size**2 * 5 * c
        self.norm.build((input_shape[0], None, features))
        self.projection.build((input_shape[0], None, features))

    def shifted(self, images):
        """(B, H, W, C) -> (B, H, W, 5C): the image and its four diagonal shifts by P // 2 (zeros shifted in)."""
        s, h, w = self.shift, images.shape[1], images.shape[2]
        padded = ops.pad(images, [[0, 0], [s, s], [s, s], [0, 0]])
        copies = [padded[:, s + dy: s + dy + h, s + dx: s + dx + w] for dy, dx in ((-s, -s), (-s, s), (s, -s), (s, s))]
        return ops.concatenate([images, *copies], axis=-1)

    def call(self, images):
        return self.projection(self.norm(self.patches(self.shifted(images))))  # (B, N, P·P·5C) -> (B, N, D)
