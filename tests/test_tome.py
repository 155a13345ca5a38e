"""Token merging (Bolya et al. 2023): bipartite soft matching, size bookkeeping, proportional attention, the control."""
import keras
import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib.beyond import tome


def tiny_vit(pool="token", depth=3, patch_size=2, attention="mhsa"):
    return vitlib.build_vit(None, image_size=12, channels=1, num_classes=4, patch_size=patch_size, hidden_size=16,
                            depth=depth, num_heads=2, mlp_dim=32, pool=pool, attention=attention)


def numpy(x):
    return ops.convert_to_numpy(x)


@pytest.mark.backend_neutral
@pytest.mark.parametrize("pool", ["token", "gap"])
def test_r_0_reproduces_the_models_logits_exactly(pool, rng):
    model = tiny_vit(pool)
    images = rng.uniform(size=(4, 12, 12, 1)).astype("float32")
    for method in tome.TOKEN_REDUCTIONS:
        np.testing.assert_array_equal(numpy(tome.with_token_reduction(model, 0, method)(images)), numpy(model(images)))


@pytest.mark.backend_neutral
def test_sizes_of_one_leave_the_blocks_attention_as_it_is_and_the_keys_are_its_own(rng):
    attention = tiny_vit().blocks[0].attention
    x = rng.normal(size=(2, 9, 16)).astype("float32")
    y, keys = attention(x, bias=np.zeros((2, 1, 1, 9), "float32"), return_keys=True)  # log 1 = 0
    np.testing.assert_allclose(numpy(y), numpy(attention(x)), atol=1e-5)
    np.testing.assert_allclose(numpy(keys), numpy(attention.key(x)).reshape(2, 9, 2, 8), atol=1e-6)  # (B, T, h, d)


@pytest.mark.backend_neutral
def test_a_token_of_size_s_counts_as_s_equal_keys(rng):
    # Proportional attention over [a, b] with b of size 3 equals plain attention over [a, b, b, b] for the query a.
    attention = tiny_vit().blocks[0].attention
    a, b = rng.normal(size=(2, 16)).astype("float32")
    sizes = np.array([1.0, 3.0], "float32")
    merged = attention(np.stack([a, b])[None], bias=np.log(sizes)[None, None, None])
    plain = attention(np.stack([a, b, b, b])[None])
    np.testing.assert_allclose(numpy(merged)[0, 0], numpy(plain)[0, 0], atol=1e-5)


class DoubledAttention(vitlib.MultiHeadSelfAttention):
    """Multi-head self-attention with its output doubled: another attention layer, as a user might register one."""

    def call(self, x, training=None, return_attention_scores=False, bias=None, return_keys=False):
        out = super().call(x, training, return_attention_scores, bias, return_keys)
        return (2 * out[0], *out[1:]) if isinstance(out, tuple) else 2 * out


@pytest.mark.backend_neutral
def test_token_merging_runs_the_blocks_own_attention_layer(rng, monkeypatch):
    monkeypatch.setitem(vitlib.ATTENTIONS, "doubled", DoubledAttention)
    plain, doubled = tiny_vit(depth=2), tiny_vit(depth=2, attention="doubled")
    for w in plain.weights:
        w.assign(rng.normal(0, 0.3, w.shape).astype(w.dtype))
    doubled.set_weights(plain.get_weights())
    images = rng.uniform(size=(2, 12, 12, 1)).astype("float32")
    merged = {name: numpy(tome.with_token_reduction(m, 4)(images)) for name, m in (("plain", plain), ("doubled", doubled))}
    assert np.abs(merged["plain"] - merged["doubled"]).max() > 1e-3  # the registered layer ran, not a copy of MHSA
    np.testing.assert_array_equal(numpy(tome.with_token_reduction(doubled, 0)(images)), numpy(doubled(images)))


@pytest.mark.backend_neutral
def test_token_counts_fall_by_r_per_block_and_never_below_what_can_merge():
    model = tiny_vit(depth=3)  # 36 patches + the class token
    assert tome.token_counts(model, 0) == [37, 37, 37, 37]
    assert tome.token_counts(model, 5) == [37, 32, 27, 22]
    assert tome.token_counts(model, 15) == [37, 22, 12, 7]  # at most the A set less the class token per block
    out = tome.with_token_reduction(model, 5, return_sources=True)
    logits, size, source = out(np.zeros((2, 12, 12, 1), "float32"))
    assert tuple(logits.shape) == (2, 4) and tuple(size.shape) == (2, 22, 1) and tuple(source.shape) == (2, 22, 36)


