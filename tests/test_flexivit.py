"""FlexiViT (Beyer et al. 2023): PI-resize of the patch embedding and one ViT at several patch sizes."""
import keras
import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib.beyond import flexivit


def tiny_vit(patch_size=4, image_size=12, pool="token", pos_embedding="learned", stem="patch"):
    return vitlib.build_vit(None, image_size=image_size, channels=2, num_classes=5, patch_size=patch_size,
                            hidden_size=16, depth=2, num_heads=2, mlp_dim=32, pool=pool, pos_embedding=pos_embedding,
                            stem=stem)


def resized_patches(patches, size):
    """(n, P, P, C) patches resized as images to (n, size, size, C): bilinear, no antialiasing."""
    return ops.convert_to_numpy(ops.image.resize(patches, (size, size), interpolation="bilinear", antialias=False))


def tokens(patches, kernel):
    """<x, w> of every patch with every output channel of the kernel: (n, P, P, C) x (P, P, C, D) -> (n, D)."""
    return np.einsum("npqc,pqcd->nd", patches.astype("float64"), kernel.astype("float64"))


@pytest.mark.backend_neutral
@pytest.mark.parametrize("old, new", [(2, 3), (3, 4), (4, 6), (4, 8), (6, 12), (3, 8)])
def test_pi_resized_kernel_on_the_resized_patch_gives_the_original_token_when_upsampling(old, new, rng):
    kernel = rng.normal(size=(old, old, 2, 7)).astype("float32")
    patches = rng.uniform(size=(20, old, old, 2)).astype("float32")
    expected = tokens(patches, kernel)  # <x, w>
    got = tokens(resized_patches(patches, new), flexivit.pi_resize(kernel, new))  # <B x, w*>
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.backend_neutral
@pytest.mark.parametrize("old, new", [(4, 6), (4, 8), (6, 12)])
def test_naive_resize_multiplies_a_flat_patchs_token_by_the_area_ratio(old, new):
    kernel = np.ones((old, old, 1, 1), "float32")  # a flat kernel and a flat patch: bilinear resizing keeps both flat
    patches = np.full((1, old, old, 1), 0.5, "float32")
    naive = tokens(resized_patches(patches, new), flexivit.naive_resize(kernel, new))
    pi = tokens(resized_patches(patches, new), flexivit.pi_resize(kernel, new))
    np.testing.assert_allclose(naive / tokens(patches, kernel), (new / old) ** 2, rtol=1e-5)
    np.testing.assert_allclose(pi / tokens(patches, kernel), 1.0, rtol=1e-5)


@pytest.mark.backend_neutral
def test_pi_resize_when_downsampling_is_the_least_squares_kernel(rng):
    old, new = 6, 4
    kernel = rng.normal(size=(old, old, 1, 3))
    b = flexivit.resize_matrix(old, new)  # (new², old²)
    best = np.linalg.lstsq(b.T, kernel.reshape(old * old, 3), rcond=None)[0]  # min ||Bᵀ w* - w||
    np.testing.assert_allclose(flexivit.pi_resize(kernel, new).reshape(new * new, 3), best, atol=1e-6)


@pytest.mark.backend_neutral
def test_resize_matrix_is_the_image_resize(rng):
    patch = rng.uniform(size=(1, 4, 4, 1)).astype("float32")
    by_matrix = flexivit.resize_matrix(4, 6) @ patch.reshape(16)
    np.testing.assert_allclose(by_matrix, resized_patches(patch, 6).reshape(36), atol=1e-6)


@pytest.mark.backend_neutral
def test_a_kernel_resized_to_its_own_size_is_an_unchanged_copy(rng):
    kernel = rng.normal(size=(4, 4, 2, 3)).astype("float32")
    for method in flexivit.KERNEL_RESIZES:
        out = flexivit.resize_kernel(kernel, 4, method)
        np.testing.assert_array_equal(out, kernel)
        assert out is not kernel


