"""The same ViT in plain PyTorch (``torch.nn``, no Keras), and weights copied both ways.

Notebook 09 writes this model out piece by piece; this module is the version its test and its fine-tuning use:

    images (B, H, W, C) -> patch embedding (Conv2d, stride P) -> prepend class token -> + position embeddings
    -> L x EncoderBlock (pre-LayerNorm attention and MLP, Eq. 2-3) -> LayerNorm -> pool -> Linear head -> logits

Tensor names are those of notebook 09's ``TorchViT`` (so weights move between the two with ``load_state_dict``),
one rename from the Keras weight paths (``encoder_block_0/attention/query/kernel`` is
``blocks.0.attention.query.weight``, ``encoder_norm/gamma`` is ``norm.weight``); :func:`from_keras` and
:func:`copy_to_keras` are that rename plus the two layout changes: Dense kernels are (in, out) in Keras and
(out, in) in ``nn.Linear``; Conv2D kernels are (P, P, C, D) in Keras and (D, C, P, P) in ``nn.Conv2d``. Images stay
channels-last, as in Keras.

Covers the paper's ViT: the ``"patch"`` stem, every position embedding, both pools and multi-head
self-attention (``"mhsa"``); other options are refused by name. Needs PyTorch (``pip install torch``).
"""
import math

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as error:  # pragma: no cover - PyTorch is installed by `make lab` and `make test`
    raise ImportError("vitlib.weights.torch_vit needs PyTorch: pip install torch (the CPU build is enough).") from error

from vitlib.encoder import LAYER_NORM_EPSILON


class Attention(nn.Module):
    """Multi-head self-attention, softmax(Q Kᵀ / sqrt(d)) V per head (Appendix A): (B, T, D) -> (B, T, D)."""

    def __init__(self, width, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.query, self.key, self.value, self.out = (nn.Linear(width, width) for _ in range(4))

    def forward(self, x):
        batch, tokens, width = x.shape
        split = lambda t: t.reshape(batch, tokens, self.num_heads, -1).transpose(1, 2)  # noqa: E731  (B, h, T, d)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)  # (B, h, T, T)
        return self.out((weights @ v).transpose(1, 2).reshape(batch, tokens, width))


class EncoderBlock(nn.Module):
    """z' = MSA(LN(z)) + z (Eq. 2); z = MLP(LN(z')) + z' (Eq. 3), the MLP being Linear -> exact GELU -> Linear."""

    def __init__(self, width, num_heads, mlp_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=LAYER_NORM_EPSILON)
        self.attention = Attention(width, num_heads)
        self.norm2 = nn.LayerNorm(width, eps=LAYER_NORM_EPSILON)
        self.fc1, self.fc2 = nn.Linear(width, mlp_dim), nn.Linear(mlp_dim, width)

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))


# The pools of vitlib.model.POOLS ported: the class token's state (Eq. 4) or the mean of the tokens (appendix D.3).
POOLS = {"token": lambda x: x[:, 0], "gap": lambda x: x.mean(dim=1)}


class ViT(nn.Module):
    """The ViT of a :class:`vitlib.ViTConfig` in plain PyTorch: images (B, H, W, C) -> logits (B, classes).

    The position table is a parameter when learned, a buffer when fixed (sin-cos), absent for ``"none"``."""

    def __init__(self, config):
        super().__init__()
        _check_supported(config)
        self.config = c = config
        self.patch_embedding = nn.Conv2d(c.channels, c.hidden_size, kernel_size=c.patch_size, stride=c.patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, c.hidden_size)) if c.num_prefix_tokens else None
        table = torch.zeros(1, c.num_tokens, c.hidden_size)
        if c.pos_embedding == "learned":
            self.position_embedding = nn.Parameter(table)
        elif c.pos_embedding != "none":
            self.register_buffer("position_embedding", table)
        else:
            self.position_embedding = None
        self.blocks = nn.ModuleList(EncoderBlock(c.hidden_size, c.num_heads, c.mlp_dim) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.hidden_size, eps=LAYER_NORM_EPSILON)
        self.head = nn.Linear(c.hidden_size, c.num_classes)

    def forward(self, images):  # channels last, as in Keras
        x = self.patch_embedding(images.permute(0, 3, 1, 2)).flatten(2).transpose(1, 2)  # (B, N, D), rows first
        if self.class_token is not None:
            x = torch.cat([self.class_token.expand(len(x), -1, -1), x], dim=1)  # (B, 1 + N, D)
        if self.position_embedding is not None:
            x = x + self.position_embedding
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        y = POOLS[self.config.pool](x)
        logits = self.head(y)
        return torch.softmax(logits, -1) if self.config.classifier_activation == "softmax" else logits


