import itertools
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

import vitlib

SMALL = dict(image_size=16, num_classes=5, hidden_size=16, depth=2, num_heads=2, mlp_dim=32, patch_size=4)


def test_vit_b16_has_the_papers_86_6_million_parameters():
    model = vitlib.build_vit("B/16", image_size=224, num_classes=1000)
    assert model.count_params() == 86_567_656 and model.config.patch_size == 16


@pytest.mark.parametrize("variant,expected", [("B/16", 86_567_656), ("L/16", 304_326_632), ("H/14", 632_045_800)])
def test_parameter_counts_match_table_1_of_the_paper(variant, expected):
    # Table 1: 86 M, 307 M, 632 M. Through vitlib.costs, which tests/test_costs.py checks against built models
    # (building the 632 M-parameter H/14 under three backends took most of a minute); B/16 is built above.
    assert vitlib.costs.parameter_count(variant=variant, image_size=224, num_classes=1000) == expected


def test_variant_strings_decode_to_table_1():
    cfg = vitlib.ViTConfig.from_variant("S/32", image_size=64)
    assert (cfg.hidden_size, cfg.depth, cfg.num_heads, cfg.mlp_dim, cfg.patch_size) == (384, 12, 6, 1536, 32)
    assert vitlib.parse_variant("Ti/4") == ("Ti", 4)
    custom = vitlib.ViTConfig.from_variant("Ti/4", image_size=32, depth=3)  # overrides keep the rest
    assert (custom.depth, custom.hidden_size) == (3, 192)


def test_model_maps_images_to_logits_with_zero_initialised_head(rng):
    model = vitlib.build_vit(None, **SMALL)
    x = rng.normal(size=(3, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(ops.convert_to_numpy(model(x)), 0.0)  # zero head -> zero logits
    assert [layer.name for layer in model.layers[:4]] == ["images", "patch_embedding", "class_token", "position_embedding"]
    assert model.config.num_tokens == 17


def randomise(model, rng, scale=0.2):
    for v in model.weights:
        v.assign(rng.normal(scale=scale, size=v.shape).astype(v.dtype))


def permute_patches(x, patch, perm):
    patches = vitlib.extract_patches(x, patch)
    return ops.convert_to_numpy(vitlib.patches_to_images(ops.take(patches, perm, axis=1), x.shape[1:3], patch))


@pytest.mark.parametrize("pos_embedding,pool,invariant", [
    ("none", "token", True), ("none", "gap", True),
    ("learned", "token", False), ("sincos1d", "token", False), ("sincos2d", "token", False),
])
def test_permuting_patches_changes_the_output_only_with_position_embeddings(rng, pos_embedding, pool, invariant):
    model = vitlib.build_vit(None, **{**SMALL, "pos_embedding": pos_embedding, "pool": pool})
    randomise(model, rng, scale=0.5)  # peaked attention, so that positions can matter
    x = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    shuffled = permute_patches(x, 4, rng.permutation(16))
    assert not np.allclose(shuffled, x)
    a, b = ops.convert_to_numpy(model(x)), ops.convert_to_numpy(model(shuffled))
    if invariant:
        np.testing.assert_allclose(a, b, atol=1e-5)  # float32 round-off only
    else:
        assert np.abs(a - b).max() > 1e-2


@pytest.mark.parametrize("pos_embedding,pool", list(itertools.product(vitlib.POSITION_EMBEDDINGS, vitlib.POOLS)))
def test_saved_model_reloads_with_identical_outputs(tmp_path, rng, pos_embedding, pool):
    model = vitlib.build_vit(None, **{**SMALL, "pos_embedding": pos_embedding, "pool": pool})
    randomise(model, rng)
    x = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, vitlib.VisionTransformer) and loaded.config == model.config
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(model(x)))