@pytest.mark.backend_neutral
def test_merging_keeps_the_sizes_total_and_the_size_weighted_sum_of_tokens(rng):
    x = rng.normal(size=(3, 11, 6)).astype("float32")
    size = rng.integers(1, 4, size=(3, 11, 1)).astype("float32")
    size[:, 0] = 1
    source = np.concatenate([np.zeros((3, 1, 10)), np.broadcast_to(np.eye(10), (3, 10, 10))], axis=1).astype("float32")
    out, new_size, new_source = (numpy(t) for t in tome.merge_tokens(x, size, x, 3, source=source))
    assert out.shape == (3, 8, 6) and new_size.shape == (3, 8, 1)
    np.testing.assert_allclose(new_size.sum(1), size.sum(1))  # no patch lost or counted twice
    np.testing.assert_allclose((out * new_size).sum(1), (x * size).sum(1), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out[:, 0], x[:, 0])  # the class token stays first, unmerged
    np.testing.assert_array_equal(new_source.sum(1), np.ones((3, 10)))  # each patch in exactly one token
    np.testing.assert_array_equal(new_source[:, 1:].sum(2) >= 1, True)


@pytest.mark.backend_neutral
def test_the_most_similar_pairs_merge_first():
    # Tokens 0 (class), then A = even, B = odd positions; A token 2 is a copy of B token 3: that pair merges at r = 1.
    basis = np.eye(6, dtype="float32")
    x = np.stack([basis[0], basis[1], basis[2] + basis[5], basis[2] + basis[5], basis[3], basis[4]])[None]
    out, size = (numpy(t) for t in tome.merge_tokens(x, np.ones((1, 6, 1), "float32"), x, 1))
    assert sorted(size[0, :, 0]) == [1, 1, 1, 1, 2]
    np.testing.assert_allclose(out[0, np.argmax(size[0, :, 0])], basis[2] + basis[5])  # the mean of two equal tokens


@pytest.mark.backend_neutral
def test_the_random_control_drops_as_many_tokens_and_keeps_the_others_unchanged(rng):
    x = rng.normal(size=(2, 9, 4)).astype("float32")
    out, size = (numpy(t) for t in tome.drop_tokens(x, np.ones((2, 9, 1), "float32"), 3, rng.uniform(size=(2, 8))))
    assert out.shape == (2, 6, 4) and np.all(size == 1)
    np.testing.assert_array_equal(out[:, 0], x[:, 0])
    for image in range(2):
        assert all(any(np.array_equal(t, s) for s in x[image]) for t in out[image])
    model = tiny_vit()
    assert tome.with_token_reduction(model, 4, "drop", seed=0)(np.zeros((1, 12, 12, 1), "float32")).shape == (1, 4)


@pytest.mark.backend_neutral
def test_merged_groups_cover_the_patch_grid_with_as_many_groups_as_tokens_left(rng):
    model = tiny_vit(depth=2)  # 36 patches: 36 -> 30 -> 24 patch tokens at r = 6
    groups = tome.merged_groups(model, rng.uniform(size=(2, 12, 12, 1)).astype("float32"), 6)
    assert groups.shape == (2, 6, 6)
    assert [len(np.unique(g)) for g in groups] == [24, 24]


@pytest.mark.backend_neutral
def test_wrong_uses_of_token_reduction_say_what_to_do():
    with pytest.raises(ValueError, match="whole number of tokens"):
        tome.with_token_reduction(tiny_vit(), -1)
    with pytest.raises(ValueError, match="token reduction"):
        tome.with_token_reduction(tiny_vit(), 2, "prune")
    with pytest.raises(ValueError, match="vitlib ViT"):
        tome.with_token_reduction(keras.Sequential([keras.layers.Dense(2)]), 2)


@pytest.mark.backend_neutral
def test_a_saved_token_reduced_vit_loads_with_the_same_logits(tmp_path, rng):
    model = tiny_vit(depth=2)
    images = rng.uniform(size=(2, 12, 12, 1)).astype("float32")
    for w in model.weights:
        w.assign(rng.normal(0, 0.3, w.shape).astype(w.dtype))
    reduced = tome.with_token_reduction(model, 4)
    reduced.save(tmp_path / "reduced.keras")
    loaded = keras.saving.load_model(tmp_path / "reduced.keras")
    assert isinstance(loaded, tome.ReducedViT) and (loaded.r, loaded.method) == (4, "merge")
    np.testing.assert_allclose(numpy(loaded(images)), numpy(reduced(images)), atol=1e-6)
