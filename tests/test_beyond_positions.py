"""Every registered position embedding wherever a trained ViT can go: FlexiViT's resized view, its copy at another
patch size and its training, token merging, the masked autoencoder and a new resolution (Sec. 3.2).

Each case is built from ``POSITION_EMBEDDINGS`` itself, so a new entry is tested here the day it is registered.
"""
import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib.beyond import flexivit, mae, tome
from vitlib.training import resolution

KINDS = sorted(vitlib.POSITION_EMBEDDINGS)
pytestmark = pytest.mark.backend_neutral


def tiny_vit(pos_embedding, pool="token"):
    return vitlib.build_vit(None, image_size=12, channels=1, num_classes=4, patch_size=4, hidden_size=16, depth=2,
                            num_heads=2, mlp_dim=32, pool=pool, pos_embedding=pos_embedding)


def numpy(x):
    return ops.convert_to_numpy(x)


def grid_table(model):
    """The grid part of a ViT's position table, (rows·cols, D), or None for ``"none"``."""
    table = model.get_layer("position_embedding").embeddings
    return None if table is None else numpy(table)[0, model.config.num_prefix_tokens:]


@pytest.mark.parametrize("pool", ["token", "gap"])
@pytest.mark.parametrize("kind", KINDS)
def test_flexivit_runs_every_position_embedding_at_other_patch_sizes(kind, pool, rng):
    model = tiny_vit(kind, pool)
    images = rng.uniform(size=(2, 12, 12, 1)).astype("float32")
    for size in (3, 6):  # upsampling and downsampling the 4x4 patches
        copy = flexivit.at_patch_size(model, size)
        view = flexivit.flexible_view(model, size)
        np.testing.assert_allclose(numpy(view(images)), numpy(copy(images)), atol=1e-5)  # the two routes agree
        fixed = vitlib.POSITION_EMBEDDINGS[kind].fixed
        if fixed is not None:  # a fixed table is computed for the new grid, not interpolated
            np.testing.assert_allclose(grid_table(copy), fixed(copy.config.grid_size, 16), atol=1e-6)
        assert (grid_table(copy) is None) == (grid_table(model) is None)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("kind", KINDS)
def test_flexivit_trains_every_position_embedding(kind):
    from vitlib.data.datasets import Dataset

    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(32, 12, 12, 1)).astype("float32"), rng.integers(0, 4, 32).astype("int32")
    data = Dataset("random", x, y, x[:8], y[:8], x[:8], y[:8], [str(i) for i in range(4)])
    (row,) = flexivit.train_flexible(lambda seed: tiny_vit(kind), data, patch_sizes=(3, 6), seeds=(0,), steps=10,
                                     batch_size=8, progress=False)
    assert sum(row["patch_steps"].values()) == 10 and 0 <= row["test_accuracy"] <= 1


@pytest.mark.parametrize("kind", KINDS)
def test_token_merging_runs_every_position_embedding(kind, rng):
    model = tiny_vit(kind)
    images = rng.uniform(size=(2, 12, 12, 1)).astype("float32")
    np.testing.assert_array_equal(numpy(tome.with_token_reduction(model, 0)(images)), numpy(model(images)))
    for method in ("merge", "drop"):
        logits = numpy(tome.with_token_reduction(model, 2, method, seed=0)(images))
        assert logits.shape == (2, 4) and np.isfinite(logits).all()


@pytest.mark.parametrize("kind", KINDS)
def test_the_masked_autoencoder_encodes_with_every_position_embedding(kind, rng):
    model = tiny_vit(kind)
    images = rng.uniform(size=(3, 12, 12, 1)).astype("float32")
    auto = mae.MaskedAutoencoder(model, mask_ratio=0.5, seed=0)
    pixels, mask = auto(images)
    assert tuple(pixels.shape) == (3, 9, 16) and numpy(mask).sum(1).tolist() == [9 - auto.visible] * 3
    tokens, order = auto.encode(images)
    assert tuple(tokens.shape) == (3, model.config.num_prefix_tokens + auto.visible, 16)
    loss = float(auto.compute_loss(images, y_pred=(pixels, mask)))
    assert np.isfinite(loss) and loss > 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_resolution_keeps_every_position_embedding(kind, rng):
    model = tiny_vit(kind)
    big = resolution.at_resolution(model, 24)
    assert big.config.grid_size == (6, 6) and (grid_table(big) is None) == (grid_table(model) is None)
    fixed = vitlib.POSITION_EMBEDDINGS[kind].fixed
    if fixed is not None:
        np.testing.assert_allclose(grid_table(big), fixed((6, 6), 16), atol=1e-6)
    assert numpy(big(rng.uniform(size=(1, 24, 24, 1)).astype("float32"))).shape == (1, 4)
