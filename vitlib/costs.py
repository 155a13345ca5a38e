"""What a ViT costs, computed from its configuration alone: parameters, FLOPs, activation memory.

Counts follow the layers of :mod:`vitlib.model`; tests check ``parameter_count`` against built models.
"""
from vitlib.model import ViTConfig
from vitlib.position_embedding import POSITION_EMBEDDINGS


def _config(config=None, **kwargs):
    if config is None:
        return ViTConfig.from_variant(**kwargs)
    return config


def parameter_count(config=None, **kwargs):
    """Number of learnable parameters, e.g. ``parameter_count(variant="B/16", image_size=224) == 86_567_656``.

    Fixed sin-cos position tables are not parameters (Keras' ``count_params()`` includes them).
    """
    c = _config(config, **kwargs)
    d, p = c.hidden_size, c.patch_size
    embed = p * p * c.channels * d + d if c.stem == "patch" else None
    if embed is None:
        raise ValueError("parameter_count covers stem='patch' only; build the model and call count_params().")
    tokens = c.num_tokens
    cls = c.num_prefix_tokens * d
    pos = tokens * d if POSITION_EMBEDDINGS[c.pos_embedding].learned else 0
    block = 2 * d + 4 * (d * d + d) + 2 * d + (d * c.mlp_dim + c.mlp_dim) + (c.mlp_dim * d + d)
    head = d * c.num_classes + c.num_classes
    return embed + cls + pos + c.depth * block + 2 * d + head


def flops_per_image(config=None, **kwargs):
    """Forward-pass FLOPs for one image (a multiply-add counts as 2), matrix products only.

    Per block with T tokens of width D: Q, K, V and output projections 4·T·D², scores Q·Kᵀ and the
    weighted sum of values 2·T²·D, the MLP 2·T·D·mlp_dim. Training costs about 3x the forward pass.
    """
    c = _config(config, **kwargs)
    d, t = c.hidden_size, c.num_tokens
    embed = c.num_patches * (c.patch_size**2 * c.channels) * d
    block = 4 * t * d * d + 2 * t * t * d + 2 * t * d * c.mlp_dim
    return 2 * (embed + c.depth * block + d * c.num_classes)


def activation_memory(config=None, batch_size=1, bytes_per_value=4, **kwargs):
    """Estimated bytes of activations kept for the backward pass, split into token activations and
    attention matrices: ``{"tokens": ..., "attention": ..., "total": ...}``.

    Per block: LayerNorm inputs, Q, K, V, the attention output and the MLP input (7·T·D values), the MLP
    hidden layer before and after GELU (2·T·mlp_dim), and the attention scores and weights (2·h·T²).
    The attention term grows with the square of the number of tokens.
    """
    c = _config(config, **kwargs)
    t, d = c.num_tokens, c.hidden_size
    tokens = c.depth * (7 * t * d + 2 * t * c.mlp_dim) * batch_size * bytes_per_value
    attention = c.depth * 2 * c.num_heads * t * t * batch_size * bytes_per_value
    return {"tokens": tokens, "attention": attention, "total": tokens + attention}
