"""Looking inside a ViT, as in Figure 7 of the paper and Abnar & Zuidema (2020):

- ``position_similarity``: how similar the position embeddings of two patches are (Fig. 7, centre), and
  ``similarity_by_distance`` / ``locality_gap``: the same as a curve against the distance between the patches;
- ``attention_rollout`` / ``rollout_map``: which patches the class token draws on, through all layers;
- ``mean_attention_distance``: how far each head looks, in pixels (Fig. 7, right);
- ``filter_components``: principal components of the patch-embedding filters (Fig. 7, left);
- ``untrained_copy``: the same architecture with fresh random weights, the control for every analysis above;
- ``LayoutTracker``: the locality gap after every epoch of training, and the whole table at a few epochs.

Attention maps come from ``vitlib.attention_weights(model, images)``: a list of (B, heads, T, T) arrays.
"""
import os
from pathlib import Path

import keras
import numpy as np

from vitlib import _checks


def position_similarity(embeddings, grid_size, num_prefix_tokens=None):
    """Cosine similarity of every patch's position embedding with every other patch's.

    embeddings: a (1, T, D) or (T, D) table, a ``PositionEmbedding`` layer, or a ViT model.
    Returns an array (rows, cols, rows, cols): ``sim[i, j]`` is the map of patch (i, j) against all.
    """
    if hasattr(embeddings, "position_embedding"):  # a ViT
        embeddings = embeddings.position_embedding
    if hasattr(embeddings, "embeddings"):  # a PositionEmbedding layer
        if num_prefix_tokens is None:
            num_prefix_tokens = embeddings.num_prefix_tokens
        if embeddings.embeddings is None:
            raise ValueError("This model has pos_embedding='none': there are no position embeddings to compare.")
        embeddings = keras.ops.convert_to_numpy(embeddings.embeddings)
    rows, cols = _checks.int_pair("grid_size", grid_size)
    table = np.asarray(embeddings, dtype="float64")
    table = table.reshape(-1, table.shape[-1])
    if num_prefix_tokens is None:
        num_prefix_tokens = table.shape[0] - rows * cols
    table = table[num_prefix_tokens:]
    if table.shape[0] != rows * cols:
        raise ValueError(
            f"{table.shape[0]} position embeddings (after {num_prefix_tokens} prefix tokens) do not fill a "
            f"{rows}x{cols} grid. Pass the model's patch grid, e.g. model.config.grid_size."
        )
    unit = table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-12)
    return (unit @ unit.T).reshape(rows, cols, rows, cols)


def similarity_by_distance(similarity):
    """Mean similarity of patch pairs against the distance between them, in whole patches.

    ``similarity``: (rows, cols, rows, cols) from :func:`position_similarity`. The distance between two patch
    centres (Euclidean, in patches) is rounded to the nearest whole number: 1 holds the 4 direct neighbours and the
    4 diagonal ones (1.41), 2 the pairs at 2 and 2.24, and so on; a patch paired with itself (0) is left out.
    Returns ``(distances, means)``: the whole distances 1, 2, ... present, and the mean similarity at each.
    """
    similarity = _as_similarity_grid(similarity)
    rows, cols = similarity.shape[:2]
    distance = np.rint(patch_distances((rows, cols)).reshape(rows, cols, rows, cols)).astype(int)
    distances = np.unique(distance[distance > 0])
    return distances, np.array([similarity[distance == d].mean() for d in distances])


def locality_gap(similarity, near=1, far=3):
    """How much more similar close patches are than distant ones: the mean similarity of pairs ``near`` patches
    apart minus that of all pairs ``far`` or more apart (distances as in :func:`similarity_by_distance`).
    About 0 when position embeddings do not encode the 2-D layout; clearly positive when they do."""
    similarity = _as_similarity_grid(similarity)
    rows, cols = similarity.shape[:2]
    distance = np.rint(patch_distances((rows, cols)).reshape(rows, cols, rows, cols))
    if not 0 < near < far or not (distance >= far).any():
        raise ValueError(f"Need 0 < near < far and pairs at least far={far} patches apart on a {rows}x{cols} grid, "
                         f"got near={near}, far={far}.")
    return float(similarity[distance == near].mean() - similarity[distance >= far].mean())


