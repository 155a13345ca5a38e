"""Masked autoencoders (He et al. 2022): masking, the loss on hidden patches only, the encoder is the ViT."""
import keras
import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib.beyond import mae


def tiny_vit(pool="token", stem="patch"):
    return vitlib.build_vit(None, image_size=12, channels=1, num_classes=4, patch_size=3, hidden_size=16, depth=2,
                            num_heads=2, mlp_dim=32, pool=pool, stem=stem)


@pytest.mark.backend_neutral
@pytest.mark.parametrize("pool", ["token", "gap"])
def test_every_image_hides_its_own_random_75_percent_of_the_patches(pool, rng):
    model = mae.MaskedAutoencoder(tiny_vit(pool), seed=0)
    images = rng.uniform(size=(6, 12, 12, 1)).astype("float32")
    pixels, mask = (ops.convert_to_numpy(t) for t in model(images))
    assert model.visible == 4 and pixels.shape == (6, 16, 9) and mask.shape == (6, 16)
    np.testing.assert_array_equal(mask.sum(1), 12)  # 16 patches, 4 visible
    assert len({tuple(m) for m in mask}) > 1  # drawn per image


@pytest.mark.backend_neutral
def test_the_loss_counts_only_the_hidden_patches(rng):
    model = mae.MaskedAutoencoder(tiny_vit(), seed=0)
    images = rng.uniform(size=(2, 12, 12, 1)).astype("float32")
    targets = ops.convert_to_numpy(model.targets(images))
    mask = np.zeros((2, 16), "float32")
    mask[:, :12] = 1
    perfect_where_hidden = np.where(mask[..., None] > 0, targets, 5.0)  # wrong everywhere the encoder saw
    assert float(model.compute_loss(images, None, (perfect_where_hidden, mask))) == 0.0
    off_by_half = targets + np.where(mask[..., None] > 0, 0.5, 0.0)
    np.testing.assert_allclose(float(model.compute_loss(images, None, (off_by_half, mask))), 0.25, rtol=1e-6)


@pytest.mark.backend_neutral
def test_reconstructions_keep_the_visible_patches_as_they_are(rng):
    model = mae.MaskedAutoencoder(tiny_vit(), seed=1)
    images = rng.uniform(size=(3, 12, 12, 1)).astype("float32")
    masked, filled = model.reconstruct(images)
    assert masked.shape == filled.shape == images.shape
    seen = masked > 0  # hidden patches are blacked out; the visible ones are the image
    np.testing.assert_allclose(filled[seen], images[seen], atol=1e-6)
    assert 0.7 < np.mean(masked == 0) < 0.8


@pytest.mark.tensorflow_only
def test_pretraining_trains_the_vit_itself_but_not_its_head(rng):
    vit = tiny_vit()
    model = mae.MaskedAutoencoder(vit, seed=0)
    before = {w.path: ops.convert_to_numpy(w) for w in vit.weights}
    images = rng.uniform(size=(32, 12, 12, 1)).astype("float32")
    losses = mae.pretrain(model, images, steps=20, batch_size=8)
    assert len(losses) == 10 and losses[-1] < losses[0]
    assert model.vit is vit and vit.get_layer("head").trainable
    for w in vit.weights:
        same = np.array_equal(before[w.path], ops.convert_to_numpy(w))
        assert same == w.path.startswith("head/"), w.path


@pytest.mark.backend_neutral
def test_a_saved_masked_autoencoder_loads_with_the_same_weights(tmp_path, rng):
    model = mae.MaskedAutoencoder(tiny_vit(), decoder_width=8, seed=0)
    model.build()
    model.save(tmp_path / "mae.keras")
    loaded = keras.saving.load_model(tmp_path / "mae.keras")
    assert isinstance(loaded, mae.MaskedAutoencoder) and isinstance(loaded.vit, vitlib.VisionTransformer)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert loaded.decoder_width == 8 and loaded.mask_ratio == 0.75


@pytest.mark.backend_neutral
def test_wrong_uses_of_the_masked_autoencoder_say_what_to_do():
    with pytest.raises(ValueError, match="mask_ratio"):
        mae.MaskedAutoencoder(tiny_vit(), mask_ratio=1.0)
    with pytest.raises(ValueError, match="stem='patch'"):
        mae.MaskedAutoencoder(tiny_vit(stem="conv"))
    with pytest.raises(ValueError, match="multiple of 10"):
        mae.pretrain(mae.MaskedAutoencoder(tiny_vit()), np.zeros((8, 12, 12, 1)), steps=15)
