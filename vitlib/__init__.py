"""vitlib: the Vision Transformer (Dosovitskiy et al. 2021) built one concept at a time, in Keras 3.

Modules in reading order (CONTRIBUTING.md has the picture):
patches -> stems -> embeddings -> attention -> encoder (+ fast) -> model -> costs -> images, data, pipeline
-> recipes, devices, distill, training (+ backup) -> resolution, experiments -> analysis
-> pretrained; plotting and widgets (matplotlib, ipywidgets) load only when used; exercises for the notebooks.
"""
from vitlib._quiet import import_tensorflow_quietly

import_tensorflow_quietly()

import importlib  # noqa: E402

from vitlib.attention import ATTENTIONS, MultiHeadSelfAttention, scaled_dot_product_attention  # noqa: E402
from vitlib.embeddings import (  # noqa: E402
    POSITION_EMBEDDINGS,
    STEMS,
    ClassToken,
    ConvStem,
    PatchEmbedding,
    PositionEmbedding,
    ShiftedPatchEmbedding,
    TokenStem,
    resize_position_embeddings,
    sincos_1d,
    sincos_2d,
)
from vitlib.encoder import EncoderBlock, MLPBlock, StochasticDepth  # noqa: E402
from vitlib.model import (  # noqa: E402
    POOLS,
    VARIANTS,
    TokenPool,
    VisionTransformer,
    ViTConfig,
    attention_weights,
    build_vit,
    encoder_blocks,
    parse_variant,
)
from vitlib.patches import (  # noqa: E402
    Patches,
    extract_patches,
    identity_patch_kernel,
    num_patches,
    patch_grid,
    patches_to_images,
)

__version__ = "0.1.0"

# Submodules: those without heavy dependencies are imported now (schedule and distill register what a saved,
# compiled model needs to load); plotting and widgets (matplotlib, ipywidgets), training and the PyTorch port on
# first use (vitlib.plotting works as usual), so that `import vitlib` stays light.
from vitlib import analysis, costs, data, distill, exercises, fast, pretrained, schedule  # noqa: E402
from vitlib.exercises import check, solution  # noqa: E402

_LAZY = ("plotting", "widgets", "training", "recipes", "devices", "resolution", "experiments", "torch_vit", "progress", "backup")

__all__ = [
    "ATTENTIONS", "POOLS", "POSITION_EMBEDDINGS", "STEMS", "VARIANTS", "ClassToken", "ConvStem", "EncoderBlock",
    "MLPBlock", "MultiHeadSelfAttention", "PatchEmbedding", "Patches", "PositionEmbedding", "ShiftedPatchEmbedding",
    "StochasticDepth", "TokenPool", "TokenStem", "ViTConfig", "VisionTransformer", "attention_weights", "build_vit",
    "check", "encoder_blocks", "extract_patches", "identity_patch_kernel", "num_patches", "parse_variant", "patch_grid",
    "patches_to_images", "solution", "resize_position_embeddings", "scaled_dot_product_attention", "sincos_1d", "sincos_2d",
    "analysis", "costs", "data", "distill", "exercises", "fast", "pretrained", "schedule", *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"vitlib.{name}")
    raise AttributeError(f"module 'vitlib' has no attribute {name!r}")
