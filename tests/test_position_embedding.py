import numpy as np
import pytest
from keras import ops

import vitlib


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
