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
import inspect
import math
import numbers

import keras
import numpy as np
from keras import ops

from vitlib import _checks
from vitlib.model import VisionTransformer


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
    x, size, metric = (ops.convert_to_tensor(t) for t in (x, size, metric))  # NumPy arrays too, on every backend
    kept, merged, into = bipartite_soft_matching(metric, r, class_token)
    total = merge(size, kept, merged, into)
    x = merge(x * size, kept, merged, into) / total  # the size-weighted mean
    if source is None:
        return x, total
    return x, total, merge(ops.convert_to_tensor(source), kept, merged, into)


def drop_tokens(x, size, r, random, class_token=True, source=None):
    """The control: keep the first (class) token and all but r of the others, chosen by ``random`` (B, T - 1)
    uniform numbers; ``size`` and ``source`` shrink with them."""
    first = int(class_token)
    keep = ops.sort(ops.argsort(random, axis=-1)[:, : x.shape[1] - first - r], axis=-1) + first
    if first:
        keep = ops.concatenate([ops.zeros_like(keep[:, :1]), keep], axis=1)
    out = (_gather(x, keep), _gather(size, keep))
    return out if source is None else (*out, _gather(source, keep))


# name -> what a block does to r tokens between attention and the MLP
TOKEN_REDUCTIONS = ("merge", "drop")


