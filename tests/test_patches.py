import numpy as np
import pytest
from keras import ops

import vitlib


def images(rng, b=2, h=32, w=48, c=3):
    return rng.normal(size=(b, h, w, c)).astype("float32")


@pytest.mark.parametrize("method", ["reshape", "conv", "tf"])
def test_every_route_matches_tf_image_extract_patches(rng, method):
    tf = pytest.importorskip("tensorflow")
    x = images(rng)
    reference = tf.image.extract_patches(x, [1, 8, 8, 1], [1, 8, 8, 1], [1, 1, 1, 1], "VALID").numpy()
    got = ops.convert_to_numpy(vitlib.extract_patches(x, 8, method=method))
    assert got.shape == (2, 4 * 6, 8 * 8 * 3)
    np.testing.assert_array_equal(got, reference.reshape(2, -1, 192))  # computed here: patches are copies, exact


def test_patch_order_is_row_major_and_each_patch_flattens_row_col_channel(rng):
    x = images(rng, h=16, w=24)
    patches = ops.convert_to_numpy(vitlib.extract_patches(x, 8))
    for row in range(2):
        for col in range(3):
            expected = x[0, row * 8:(row + 1) * 8, col * 8:(col + 1) * 8, :].reshape(-1)
            np.testing.assert_array_equal(patches[0, row * 3 + col], expected)


@pytest.mark.parametrize("size,patch", [((32, 48), 8), ((224, 224), 16), ((28, 28), 7)])
def test_patches_to_images_inverts_extract_patches(rng, size, patch):
    x = images(rng, h=size[0], w=size[1], c=1 if patch == 7 else 3)
    back = vitlib.patches_to_images(vitlib.extract_patches(x, patch), size, patch)
    np.testing.assert_array_equal(ops.convert_to_numpy(back), x)


def test_224_image_with_16_pixel_patches_gives_196_tokens_of_768_values(rng):
    assert vitlib.num_patches(224, 16) == 196 and vitlib.patch_grid(224, 16) == (14, 14)
    tokens = vitlib.extract_patches(images(rng, b=1, h=224, w=224), 16)
    assert tuple(tokens.shape) == (1, 196, 768)


def test_identity_kernel_has_one_one_per_output_channel():
    k = vitlib.identity_patch_kernel(4, 3)
    assert k.shape == (4, 4, 3, 48)
    np.testing.assert_array_equal(k.sum(axis=(0, 1, 2)), np.ones(48))
    assert k[1, 2, 0, (1 * 4 + 2) * 3 + 0] == 1


def test_patches_layer_equals_function_and_round_trips_config(rng):
    x = images(rng)
    layer = vitlib.Patches(8)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x)), ops.convert_to_numpy(vitlib.extract_patches(x, 8)))
    clone = vitlib.Patches.from_config(layer.get_config())
    assert clone.patch_size == 8 and clone.method == "reshape"
    assert layer.compute_output_shape((None, 32, 48, 3)) == (None, 24, 192)