class LayoutTracker(keras.callbacks.Callback):
    """Watch the position embeddings learn the layout while a model trains (a Keras callback).

    After every epoch it puts the :func:`locality_gap` of ``vit``'s position embeddings into the epoch's logs
    (``locality_gap``: a column of ``history.csv`` when it comes before a ``CSVLogger``), and at the epochs in
    ``snapshots`` (0: before training) it keeps the whole table in ``path``, a ``.npz`` file that
    :func:`read_snapshots` reads. An epoch that runs again (a resumed run) replaces its snapshot.
    """

    def __init__(self, vit, path, snapshots=(0, 1, 2, 5, 10, 20, 40)):
        super().__init__()
        self.vit, self.path, self.snapshots = vit, Path(path), {int(e) for e in snapshots}
        self.grid_size = vit.config.grid_size

    def on_train_begin(self, logs=None):
        if 0 in self.snapshots and "epoch_0" not in read_snapshots(self.path, missing_ok=True):
            self._snapshot(0)  # before the first step; a resumed run keeps the one its first start took

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["locality_gap"] = locality_gap(position_similarity(self.vit, self.grid_size))
        if epoch + 1 in self.snapshots or epoch + 1 == self.params.get("epochs"):
            self._snapshot(epoch + 1)

    def _snapshot(self, epoch):
        tables = read_snapshots(self.path, missing_ok=True)
        tables[f"epoch_{epoch}"] = keras.ops.convert_to_numpy(self.vit.position_embedding.embeddings)
        partial = self.path.with_name(f"partial-{self.path.name}")  # renamed into place: never a half-written file
        np.savez(partial, **tables)
        os.replace(partial, self.path)


def read_snapshots(path, missing_ok=False):
    """The position tables a :class:`LayoutTracker` kept: ``{"epoch_0": (1, T, D) array, ...}``."""
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return {}
        raise FileNotFoundError(f"No snapshots at {path}: train with track_layout=True (python -m vitlib.train "
                                "--track-layout) to write them.")
    with np.load(path) as saved:
        return {name: saved[name] for name in saved.files}


def _as_similarity_grid(similarity):
    similarity = np.asarray(similarity, dtype="float64")
    if similarity.ndim != 4 or similarity.shape[:2] != similarity.shape[2:]:
        raise ValueError(f"Expected a (rows, cols, rows, cols) similarity array from position_similarity, got shape "
                         f"{similarity.shape}.")
    return similarity


def untrained_copy(model, seed=0):
    """The control for every analysis here: a model of the same configuration with fresh random weights
    (drawn with ``seed``), as ``model`` was before training."""
    from vitlib.model import VisionTransformer

    keras.utils.set_random_seed(seed)
    return VisionTransformer(model.config, name=f"{model.name}_untrained")


def mass_inside(maps, mask):
    """The share of each map's mass that falls on ``mask``: maps (B, rows, cols) summing to 1 (such as
    :func:`rollout_map`'s), mask (B, rows, cols) of booleans. Returns (B,). Attention spread evenly gives the
    share of the grid the mask covers."""
    maps, mask = np.asarray(maps, dtype="float64"), np.asarray(mask, dtype=bool)
    if maps.shape != mask.shape or maps.ndim != 3:
        raise ValueError(f"maps and mask must both be (batch, rows, cols), got {maps.shape} and {mask.shape}.")
    return (maps * mask).sum(axis=(1, 2)) / np.maximum(maps.sum(axis=(1, 2)), 1e-12)


