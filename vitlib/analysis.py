"""Looking inside a ViT: how similar the learned position embeddings are (Fig. 7, centre)."""
import keras
import numpy as np

from vitlib import _checks


def position_similarity(embeddings, grid_size, num_prefix_tokens=None):
    """Cosine similarity of every patch's position embedding with every other patch's.

    embeddings: a (1, T, D) or (T, D) table, a ``PositionEmbedding`` layer, or a ViT model.
    Returns an array (rows, cols, rows, cols): ``sim[i, j]`` is the map of patch (i, j) against all.
    """
    if hasattr(embeddings, "get_layer"):  # a model
        embeddings = embeddings.get_layer("position_embedding")
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
