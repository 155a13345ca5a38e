"""Weights from elsewhere.

- :mod:`vitlib.weights.checkpoints`: reading other implementations' checkpoint files;
- :mod:`vitlib.weights.pretrained`: loading them into a ``build_vit`` model (``load_weights``);
- :mod:`vitlib.weights.torch_vit`: the same ViT in plain PyTorch, weights copied both ways (needs PyTorch).
"""
import importlib

__all__ = ["checkpoints", "pretrained", "torch_vit"]


def __getattr__(name):
    """A module on first use: ``vitlib.weights.checkpoints`` works without importing it first."""
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
