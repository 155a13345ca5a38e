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


def test_class_token_is_prepended_to_every_sample():
    layer = vitlib.ClassToken()
    x = np.ones((3, 5, 8), "float32")
    y = ops.convert_to_numpy(layer(x))
    assert y.shape == (3, 6, 8)
    np.testing.assert_array_equal(y[:, 0], 0.0)  # zero-initialised token
    np.testing.assert_array_equal(y[:, 1:], x)


def test_sincos_tables_have_unit_norm_per_frequency_pair():
    t1 = vitlib.sincos_1d(10, 16)
    np.testing.assert_allclose(t1[:, :8] ** 2 + t1[:, 8:] ** 2, 1.0, atol=1e-6)
    t2 = vitlib.sincos_2d((3, 5), 16)
    assert t2.shape == (15, 16)
    np.testing.assert_allclose(t2[:, 0:4] ** 2 + t2[:, 4:8] ** 2, 1.0, atol=1e-6)
    # the first quarter depends on the column only, the third on the row only
    grid = t2.reshape(3, 5, 16)
    np.testing.assert_allclose(grid[0, :, :8], grid[2, :, :8])
    np.testing.assert_allclose(grid[:, 0, 8:], grid[:, 4, 8:])


def test_sincos_2d_similarity_peaks_at_the_query_patch():
    table = vitlib.sincos_2d((7, 7), 64)
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    sim = unit @ unit.T
    assert (np.argmax(sim, axis=1) == np.arange(49)).all()


@pytest.mark.parametrize("kind", ["learned", "sincos1d", "sincos2d", "none"])
def test_position_embedding_kinds(kind):
    layer = vitlib.PositionEmbedding(kind, (4, 4), num_prefix_tokens=1)
    x = np.zeros((2, 17, 32), "float32")
    y = ops.convert_to_numpy(layer(x))
    if kind == "none":
        np.testing.assert_array_equal(y, x)
        assert layer.weights == []
        return
    table = ops.convert_to_numpy(layer.embeddings)
    np.testing.assert_array_equal(y, np.broadcast_to(table, y.shape))
    assert bool(layer.embeddings.trainable) == (kind == "learned")
    if kind == "learned":
        assert 0.015 < table.std() < 0.025  # normal init, std 0.02
    else:
        np.testing.assert_array_equal(table[0, 0], 0.0)  # the class token has no place in the image
        expected = vitlib.sincos_1d(16, 32) if kind == "sincos1d" else vitlib.sincos_2d((4, 4), 32)
        np.testing.assert_allclose(table[0, 1:], expected)


def test_resize_keeps_class_slot_and_same_grid_is_identity(rng):
    table = rng.normal(size=(1, 1 + 16, 8)).astype("float32")
    np.testing.assert_array_equal(vitlib.resize_position_embeddings(table, (4, 4)), table)
    big = vitlib.resize_position_embeddings(table, (6, 8))
    assert big.shape == (1, 1 + 48, 8)
    np.testing.assert_array_equal(big[:, 0], table[:, 0])
    assert vitlib.resize_position_embeddings(table[0], 2).shape == (5, 8)  # (T, D) in, (T, D) out


def test_resize_reproduces_a_linear_ramp_inside_the_grid():
    rows, cols = np.mgrid[:4, :4].astype("float32")
    table = np.stack([rows, cols], -1).reshape(1, 16, 2)
    big = vitlib.resize_position_embeddings(table, (8, 8), num_prefix_tokens=0).reshape(8, 8, 2)
    # half-pixel-centred bilinear: new index i sits at old coordinate (i + 0.5) / 2 - 0.5
    centres = (np.arange(8) + 0.5) / 2 - 0.5
    np.testing.assert_allclose(big[1:7, 3, 0], centres[1:7], atol=1e-5)
    np.testing.assert_allclose(big[3, 1:7, 1], centres[1:7], atol=1e-5)


def test_resized_table_loads_into_a_model_for_a_bigger_image():
    small = vitlib.build_vit("Ti/8", image_size=32, depth=1, num_classes=3)
    big = vitlib.build_vit("Ti/8", image_size=48, depth=1, num_classes=3)
    table = ops.convert_to_numpy(small.get_layer("position_embedding").embeddings)
    big.get_layer("position_embedding").embeddings.assign(vitlib.resize_position_embeddings(table, (6, 6)))
    assert big(np.zeros((1, 48, 48, 3), "float32")).shape == (1, 3)