def ink_patches(images, patch_size, threshold=0.0):
    """Which patches of each image hold ink (a pixel above ``threshold``): (B, rows, cols) booleans."""
    images = np.asarray(images)
    b, h, w = images.shape[:3]
    rows, cols = _checks.divisible((h, w), patch_size)
    p = patch_size
    return (images.reshape(b, rows, p, cols, p, -1) > threshold).any(axis=(2, 4, 5))


HEAD_FUSIONS = ("mean", "max", "min")


def _stack_maps(maps):
    """A list of L arrays (B, heads, T, T), or one array (L, B, heads, T, T) -> float64 array (L, B, heads, T, T)."""
    arrays = [np.asarray(keras.ops.convert_to_numpy(m), dtype="float64") for m in maps]
    if not arrays or any(a.ndim != 4 or a.shape != arrays[0].shape or a.shape[-1] != a.shape[-2] for a in arrays):
        raise ValueError(
            f"Expected attention maps as a list of (batch, heads, tokens, tokens) arrays of one shape, got shapes "
            f"{[a.shape for a in arrays]}. Get them with vitlib.attention_weights(model, images)."
        )
    return np.stack(arrays)


def attention_rollout(maps, head_fusion="mean", discard_ratio=0.0, residual=True):
    """Attention rollout (Abnar & Zuidema 2020): how much each output token draws on each input token
    through all layers. Returns (B, T, T); every row sums to 1.

    Per layer the heads are fused (``"mean"``, ``"max"`` or ``"min"``), optionally the weakest
    ``discard_ratio`` of the weights are zeroed (the class token's own column is kept), the residual
    connection is modelled as 0.5 A + 0.5 I, rows are renormalised, and the layers are multiplied:
    ``R = A_L ... A_2 A_1``.
    """
    _checks.choice("head_fusion", head_fusion, HEAD_FUSIONS)
    if not 0 <= discard_ratio < 1:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio!r}.")
    stacked = _stack_maps(maps)
    tokens = stacked.shape[-1]
    eye = np.eye(tokens)
    rollout = np.broadcast_to(eye, stacked.shape[1:2] + eye.shape).copy()
    for layer in stacked:
        fused = getattr(layer, head_fusion)(axis=1)  # (B, T, T)
        if discard_ratio > 0:
            flat = fused.reshape(len(fused), -1)
            k = int(flat.shape[1] * discard_ratio)
            weakest = np.argsort(flat, axis=1)[:, :k]
            weakest = np.where(weakest % tokens == 0, -1, weakest)  # never drop attention to token 0
            for row, drop in zip(flat, weakest):
                row[drop[drop >= 0]] = 0.0
            fused = flat.reshape(fused.shape)
        if residual:
            fused = 0.5 * fused + 0.5 * eye
        fused = fused / np.maximum(fused.sum(-1, keepdims=True), 1e-12)
        rollout = fused @ rollout
    return rollout


def rollout_map(rollout, grid_size, num_prefix_tokens=1):
    """Rollout as an image-shaped map (B, rows, cols): the class token's row over the patches, or, for a
    model without a class token (``pool="gap"``), the mean over all patch rows. Each map sums to 1."""
    rows, cols = _checks.int_pair("grid_size", grid_size)
    rollout = np.asarray(rollout)
    if rollout.ndim != 3 or rollout.shape[1] != num_prefix_tokens + rows * cols:
        raise ValueError(
            f"A rollout of shape {rollout.shape} does not match {num_prefix_tokens} prefix token(s) + a "
            f"{rows}x{cols} grid. Pass the model's config.grid_size."
        )
    source = rollout[:, 0] if num_prefix_tokens else rollout.mean(axis=1)
    patches = source[:, num_prefix_tokens:]
    return (patches / np.maximum(patches.sum(-1, keepdims=True), 1e-12)).reshape(-1, rows, cols)


