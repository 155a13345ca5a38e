"""vitlib.training.resolution: a trained ViT at a new resolution (Sec. 3.2), its position table resized."""
import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib.training import distill, resolution

TINY = dict(image_size=8, channels=1, num_classes=10, patch_size=2, hidden_size=16, depth=1, num_heads=2, mlp_dim=16)


def tiny_vit(**kw):
    return vitlib.build_vit(None, **{**TINY, **kw})


@pytest.mark.parametrize("method", ["bilinear", "bicubic", "nearest"])
def test_at_resolution_resizes_the_position_table_and_copies_every_other_weight(method):
    small = tiny_vit()
    rng = np.random.default_rng(0)
    small.set_weights([rng.normal(size=w.shape).astype("float32") for w in small.get_weights()])  # no zero weights
    big = resolution.at_resolution(small, 16, method)
    assert big.config.image_size == (16, 16) and big.config.grid_size == (8, 8) and big.config.patch_size == 2
    table = ops.convert_to_numpy(small.get_layer("position_embedding").embeddings)
    expected = vitlib.resize_position_embeddings(table, (8, 8), old_grid=(4, 4), interpolation=method)
    np.testing.assert_array_equal(ops.convert_to_numpy(big.get_layer("position_embedding").embeddings), expected)
    for old, new in zip(small.weights, big.weights):
        if "position_embedding" not in new.path:
            np.testing.assert_array_equal(ops.convert_to_numpy(old), ops.convert_to_numpy(new))
    assert big(np.zeros((2, 16, 16, 1), "float32")).shape == (2, 10)


def test_reinit_keeps_a_fresh_random_table_and_sincos_tables_are_built_for_the_new_grid():
    small = tiny_vit()
    fresh = resolution.at_resolution(small, 16, "reinit", seed=3)
    again = resolution.at_resolution(small, 16, "reinit", seed=3)
    table = ops.convert_to_numpy(fresh.get_layer("position_embedding").embeddings)
    assert table.shape == (1, 65, 16) and 0.01 < table.std() < 0.03  # the learned table's N(0, 0.02) start
    np.testing.assert_array_equal(table, ops.convert_to_numpy(again.get_layer("position_embedding").embeddings))
    sincos = resolution.at_resolution(tiny_vit(pos_embedding="sincos2d"), 16)
    np.testing.assert_allclose(ops.convert_to_numpy(sincos.get_layer("position_embedding").embeddings)[0, 1:],
                               vitlib.sincos_2d((8, 8), 16), atol=1e-6)
    gap = resolution.at_resolution(tiny_vit(pool="gap"), 12)
    assert gap.get_layer("position_embedding").embeddings.shape == (1, 36, 16)


def test_at_resolution_and_load_vit_refuse_what_they_cannot_use(tmp_path):
    with pytest.raises(ValueError, match=r"10x10 is not divisible by patch size 4"):
        resolution.at_resolution(tiny_vit(patch_size=4, image_size=8), 10)
    with pytest.raises(ValueError, match=r"Unknown position resize method 'area'.*'bicubic'"):
        resolution.at_resolution(tiny_vit(), 16, "area")
    cnn = distill.small_cnn((8, 8, 1), 10)
    with pytest.raises(ValueError, match=r"needs a vitlib ViT.*got Functional"):
        resolution.at_resolution(cnn, 16)
    with pytest.raises(ValueError, match=r"No saved model at .*missing.keras"):
        resolution.load_vit(tmp_path / "missing.keras")
    (tmp_path / "broken.keras").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"Could not load .*broken.keras.*complete\?"):
        resolution.load_vit(tmp_path / "broken.keras")
    cnn.save(tmp_path / "cnn.keras")
    with pytest.raises(ValueError, match=r"cnn.keras' holds a Functional, not a vitlib ViT"):
        resolution.load_vit(tmp_path / "cnn.keras")