def tokens_removed(tokens, depth, r, prefix):
    """Tokens removed by each of ``depth`` blocks, for ``tokens`` tokens in of which ``prefix`` (the class token) never
    go: r, or fewer once too few are left (as in ToMe: at most half of the tokens that may merge)."""
    out = []
    for _ in range(depth):
        out.append(min(r, (tokens - prefix) // 2))
        tokens -= out[-1]
    return out


class _Reduction:
    """Token reduction in one forward pass, the hook the encode stage hands every block (``EncoderBlock``'s
    ``reduce``): each token's size s (the patches it holds) and, if asked, which patches those are. The block's own
    attention adds log s to its scores (proportional attention, Eq. 1 of Bolya et al.); then r tokens are merged by
    the similarity of their keys, averaged over heads (Sec. 3.1), or, the control, dropped at random."""

    def __init__(self, x, removed, method, prefix, seed_generator, sources):
        self.removed, self.method, self.prefix, self.seed_generator = iter(removed), method, prefix, seed_generator
        self.size = ops.ones_like(x[..., :1])  # (B, T, 1): every token holds one patch
        self.source = None
        if sources:  # (B, T, N): token t holds patch n; the class token holds none
            tokens = x.shape[1]
            eye = np.concatenate([np.zeros((prefix, tokens - prefix)), np.eye(tokens - prefix)]).astype("float32")
            self.source = ops.broadcast_to(ops.cast(eye, x.dtype), (ops.shape(x)[0], tokens, tokens - prefix))

    def attention_bias(self):
        return ops.log(self.size)[:, None, None, :, 0]  # (B, 1, 1, T): a token of s patches counts as s keys

    def __call__(self, x, keys):
        r, first = next(self.removed), bool(self.prefix)
        if r == 0:
            return x
        if self.method == "merge":
            x, self.size, *rest = merge_tokens(x, self.size, ops.mean(keys, axis=2), r, first, self.source)
        else:
            random = keras.random.uniform((ops.shape(x)[0], x.shape[1] - self.prefix), seed=self.seed_generator)
            x, self.size, *rest = drop_tokens(x, self.size, r, random, first, self.source)
        self.source = rest[0] if rest else None
        return x


def _require_vit(model):
    if not isinstance(model, VisionTransformer):
        raise ValueError(f"Token reduction needs a vitlib ViT (vitlib.build_vit), got {type(model).__name__}.")


def _check_vit(model):
    """Token merging runs the ViT's own blocks on fewer tokens, each of which may hold several patches."""
    _require_vit(model)
    c = model.config
    if c.attention_position != "none":
        raise ValueError(f"Token merging takes tokens off the patch grid, which attention_position="
                         f"{c.attention_position!r} reads inside attention: use attention_position='none' (positions "
                         "from pos_embedding, added once before the blocks).")
    if not {"bias", "return_keys"} <= set(inspect.signature(model.blocks[0].attention.call).parameters):
        raise ValueError(f"Token merging adds log(size) to the attention scores (proportional attention) and merges "
                         f"tokens by their keys, but attention={c.attention!r} takes no 'bias' and 'return_keys' in its "
                         "call: use attention='mhsa', or give the layer those arguments (vitlib.register_attention).")


@keras.saving.register_keras_serializable(package="vitlib")
class ReducedViT(keras.Model):
    """A trained vitlib ViT with r tokens removed in each encoder block, between attention and the MLP, sharing its
    weights: images -> logits, or ``[logits, sizes (B, T', 1), sources (B, T', N)]`` with ``return_sources``. It runs
    the ViT's own stages: embed, encode with the reduction handed to every block, head. ``method``: ``"merge"``
    (ToMe: bipartite soft matching, size-weighted means, proportional attention) or ``"drop"`` (the control: r tokens
    removed at random, the attention the same). With r = 0 the ViT runs as it is."""

    def __init__(self, vit, r, method="merge", seed=None, return_sources=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(vit, dict):
            vit = keras.saving.deserialize_keras_object(vit)
        if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 0:
            raise ValueError(f"r must be a whole number of tokens to remove per block, 0 or more, got {r!r}.")
        _check_vit(vit)
        self.vit, self.r, self.seed, self.return_sources = vit, int(r), seed, bool(return_sources)
        self.method = _checks.choice("token reduction", method, TOKEN_REDUCTIONS)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True  # nothing of its own to build: the ViT comes built

    def call(self, images, training=None):
        vit = self.vit
        tokens = vit.embed(images, training=training)
        prefix = vit.config.num_prefix_tokens
        reduction = _Reduction(tokens, tokens_removed(tokens.shape[1], vit.config.depth, self.r, prefix), self.method,
                               prefix, self.seed_generator, self.return_sources)
        tokens = vit.encode(tokens, training=training, reduce=reduction if self.r else None)
        logits = vit.head(tokens)
        return [logits, reduction.size, reduction.source] if self.return_sources else logits

    def get_config(self):
        return {**super().get_config(), "vit": keras.saving.serialize_keras_object(self.vit), "r": self.r,
                "method": self.method, "seed": self.seed, "return_sources": self.return_sources}


def with_token_reduction(model, r, method="merge", seed=None, return_sources=False):
    """The trained vitlib ViT ``model`` with r tokens removed in every encoder block (``method`` ``"merge"``: ToMe;
    ``"drop"``: at random), sharing its weights: a :class:`ReducedViT`, images -> logits (with ``return_sources``:
    ``[logits, sizes, sources]``). Nothing is retrained; r = 0 gives the model's own logits exactly. Every registered
    position embedding and pool works; an attention layer must take a bias (proportional attention)."""
    return ReducedViT(model, r, method, seed, return_sources, name=f"{getattr(model, 'name', 'model')}_{method}_r{r}")


def token_counts(model, r):
    """Tokens entering each encoder block and leaving the last, with r removed per block: a list of L + 1 ints."""
    _require_vit(model)
    c = model.config
    counts = [c.num_tokens]
    for removed in tokens_removed(c.num_tokens, c.depth, r, c.num_prefix_tokens):
        counts.append(counts[-1] - removed)
    return counts


def merged_groups(model, images, r):
    """Which patches ToMe merged: for each image, the final token each patch ended in, on the patch grid
    (B, rows, cols) ints; patches with the same number were merged into one token."""
    _, _, sources = with_token_reduction(model, r, return_sources=True)(images)
    groups = np.argmax(ops.convert_to_numpy(sources), axis=1)  # (B, N): the token holding each patch
    return groups.reshape(-1, *model.config.grid_size)