def _check_supported(config):
    paper = (("stem", ("patch",)), ("attention", ("mhsa",)), ("attention_position", ("none",)), ("pool", tuple(POOLS)))
    unsupported = {name: getattr(config, name) for name, ported in paper if getattr(config, name) not in ported}
    if unsupported:
        given = ", ".join(f"{k}={v!r}" for k, v in unsupported.items())
        raise ValueError(f"vitlib.weights.torch_vit ports the paper's ViT (stem='patch', attention='mhsa', no position "
                         f"inside attention, pool {' or '.join(map(repr, POOLS))}); this model has {given}. Build it "
                         "with the defaults, or port that layer too.")


_RENAMES = {"patch_embedding/projection": "patch_embedding", "class_token/token": "class_token",
            "position_embedding/embeddings": "position_embedding", "encoder_norm": "norm", "/mlp/": "/"}


def _torch_name(keras_path):
    """``encoder_block_0/attention/query/kernel`` -> ``blocks.0.attention.query.weight``."""
    name = keras_path
    for old, new in _RENAMES.items():
        name = name.replace(old, new)
    parts = name.split("/")
    if parts[0].startswith("encoder_block_"):
        parts[0:1] = ["blocks", parts[0].rsplit("_", 1)[1]]
    parts[-1] = {"kernel": "weight", "gamma": "weight", "beta": "bias"}.get(parts[-1], parts[-1])
    return ".".join(parts)


def _relayout(name, array, to_torch):
    """One weight from Keras' layout to PyTorch's (``to_torch``) or back: Conv2D (P, P, C, D) <-> Conv2d (D, C, P, P),
    Dense (in, out) <-> Linear (out, in); everything else is the same in both."""
    if name.endswith("weight") and array.ndim == 4:
        return array.transpose((3, 2, 0, 1) if to_torch else (2, 3, 1, 0))
    if name.endswith("weight") and array.ndim == 2:
        return array.T
    return array


def _paired(keras_model, torch_model):
    """(Keras variable, torch tensor name) for every weight; every tensor on both sides must be matched."""
    state = torch_model.state_dict()
    pairs = [(w, _torch_name(w.path)) for w in keras_model.weights]
    missing = [w.path for w, name in pairs if name not in state]
    unmatched = sorted(set(state) - {name for _, name in pairs})
    if missing or unmatched:
        raise ValueError(f"The Keras model and the PyTorch ViT do not match: Keras weights without a PyTorch tensor "
                         f"{missing}, PyTorch tensors without a Keras weight {unmatched}. Build both from one config.")
    return pairs, state


def from_keras(keras_model):
    """A :class:`ViT` (in eval mode) holding a copy of a ``vitlib`` Keras model's weights."""
    config = getattr(keras_model, "config", None)
    if config is None:
        raise ValueError(f"{getattr(keras_model, 'name', keras_model)!r} is not a vitlib VisionTransformer "
                         "(build it with vitlib.build_vit, or load its .keras file with keras.saving.load_model).")
    torch_model = ViT(config)
    pairs, state = _paired(keras_model, torch_model)
    tensors = {}
    for variable, name in pairs:
        array = _relayout(name, np.asarray(variable.numpy(), "float32"), to_torch=True)
        if array.shape != tuple(state[name].shape):
            raise ValueError(f"{variable.path} has shape {array.shape} in PyTorch's layout, {name} expects "
                             f"{tuple(state[name].shape)}.")
        tensors[name] = torch.from_numpy(np.ascontiguousarray(array))
    torch_model.load_state_dict(tensors)
    return torch_model.eval()


def copy_to_keras(torch_model, keras_model):
    """Write a :class:`ViT`'s weights (or those of any module with its tensor names, such as notebook 09's
    ``TorchViT``) into a Keras model of the same config, e.g. after training in PyTorch."""
    pairs, state = _paired(keras_model, torch_model)
    for variable, name in pairs:
        variable.assign(_relayout(name, state[name].detach().cpu().numpy(), to_torch=False))
    return keras_model
