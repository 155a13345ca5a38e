"""Token merging (Bolya et al., ICLR 2023, "Token Merging: Your ViT but Faster"): fewer tokens, no retraining.

In every encoder block, between attention and the MLP, the r most similar pairs of tokens are merged into one
(Sec. 3 of Bolya et al.):

1. **Bipartite soft matching.** Split the tokens alternately into sets A and B; join each token of A to its most
   similar token of B (cosine similarity of the attention keys, averaged over heads); keep the r most similar
   joins and merge each of those A tokens into its B partner. The class token is never merged.
2. **Size bookkeeping.** Each token carries its size s, the number of patches it holds. A merge takes the
   size-weighted mean of the tokens and adds their sizes.
3. **Proportional attention.** softmax(QKᵀ/√d + log s): a token that holds s patches counts as s keys (Eq. 1).

Every block removes r tokens, so a ViT of depth L ends with N - L·r patch tokens. With r = 0 nothing changes.
The control, ``method="drop"``: remove the same number of tokens at random, in the same places.

    fast = with_token_reduction(model, r=4)         # then fast(images) or fast.predict(images)
"""
import math
import numbers

import keras
import numpy as np
from keras import layers, ops

from vitlib import _checks
from vitlib.model import VisionTransformer, encoder_blocks


def _flat(index, tokens):
    """Indices (B, K) into each image's ``tokens`` tokens -> indices into all B·tokens tokens, (B·K,)."""
    offsets = ops.arange(ops.shape(index)[0], dtype=index.dtype)[:, None] * tokens
    return ops.reshape(index + offsets, (-1,))


def _gather(x, index):
    """Tokens ``x`` (B, T, C) at ``index`` (B, K) -> (B, K, C). (One gather over all images' tokens: on TensorFlow
    several times faster than ``ops.take_along_axis``.)"""
    rows = ops.take(ops.reshape(x, (-1, x.shape[-1])), _flat(index, x.shape[1]), axis=0)
    return ops.reshape(rows, (-1, index.shape[1], x.shape[-1]))


def bipartite_soft_matching(metric, r, class_token=True):
    """Which tokens to merge (Algorithm of Bolya et al., Sec. 3.1): ``metric`` (B, T, C), the keys.

    Returns index arrays into set A (the even tokens 0, 2, 4, ...): ``kept`` (B, T_A - r), in their order, and
    ``merged`` (B, r), the A tokens merged away, with ``into`` (B, r), the index in set B (the odd tokens) of
    each one's partner. With ``class_token`` the first token is never merged.
    """
    metric = metric / ops.norm(metric, axis=-1, keepdims=True)
    a, b = metric[:, ::2], metric[:, 1::2]
    scores = ops.einsum("bic,bjc->bij", a, b)  # (B, T_A, T_B): cosine similarity of every A-B pair
    if class_token:  # the class token (A's first) joins nothing
        scores = ops.concatenate([ops.full_like(scores[:, :1], -math.inf), scores[:, 1:]], axis=1)
    best = ops.max(scores, axis=-1)  # (B, T_A): each A token's most similar B token ...
    partner = ops.argmax(scores, axis=-1)  # ... and which one it is
    order = ops.argsort(-best, axis=-1)  # most similar first
    merged = order[:, :r]
    kept = ops.sort(order[:, r:], axis=-1)  # in their order: the class token stays first
    return kept, merged, ops.take_along_axis(partner, merged, axis=1)


def merge(x, kept, merged, into):
    """Sum each merged A token into its B partner: (B, T, C) -> (B, T - r, C), the kept A tokens first, then B."""
    a, b = x[:, ::2], x[:, 1::2]
    tokens_b, width = b.shape[1], x.shape[-1]
    arrivals = ops.segment_sum(ops.reshape(_gather(a, merged), (-1, width)), _flat(into, tokens_b),
                               num_segments=ops.shape(x)[0] * tokens_b)  # what lands on each B token
    b = b + ops.reshape(arrivals, (-1, tokens_b, width))
    return ops.concatenate([_gather(a, kept), b], axis=1)


