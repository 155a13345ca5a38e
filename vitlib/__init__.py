"""vitlib: the Vision Transformer (Dosovitskiy et al. 2021) built one concept at a time, in Keras 3.

Modules in reading order: patches -> embeddings -> attention -> encoder (+ fast) -> model -> data -> costs
-> analysis -> pretrained -> plotting -> widgets -> exercises (training: vitlib.training).
"""
from vitlib._quiet import import_tensorflow_quietly

import_tensorflow_quietly()
from vitlib.patches import Patches, extract_patches, identity_patch_kernel, num_patches, patch_grid, patches_to_images
from vitlib.embeddings import (
    ClassToken, ConvStem, PatchEmbedding, PositionEmbedding, ShiftedPatchEmbedding, TokenStem, resize_position_embeddings,
    sincos_1d, sincos_2d,
)
from vitlib.attention import MultiHeadSelfAttention, scaled_dot_product_attention
from vitlib.encoder import EncoderBlock, MLPBlock, StochasticDepth
from vitlib.model import (
    VARIANTS, TokenPool, ViTConfig, VisionTransformer, attention_weights, build_vit, encoder_blocks, parse_variant,
)

__version__ = "0.1.0"

from vitlib import analysis, costs, data, exercises, fast, plotting, pretrained, widgets  # noqa: E402  (modules)
from vitlib.exercises import check  # noqa: E402
