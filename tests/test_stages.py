"""The ViT in the paper's stages (embed: Eq. 1, encode: Eq. 2-3, head: Eq. 4), and the extensions written on them.

Every entry of every registry a ViT is built from (``STEMS``, ``POSITION_EMBEDDINGS``, ``ATTENTIONS``,
``ATTENTION_POSITIONS``, ``POOLS``), each varied from the paper's ViT alone: the stages give the model's own logits,
and FlexiViT, token merging and the masked autoencoder each either run on that ViT or refuse it with a message
naming the option. The cases come from the registries, so a new entry is tested the day it is registered; two
throwaway entries (an attention layer that takes no bias, a rotary position scheme) show the refusals.
"""
import keras
import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib.beyond import flexivit, mae, tome


class PlainAttention(vitlib.MultiHeadSelfAttention):
    """An attention layer whose call takes no bias and returns no keys, as one registered by a user might."""

    def call(self, x, training=None, return_attention_scores=False):
        return super().call(x, training=training, return_attention_scores=return_attention_scores)


def rotary(query, key, grid_size, num_prefix_tokens):
    """A small rotary position scheme (RoPE, 1-D over the patches in raster order): each pair of channels of a query
    or key rotated by its patch's index times a frequency; the prefix tokens are not rotated."""
    patches, dim = grid_size[0] * grid_size[1], query.shape[-1]
    index = np.concatenate([np.zeros(num_prefix_tokens), np.arange(1, patches + 1)])
    angles = index[:, None] / 10.0 ** (np.arange(dim // 2) / (dim // 2))[None]  # (T, d/2)
    cos, sin = (ops.convert_to_tensor(f(angles)[None, :, None], "float32") for f in (np.cos, np.sin))  # (1, T, 1, d/2)

    def rotate(x):
        even, odd = x[..., ::2], x[..., 1::2]
        return ops.reshape(ops.stack([even * cos - odd * sin, even * sin + odd * cos], axis=-1), (-1, *x.shape[1:]))

    return rotate(query), rotate(key)


THROWAWAY = {"attention": ("plain", PlainAttention), "attention_position": ("rotary", rotary)}
REGISTRIES = {"stem": vitlib.STEMS, "pos_embedding": vitlib.POSITION_EMBEDDINGS, "attention": vitlib.ATTENTIONS,
              "attention_position": vitlib.ATTENTION_POSITIONS, "pool": vitlib.POOLS}
CASES = [(option, name) for option, registry in REGISTRIES.items()
         for name in sorted(registry) + ([THROWAWAY[option][0]] if option in THROWAWAY else [])]

# What each extension cannot do, and why (every other case must run): FlexiViT resizes the one linear patch kernel
# and the MAE leaves out the tokens of hidden patches, neither of which a CNN or shifted stem has; token merging adds
# a bias to the attention scores; none of them keeps the whole patch grid that a position scheme inside attention reads.
REFUSED = {("stem", "conv"): {"flexivit", "mae"}, ("stem", "shifted"): {"flexivit", "mae"},
           ("attention", "plain"): {"tome"}, ("attention_position", "rotary"): {"flexivit", "tome", "mae"}}


@pytest.fixture
def registered(monkeypatch):
    """The throwaway entries, in their registries for this test only."""
    monkeypatch.setitem(vitlib.ATTENTIONS, *THROWAWAY["attention"])
    monkeypatch.setitem(vitlib.ATTENTION_POSITIONS, *THROWAWAY["attention_position"])


def tiny_vit(option, name, rng):
    """A ViT with random weights (the head too, which starts at zero) and the one option set."""
    options = {option: name, **({"pos_embedding": "none"} if option == "attention_position" else {})}
    model = vitlib.build_vit(None, image_size=12, channels=1, num_classes=3, patch_size=4, hidden_size=16, depth=2,
                             num_heads=2, mlp_dim=32, **options)
    for w in model.weights:
        values = rng.normal(0, 0.3, w.shape)
        w.assign((np.abs(values) + 0.5 if "variance" in w.path else values).astype(w.dtype))
    return model


def numpy(x):
    return ops.convert_to_numpy(x)


@pytest.mark.parametrize("option, name", CASES, ids=[f"{o}={n}" for o, n in CASES])
def test_embed_encode_head_give_the_models_own_logits(option, name, registered, rng):
    model = tiny_vit(option, name, rng)
    images = rng.uniform(size=(2, 12, 12, 1)).astype("float32")
    tokens = model.embed(images)
    assert tuple(tokens.shape) == (2, model.config.num_tokens, 16)
    np.testing.assert_array_equal(numpy(model.head(model.encode(tokens))), numpy(model(images)))


def run_flexivit(model, images):
    view = flexivit.flexible_view(model, 3)  # 4x4 patches of 3x3 pixels instead of 3x3 of 4x4
    np.testing.assert_allclose(numpy(view(images)), numpy(flexivit.at_patch_size(model, 3)(images)), atol=1e-5)
    return numpy(view(images))


def run_tome(model, images):
    left = tome.token_counts(model, 2)[-1]
    for method in tome.TOKEN_REDUCTIONS:
        logits, sizes, _ = tome.with_token_reduction(model, 2, method, seed=0, return_sources=True)(images)
        assert tuple(sizes.shape) == (2, left, 1)
    merged = tome.with_token_reduction(model, 2, return_sources=True)(images)[1]
    assert numpy(merged).sum(axis=(1, 2)).tolist() == [model.config.num_tokens] * 2  # every patch in some token
    return numpy(logits)


def run_mae(model, images):
    auto = mae.MaskedAutoencoder(model, mask_ratio=0.5, seed=0)
    tokens, _ = auto.encode(images)
    assert tuple(tokens.shape) == (2, model.config.num_prefix_tokens + auto.visible, 16)
    pixels, mask = auto(images)
    return float(auto.compute_loss(images, y_pred=(pixels, mask)))


EXTENSIONS = {"flexivit": run_flexivit, "tome": run_tome, "mae": run_mae}


@pytest.mark.backend_neutral
@pytest.mark.parametrize("extension", EXTENSIONS)
@pytest.mark.parametrize("option, name", CASES, ids=[f"{o}={n}" for o, n in CASES])
def test_every_extension_runs_on_every_registered_option_or_refuses_it_by_name(option, name, extension, registered,
                                                                               rng):
    model = tiny_vit(option, name, rng)
    images = rng.uniform(size=(2, 12, 12, 1)).astype("float32")
    if extension in REFUSED.get((option, name), ()):
        with pytest.raises(ValueError, match=f"{option}={name!r}"):
            EXTENSIONS[extension](model, images)
    else:
        assert np.isfinite(EXTENSIONS[extension](model, images)).all()


def test_encode_returns_every_blocks_attention_and_tokens(rng):
    model = tiny_vit("pool", "token", rng)
    images = rng.uniform(size=(2, 12, 12, 1)).astype("float32")
    out, found = model.encode(model.embed(images), return_attention=True, return_tokens=True)
    assert [tuple(w.shape) for w in found["attention"]] == [(2, 2, 10, 10)] * 2
    np.testing.assert_allclose(numpy(found["attention"][0]).sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(numpy(model.encoder_norm(found["tokens"][-1])), numpy(out))  # z_L, then the LayerNorm
    _, only = model.encode(model.embed(images), return_tokens=True)
    assert set(only) == {"tokens"}
    for ours, theirs in zip(vitlib.attention_weights(model, images), found["attention"], strict=True):
        np.testing.assert_array_equal(ours, numpy(theirs))


@pytest.mark.parametrize("pos_embedding", sorted(vitlib.POSITION_EMBEDDINGS))
def test_embed_at_some_patches_gives_those_patches_tokens(pos_embedding, rng):
    model = tiny_vit("pos_embedding", pos_embedding, rng)
    images = rng.uniform(size=(2, 12, 12, 1)).astype("float32")
    whole = numpy(model.embed(images))  # the class token, then 9 patches
    keep = np.array([[4, 0, 8], [1, 2, 3]])
    np.testing.assert_array_equal(numpy(model.embed(images, keep=keep)),
                                  np.concatenate([whole[:, :1], np.take_along_axis(whole[:, 1:], keep[..., None], 1)], 1))
    own = model.embed(images, kernel=model.stem.patch_kernel())  # the stem's own kernel, through ops.conv
    np.testing.assert_allclose(numpy(own), whole, atol=1e-6)
    assert tuple(model.embed(images, kernel=np.zeros((6, 6, 1, 16), "float32")).shape) == (2, 5, 16)  # a 2x2 grid


def test_a_loaded_vit_has_its_stages_and_parts(tmp_path, rng):
    model = tiny_vit("pool", "gap", rng)
    model.save(tmp_path / "vit.keras")
    loaded = keras.saving.load_model(tmp_path / "vit.keras")
    images = rng.uniform(size=(2, 12, 12, 1)).astype("float32")
    np.testing.assert_array_equal(numpy(loaded.head(loaded.encode(loaded.embed(images)))), numpy(model(images)))
    assert loaded.class_token is None and [b.name for b in loaded.blocks] == ["encoder_block_0", "encoder_block_1"]
    assert (loaded.stem.name, loaded.classifier.name) == ("patch_embedding", "head")


def test_wrong_uses_of_the_stages_say_what_to_do(rng):
    conv = tiny_vit("stem", "conv", rng)
    with pytest.raises(ValueError, match="stem='patch'"):
        conv.embed(np.zeros((1, 12, 12, 1), "float32"), kernel=np.zeros((3, 3, 1, 16), "float32"))
    with pytest.raises(ValueError, match="takes images of shape"):
        conv.embed(np.zeros((1, 12, 12, 3), "float32"))