def patch_distances(grid_size, patch_size=1):
    """Distances between patch centres in pixels, (N, N) with N = rows·cols in row-major order."""
    rows, cols = _checks.int_pair("grid_size", grid_size)
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    centres = np.stack([r.ravel(), c.ravel()], -1) * float(patch_size)
    return np.linalg.norm(centres[:, None] - centres[None], axis=-1)


def mean_attention_distance(maps, grid_size, patch_size, num_prefix_tokens=1):
    """Mean attention distance per layer and head, (L, heads), in pixels (Fig. 7, right).

    For each query patch, the distance to every key patch weighted by the attention between them, then
    averaged over query patches and the batch. Prefix tokens (the class token) have no position: they are
    left out, and each query's weights over the patches are renormalised to sum to 1. A head that attends
    uniformly gets the mean pairwise patch distance; one that attends only to itself gets 0.
    """
    stacked = _stack_maps(maps)  # (L, B, H, T, T)
    distances = patch_distances(grid_size, patch_size)
    n = distances.shape[0]
    if stacked.shape[-1] != num_prefix_tokens + n:
        raise ValueError(
            f"Attention over {stacked.shape[-1]} tokens does not match {num_prefix_tokens} prefix token(s) + "
            f"{n} patches. Pass the model's config.grid_size and config.patch_size."
        )
    patch_to_patch = stacked[..., num_prefix_tokens:, num_prefix_tokens:]
    weights = patch_to_patch / np.maximum(patch_to_patch.sum(-1, keepdims=True), 1e-12)
    per_query = (weights * distances).sum(-1)  # (L, B, H, N)
    return per_query.mean(axis=(1, 3))


def filter_components(kernel, patch_size=None, channels=None, num_components=28):
    """Principal components of the patch-embedding filters (Fig. 7, left), as images.

    ``kernel``: a ViT model, its ``PatchEmbedding`` layer, a Conv2D kernel (P, P, C, D) or a Dense kernel
    (P·P·C, D). The D filters are the samples; they are centred and decomposed with an SVD. Returns
    ``(components, explained)``: (k, P, P, C) arrays scaled to [0, 1] for display, strongest first, and the
    fraction of the filters' variance each explains.
    """
    if hasattr(kernel, "stem"):  # a ViT
        if kernel.stem.patch_kernel() is None:
            raise ValueError(f"This model's stem (stem={kernel.config.stem!r}) is a convolutional stem or shifted "
                             "patches, not linear patch filters: use a ViT with stem='patch'.")
        kernel = kernel.stem
    if hasattr(kernel, "patch_kernel"):  # a stem layer
        if kernel.patch_kernel() is None:
            raise ValueError(f"The stem {kernel.name!r} is not linear patch filters; pass a PatchEmbedding layer.")
        kernel = keras.ops.convert_to_numpy(kernel.patch_kernel())  # (P, P, C, D)
    kernel = np.asarray(kernel, dtype="float64")
    if kernel.ndim == 4:
        patch_size, channels = kernel.shape[0], kernel.shape[2]
        kernel = kernel.reshape(-1, kernel.shape[-1])
    if kernel.ndim != 2 or patch_size is None or channels is None or kernel.shape[0] != patch_size**2 * channels:
        raise ValueError(
            f"Cannot read a kernel of shape {kernel.shape} as filters of {patch_size}x{patch_size}x{channels} "
            "pixels. Pass a (P, P, C, D) or (P*P*C, D) kernel with patch_size and channels, or the model."
        )
    filters = kernel.T - kernel.T.mean(axis=0)  # (D, P·P·C), one filter per row
    _, singular, directions = np.linalg.svd(filters, full_matrices=False)
    explained = singular**2 / max(np.sum(singular**2), 1e-300)
    k = min(num_components, len(singular))
    components = directions[:k].reshape(k, patch_size, patch_size, channels)
    lo = components.min(axis=(1, 2, 3), keepdims=True)
    hi = components.max(axis=(1, 2, 3), keepdims=True)
    return (components - lo) / np.maximum(hi - lo, 1e-12), explained[:k]
