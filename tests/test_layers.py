"""Every layer vitlib registers, through one harness (as keras-hub's layer test case): build and call it, round-trip
its config (the clone with the same weights gives the same outputs), and round-trip a model holding it through a
.keras file loaded in safe mode. The cases come from the registries (every stem, position embedding, attention layer and
pool), so a new entry is tested at once; a registered layer outside them without a case here fails the completeness
test."""
import keras
import numpy as np
import pytest

import vitlib
from vitlib import attention, encoder, model, patch_embedding, position_embedding
from vitlib.beyond import flexivit

IMAGES = np.random.default_rng(0).random((2, 8, 8, 3)).astype("float32")
TOKENS = np.random.default_rng(1).normal(size=(2, 5, 16)).astype("float32")  # 1 class token + a 2x2 grid

CASES = {  # id -> (layer factory, input)
    **{f"stem_{name}": (lambda cls=cls: cls(16, 4), IMAGES) for name, cls in patch_embedding.STEMS.items()},
    "stem_patch_linear": (lambda: vitlib.PatchEmbedding(16, 4, mode="linear"), IMAGES),
    "patches": (lambda: vitlib.Patches(4), IMAGES),
    "class_token": (lambda: vitlib.ClassToken(), TOKENS[:, 1:]),
    **{f"position_{kind}": (lambda kind=kind: vitlib.PositionEmbedding(kind, (2, 2), 1), TOKENS)
       for kind in position_embedding.POSITION_EMBEDDINGS},
    **{f"attention_{name}": (lambda cls=cls: cls(4), TOKENS) for name, cls in attention.ATTENTIONS.items()},
    "attention_explicit": (lambda: vitlib.MultiHeadSelfAttention(4, attention_impl="explicit"), TOKENS),
    "layer_norm": (lambda: encoder.LayerNorm(), TOKENS),
    "mlp": (lambda: vitlib.MLPBlock(32), TOKENS),
    "stochastic_depth": (lambda: vitlib.StochasticDepth(0.5, seed=1), TOKENS),
    "encoder_block": (lambda: vitlib.EncoderBlock(4, 32), TOKENS),
    "encoder_block_options": (lambda: vitlib.EncoderBlock(4, 32, dropout=0.1, drop_path=0.1,
                                                         attention_options={"attention_impl": "explicit"}), TOKENS),
    **{f"pool_{mode}": (lambda mode=mode: vitlib.TokenPool(mode), TOKENS) for mode in model.POOLS},
    **{f"flexivit_embedding_at_{p}": (lambda p=p: flexivit.ResizedEmbedding(  # a 4x4-patch stem run at patch p
        vitlib.PatchEmbedding(16, 4), vitlib.ClassToken(), vitlib.PositionEmbedding("learned", (2, 2), 1),
        p, (8 // p, 8 // p)), IMAGES) for p in (2, 4, 8)},
}


def randomise(layer):
    """Give every weight random values, so that a lost or swapped weight changes the output."""
    rng = np.random.default_rng(2)
    for w in layer.weights:
        w.assign(rng.normal(0, 0.5, w.shape).astype(w.dtype))


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_layer_builds_calls_and_round_trips(case, tmp_path):
    factory, x = CASES[case]
    layer = factory()
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == tuple(layer.compute_output_shape(x.shape)), "compute_output_shape disagrees with call"
    assert np.isfinite(y).all()
    randomise(layer)
    y = keras.ops.convert_to_numpy(layer(x))

    clone = type(layer).from_config(layer.get_config())  # the config round trip
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(x)), y, rtol=1e-6, atol=1e-6)
    assert clone.get_config() == layer.get_config()

    inputs = keras.Input(x.shape[1:])  # the .keras round trip, loaded in safe mode
    holder = keras.Model(inputs, layer(inputs))
    holder.save(tmp_path / "layer.keras")
    loaded = keras.saving.load_model(tmp_path / "layer.keras", safe_mode=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), y, rtol=1e-6, atol=1e-6)


def test_every_registered_layer_has_a_case():
    registered = {name.split(">")[1] for name, cls in keras.saving.get_custom_objects().items()
                  if name.startswith("vitlib>") and issubclass(cls, keras.layers.Layer) and not issubclass(cls, keras.Model)}
    covered = {type(factory()).__name__ for factory, _ in CASES.values()}
    assert registered - covered == set(), "registered vitlib layers without a harness case"


def test_a_whole_vit_round_trips(tmp_path):
    vit = vitlib.build_vit(None, image_size=8, patch_size=4, hidden_size=16, depth=2, num_heads=4, mlp_dim=32,
                           num_classes=3, stem="shifted")
    randomise(vit)
    vit.save(tmp_path / "vit.keras")
    loaded = keras.saving.load_model(tmp_path / "vit.keras", safe_mode=True)
    assert loaded.config == vit.config
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(IMAGES)), keras.ops.convert_to_numpy(vit(IMAGES)))