def merge_tokens(x, size, metric, r, class_token=True, source=None):
    """One ToMe step: merge the r most similar pairs of tokens ``x`` (B, T, D) with sizes ``size`` (B, T, 1) into
    their size-weighted means. Returns (x, size) with T - r tokens, or (x, size, source) when ``source`` (B, T, N),
    which original patches each token holds, is given."""
    kept, merged, into = bipartite_soft_matching(metric, r, class_token)
    total = merge(size, kept, merged, into)
    x = merge(x * size, kept, merged, into) / total  # the size-weighted mean
    if source is None:
        return x, total
    return x, total, merge(source, kept, merged, into)


def drop_tokens(x, size, r, random, class_token=True, source=None):
    """The control: keep the first (class) token and all but r of the others, chosen by ``random`` (B, T - 1)
    uniform numbers; ``size`` and ``source`` shrink with them."""
    first = int(class_token)
    keep = ops.sort(ops.argsort(random, axis=-1)[:, : x.shape[1] - first - r], axis=-1) + first
    if first:
        keep = ops.concatenate([ops.zeros_like(keep[:, :1]), keep], axis=1)
    out = (_gather(x, keep), _gather(size, keep))
    return out if source is None else (*out, _gather(source, keep))


def attention_with_sizes(attention, x, size):
    """Multi-head self-attention with proportional attention (Eq. 1 of Bolya et al.): softmax(QKᵀ/√d + log s) V.
    ``attention``: a block's :class:`vitlib.MultiHeadSelfAttention` (its weights); returns (output, keys averaged
    over heads (B, T, d), the merge metric)."""
    heads, width = attention.num_heads, x.shape[-1]
    split = lambda t: ops.reshape(t, (-1, x.shape[1], heads, width // heads))  # (B, T, h, d)
    q, k, v = split(attention.query(x)), split(attention.key(x)), split(attention.value(x))
    scores = ops.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(width // heads)
    scores = scores + ops.log(size)[:, None, None, :, 0]  # a token of s patches counts s times
    weights = ops.softmax(scores, axis=-1)
    y = ops.reshape(ops.einsum("bhqk,bkhd->bqhd", weights, v), (-1, x.shape[1], width))
    return attention.out(y), ops.mean(k, axis=2)


# name -> what a block does to r tokens between attention and the MLP
TOKEN_REDUCTIONS = ("merge", "drop")


@keras.saving.register_keras_serializable(package="vitlib")
class ReducedEncoder(layers.Layer):
    """A ViT's encoder blocks with r tokens removed in each, between attention and the MLP: (B, T, D) ->
    (B, T - L·r, D), or ``[tokens, sizes (B, T', 1), sources (B, T', N)]`` with ``return_sources``. ``method``:
    ``"merge"`` (ToMe: bipartite soft matching, size-weighted means, proportional attention) or ``"drop"`` (the
    control: r tokens removed at random). With r = 0 the blocks run as they are."""

    def __init__(self, blocks, r, method="merge", class_token=True, seed=None, return_sources=False, **kwargs):
        super().__init__(**kwargs)
        self.blocks = list(blocks)
        if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 0:
            raise ValueError(f"r must be a whole number of tokens to remove per block, 0 or more, got {r!r}.")
        self.r = int(r)
        self.method = _checks.choice("token reduction", method, TOKEN_REDUCTIONS)
        self.class_token, self.seed, self.return_sources = bool(class_token), seed, bool(return_sources)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):  # the blocks come built from a trained ViT; from a config, build them here
        for block in self.blocks:
            if not block.built:
                block.build(input_shape)

    def removed(self, tokens):
        """Tokens removed by each block, for ``tokens`` tokens in: r, or fewer once too few are left (as in ToMe: at
        most half of the tokens that may merge)."""
        out = []
        for _ in self.blocks:
            r = min(self.r, (tokens - self.class_token) // 2)
            out.append(r)
            tokens -= r
        return out

    def call(self, x, training=None):
        tokens = x.shape[1]
        size = ops.ones_like(x[..., :1])  # (B, T, 1): every token holds one patch
        first = int(self.class_token)
        source = None
        if self.return_sources:  # (B, T, N): token t holds patch n; the class token holds none
            eye = np.concatenate([np.zeros((first, tokens - first)), np.eye(tokens - first)]).astype("float32")
            source = ops.broadcast_to(ops.cast(eye, x.dtype), (ops.shape(x)[0], tokens, tokens - first))
        for block, r in zip(self.blocks, self.removed(tokens)):
            if self.r == 0:
                x = block(x, training=training)  # the model itself, op for op
                continue
            y, metric = attention_with_sizes(block.attention, block.norm1(x), size)
            x = x + y  # Eq. 2
            if r and self.method == "merge":
                x, size, *rest = merge_tokens(x, size, metric, r, self.class_token, source)
            elif r:
                random = keras.random.uniform((ops.shape(x)[0], x.shape[1] - first), seed=self.seed_generator)
                x, size, *rest = drop_tokens(x, size, r, random, self.class_token, source)
            else:
                rest = [source]
            source = rest[0] if rest else None
            x = x + block.mlp(block.norm2(x), training=training)  # Eq. 3
        return [x, size, source] if self.return_sources else x

    def compute_output_shape(self, input_shape):
        tokens = input_shape[1] - sum(self.removed(input_shape[1]))
        shape = (input_shape[0], tokens, input_shape[2])
        if self.return_sources:
            return [shape, (input_shape[0], tokens, 1), (input_shape[0], tokens, input_shape[1] - self.class_token)]
        return shape

    def get_config(self):
        return {**super().get_config(), "blocks": [keras.saving.serialize_keras_object(b) for b in self.blocks],
                "r": self.r, "method": self.method, "class_token": self.class_token, "seed": self.seed,
                "return_sources": self.return_sources}

    @classmethod
    def from_config(cls, config):
        config = {**config, "blocks": [keras.saving.deserialize_keras_object(b) for b in config["blocks"]]}
        return cls(**config)


def _check_vit(model):
    if not isinstance(model, VisionTransformer):
        raise ValueError(f"Token reduction needs a vitlib ViT (vitlib.build_vit), got {type(model).__name__}.")


def with_token_reduction(model, r, method="merge", seed=None, return_sources=False):
    """The trained vitlib ViT ``model`` with r tokens removed in every encoder block (``method`` ``"merge"``: ToMe;
    ``"drop"``: at random), sharing its weights: a Keras model images -> logits (with ``return_sources``:
    ``[logits, sizes, sources]``). Nothing is retrained; r = 0 gives the model's own logits exactly."""
    _check_vit(model)
    blocks = encoder_blocks(model)
    embed = keras.Model(model.inputs[0], blocks[0].input, name="embed")  # patches, class token, positions
    encoder = ReducedEncoder(blocks, r, method, bool(model.config.num_prefix_tokens), seed, return_sources, name="encoder")
    images = keras.Input(model.input_shape[1:], name="images")
    out = encoder(embed(images))
    tokens = out[0] if return_sources else out
    logits = model.get_layer("head")(model.get_layer("pool")(model.get_layer("encoder_norm")(tokens)))
    return keras.Model(images, [logits, *out[1:]] if return_sources else logits, name=f"{model.name}_{method}_r{r}")


def token_counts(model, r):
    """Tokens entering each encoder block and leaving the last, with r removed per block: a list of L + 1 ints."""
    _check_vit(model)
    encoder = ReducedEncoder(encoder_blocks(model), r, class_token=bool(model.config.num_prefix_tokens))
    counts = [model.config.num_tokens]
    for removed in encoder.removed(counts[0]):
        counts.append(counts[-1] - removed)
    return counts


def merged_groups(model, images, r):
    """Which patches ToMe merged: for each image, the final token each patch ended in, on the patch grid
    (B, rows, cols) ints; patches with the same number were merged into one token."""
    _check_vit(model)
    _, _, sources = with_token_reduction(model, r, return_sources=True)(images)
    groups = np.argmax(ops.convert_to_numpy(sources), axis=1)  # (B, N): the token holding each patch
    return groups.reshape(-1, *model.config.grid_size)