@pytest.mark.parametrize("stem,layer", [("conv", "conv_stem"), ("shifted", "shifted_patch_embedding")])
def test_models_with_other_stems_save_and_reload(tmp_path, rng, stem, layer):
    model = vitlib.build_vit(None, **{**SMALL, "stem": stem, "dropout": 0.1, "drop_path": 0.1})
    randomise(model, rng)
    x = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    model.save(tmp_path / "stem.keras")
    loaded = keras.saving.load_model(tmp_path / "stem.keras")
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(model(x)), atol=1e-6)
    assert layer in [each.name for each in model.layers] and loaded.config == model.config


def test_attention_weights_for_every_layer_are_those_of_the_forward_pass(rng):
    model = vitlib.build_vit(None, **SMALL)
    randomise(model, rng)
    x = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    maps = vitlib.attention_weights(model, x)
    assert len(maps) == 2 and maps[0].shape == (2, 2, 17, 17)
    np.testing.assert_allclose(maps[1].sum(-1), 1.0, atol=1e-5)
    # recompute the last block's weights from the tokens the model itself feeds it
    last = model.get_layer("encoder_block_1")
    tokens = keras.Model(model.inputs[0], last.input)(x)
    _, expected = last(tokens, return_attention_scores=True)
    np.testing.assert_allclose(maps[1], ops.convert_to_numpy(expected), atol=1e-6)


@pytest.mark.slow
def test_model_memorises_a_small_batch(rng):
    model = vitlib.build_vit(None, **SMALL)
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = rng.normal(size=(16, 16, 16, 3)).astype("float32")
    y = rng.integers(0, 5, size=16)
    losses = model.fit(x, y, epochs=30, batch_size=16, verbose=0).history["loss"]
    assert losses[0] == pytest.approx(np.log(5), rel=1e-3)  # zero head: uniform prediction over 5 classes
    assert losses[-1] < losses[0] * 0.6


@pytest.mark.parametrize("stem,pool", list(itertools.product(vitlib.STEMS, vitlib.POOLS)))
def test_zero_images_give_an_empty_result_on_every_backend(stem, pool):
    model = vitlib.build_vit(None, image_size=8, channels=1, num_classes=10, patch_size=4, hidden_size=16, depth=2,
                             num_heads=2, mlp_dim=16, stem=stem, pool=pool)
    empty = np.zeros((0, 8, 8, 1), "float32")
    tokens = model.config.num_tokens
    assert tuple(model(empty).shape) == (0, 10)
    assert tuple(model(empty, training=True).shape) == (0, 10)
    assert model.predict(empty, verbose=0).shape == (0, 10)  # Keras' own predict fails on zero images
    assert [tuple(m.shape) for m in vitlib.attention_weights(model, empty)] == [(0, 2, tokens, tokens)] * 2
    with pytest.raises(ValueError, match=r"got \(0, 8, 8, 3\)"):  # still checked
        model.predict(np.zeros((0, 8, 8, 3), "float32"))


ONEDNN_ZERO_IMAGES = """
import numpy as np, tensorflow as tf, vitlib
empty = np.zeros((0, 8, 8, 3), "float32")
print("raw convolution:", tuple(tf.nn.conv2d(empty, np.zeros((4, 4, 3, 16), "float32"), 4, "VALID").shape))
for stem in vitlib.STEMS:
    model = vitlib.build_vit(None, image_size=8, channels=3, num_classes=10, patch_size=4, hidden_size=16, depth=1,
                             num_heads=2, mlp_dim=16, stem=stem)
    print(stem, tuple(model(empty).shape), [tuple(m.shape) for m in vitlib.attention_weights(model, empty)])
"""


@pytest.mark.slow
@pytest.mark.tensorflow_only
def test_zero_images_give_an_empty_result_with_tensorflows_onednn_convolution():
    # TensorFlow switches oneDNN on by itself only on some CPUs (AVX-512 VNNI or BF16, AMX); there its Conv2D returns
    # an empty batch in the input's shape, (0, 8, 8, 3) here. TF_ENABLE_ONEDNN_OPTS=1 forces it on for any x86 CPU.
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run([sys.executable, "-c", ONEDNN_ZERO_IMAGES], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[1:] == [f"{stem} (0, 10) [(0, 2, 5, 5)]" for stem in vitlib.STEMS], run.stdout
