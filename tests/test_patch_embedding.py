"""vitlib.patch_embedding: every stem turns images into one token per patch; the patch embedding as a Dense and as a
Conv2D; the conv stem; shifted patch tokenization."""
import keras
import numpy as np
import pytest
from keras import ops

import vitlib


def test_conv_embedding_equals_linear_on_patches_when_kernel_is_reshaped(rng):
    x = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    conv = vitlib.PatchEmbedding(64, 8, mode="conv")
    linear = vitlib.PatchEmbedding(64, 8, mode="linear")
    conv.build(x.shape), linear.build(x.shape)
    linear.projection.bias.assign(rng.normal(size=64).astype("float32"))
    kernel, bias = (ops.convert_to_numpy(w) for w in linear.projection.weights)
    conv.projection.set_weights([kernel.reshape(8, 8, 3, 64), bias])
    np.testing.assert_allclose(ops.convert_to_numpy(conv(x)), ops.convert_to_numpy(linear(x)), atol=1e-5)
    assert tuple(conv(x).shape) == (2, 16, 64)


@pytest.mark.parametrize("make", [lambda: vitlib.PatchEmbedding(24, 4, mode="linear"), lambda: vitlib.ConvStem(24, 4),
                                   lambda: vitlib.ShiftedPatchEmbedding(24, 4)], ids=["patch", "conv", "shifted"])
def test_every_stem_turns_images_into_one_token_per_patch_and_rebuilds_from_its_config(make):
    stem = make()
    assert isinstance(stem, vitlib.TokenStem)
    images = np.zeros((2, 16, 12, 1), "float32")
    assert tuple(stem(images).shape) == stem.compute_output_shape(images.shape) == (2, 4 * 3, 24)
    config = stem.get_config()
    assert (config["hidden_size"], config["patch_size"]) == (24, 4)
    assert type(stem).from_config(config).get_config() == config
    with pytest.raises(ValueError, match="hidden_size"):
        type(stem)(0, 4)


def test_conv_stem_batch_statistics_forget_their_start_within_a_short_run():
    stem = vitlib.ConvStem(32, 4)
    images = np.full((8, 8, 8, 1), 3.0, "float32")
    for _ in range(50):  # 50 training steps: with momentum 0.9 the running mean is 99.5 % of the way there
        stem(images, training=True)
    norms = [layer for layer in stem.blocks if isinstance(layer, keras.layers.BatchNormalization)]
    assert [layer.momentum for layer in norms] == [0.9, 0.9]
    batch = ops.convert_to_numpy(ops.mean(stem.blocks[0](images), axis=(0, 1, 2)))
    np.testing.assert_allclose(ops.convert_to_numpy(norms[0].moving_mean), batch, rtol=0.01, atol=1e-4)


def test_conv_stem_gives_one_token_per_patch_and_refuses_non_power_of_two():
    stem = vitlib.ConvStem(32, 8)
    assert tuple(stem(np.zeros((1, 32, 32, 3), "float32")).shape) == (1, 16, 32)
    assert len([b for b in stem.blocks if b.name.startswith("conv")]) == 3
    with pytest.raises(ValueError, match="power of 2"):
        vitlib.ConvStem(32, 14)


def test_shifted_patch_tokenization_stacks_the_image_and_its_four_diagonal_half_patch_shifts(rng):
    x = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    spt = vitlib.ShiftedPatchEmbedding(32, 4)
    stacked = ops.convert_to_numpy(spt.shifted(x))
    assert stacked.shape == (2, 8, 8, 15)
    np.testing.assert_array_equal(stacked[..., :3], x)
    padded = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)])  # zeros come in where the image moves away
    for k, (dy, dx) in enumerate([(-2, -2), (-2, 2), (2, -2), (2, 2)]):
        np.testing.assert_array_equal(stacked[..., 3 * (k + 1): 3 * (k + 2)], padded[:, 2 + dy: 10 + dy, 2 + dx: 10 + dx])
    assert tuple(spt(x).shape) == (2, 4, 32)  # same tokens as plain 4x4 patches
    with pytest.raises(ValueError, match="at least 2"):
        vitlib.ShiftedPatchEmbedding(32, 1)


def test_a_shifted_patch_token_sees_a_rim_of_half_a_patch_around_its_patch_and_nothing_further(rng):
    spt = vitlib.ShiftedPatchEmbedding(16, 4)
    x = rng.normal(size=(1, 8, 8, 1)).astype("float32")
    base = ops.convert_to_numpy(spt(x))[0, 0]  # token 0: the top-left patch, rows and columns 0-3

    def moved(row, col):
        y = x.copy()
        y[0, row, col, 0] += 1.0
        return np.abs(ops.convert_to_numpy(spt(y))[0, 0] - base).max() > 1e-4

    assert moved(3, 3) and moved(5, 5) and moved(5, 0) and moved(0, 5)  # inside, and the rim two pixels out
    assert not moved(6, 6) and not moved(0, 6) and not moved(7, 2)       # three or more pixels out