@pytest.mark.backend_neutral
@pytest.mark.parametrize("pool, pos_embedding", [("token", "learned"), ("gap", "learned"), ("token", "sincos2d")])
def test_at_patch_size_resizes_kernel_and_positions_and_copies_every_other_weight(pool, pos_embedding, rng):
    model = tiny_vit(pool=pool, pos_embedding=pos_embedding)
    images = rng.uniform(size=(3, 12, 12, 2)).astype("float32")
    same = flexivit.at_patch_size(model, 4)
    np.testing.assert_allclose(ops.convert_to_numpy(same(images)), ops.convert_to_numpy(model(images)), atol=1e-6)
    small = flexivit.at_patch_size(model, 6, "naive")
    assert small.config.patch_size == 6 and small.config.grid_size == (2, 2) and small.config.num_patches == 4
    assert tuple(small.get_layer("patch_embedding").projection.kernel.shape) == (6, 6, 2, 16)
    expected = flexivit.naive_resize(ops.convert_to_numpy(model.get_layer("patch_embedding").projection.kernel), 6)
    np.testing.assert_allclose(ops.convert_to_numpy(small.get_layer("patch_embedding").projection.kernel), expected)
    resized = {id(small.get_layer("patch_embedding").projection.kernel), id(small.get_layer("position_embedding").embeddings)}
    for old, new in zip(model.weights, small.weights):
        if id(new) not in resized:
            np.testing.assert_array_equal(ops.convert_to_numpy(old), ops.convert_to_numpy(new))
    assert tuple(small(images).shape) == (3, 5)


@pytest.mark.backend_neutral
def test_at_patch_size_into_an_existing_vit_gives_what_a_new_one_gives(rng):
    first, second = tiny_vit(), tiny_vit()
    images = rng.uniform(size=(2, 12, 12, 2)).astype("float32")
    reused = flexivit.at_patch_size(first, 3)
    assert flexivit.at_patch_size(second, 3, "naive", into=reused) is reused
    np.testing.assert_array_equal(ops.convert_to_numpy(reused(images)),
                                  ops.convert_to_numpy(flexivit.at_patch_size(second, 3, "naive")(images)))
    with pytest.raises(ValueError, match="patch size 6"):
        flexivit.at_patch_size(first, 6, into=reused)


@pytest.mark.backend_neutral
@pytest.mark.parametrize("patch_size", [3, 4, 6])
def test_flexible_view_gives_the_logits_of_the_pi_resized_copy_and_shares_the_weights(patch_size, rng):
    model = tiny_vit()
    images = rng.uniform(size=(2, 12, 12, 2)).astype("float32")
    view = flexivit.flexible_view(model, patch_size)
    np.testing.assert_allclose(ops.convert_to_numpy(view(images)),
                               ops.convert_to_numpy(flexivit.at_patch_size(model, patch_size)(images)), atol=1e-5)
    assert {id(w) for w in view.weights} == {id(w) for w in model.weights}  # no copies: training it trains the ViT


@pytest.mark.tensorflow_only
def test_train_flexible_trains_the_vit_at_every_drawn_patch_size():
    from vitlib.data.datasets import Dataset

    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(64, 12, 12, 2)).astype("float32"), rng.integers(0, 5, 64).astype("int32")
    data = Dataset("random", x, y, x[:8], y[:8], x[:8], y[:8], [str(i) for i in range(5)])
    start = {}

    def build(seed):
        model = tiny_vit()
        start[seed] = model.get_weights()
        return model

    rows = flexivit.train_flexible(build, data, patch_sizes=(3, 6), seeds=(0, 1), steps=10, batch_size=16,
                                   progress=False)
    assert [r["seed"] for r in rows] == [0, 1]
    for row in rows:
        assert sum(row["patch_steps"].values()) == 10 and set(row["patch_steps"]) == {3, 6}
        changed = [not np.array_equal(a, b) for a, b in zip(start[row["seed"]], row["trained"].get_weights())]
        assert all(changed)  # every weight learned, the kernel and position table through the resized views
        assert 0 <= row["test_accuracy"] <= 1


@pytest.mark.backend_neutral
def test_wrong_uses_of_flexivit_say_what_to_do():
    with pytest.raises(ValueError, match="kernel must have shape"):
        flexivit.pi_resize(np.zeros((4, 3, 1, 2)), 6)
    with pytest.raises(ValueError, match="kernel resize"):
        flexivit.resize_kernel(np.zeros((4, 4, 1, 2)), 6, "bicubic")
    with pytest.raises(ValueError, match="stem='patch'"):
        flexivit.at_patch_size(tiny_vit(stem="conv"), 6)
    with pytest.raises(ValueError):
        flexivit.at_patch_size(tiny_vit(), 5)  # 5 does not tile 12
    assert isinstance(flexivit.at_patch_size(tiny_vit(), 6), keras.Model)
