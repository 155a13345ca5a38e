"""Weights from elsewhere.

- :mod:`vitlib.weights.checkpoints`: reading other implementations' checkpoint files;
- :mod:`vitlib.weights.pretrained`: loading them into a ``build_vit`` model (``load_weights``);
- :mod:`vitlib.weights.torch_vit`: the same ViT in plain PyTorch, weights copied both ways (needs PyTorch).
"""
