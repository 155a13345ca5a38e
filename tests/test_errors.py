"""Wrong uses of vitlib, each answered by a ValueError that names the bad value and the fix."""
import numpy as np
import pytest

import vitlib
from vitlib.training import loop, recipes
from vitlib.weights import checkpoints

SMALL = dict(image_size=16, num_classes=5, hidden_size=16, depth=1, num_heads=2, mlp_dim=32, patch_size=4)


def small_model():
    return vitlib.build_vit(None, **SMALL)


CASES = [
    ("rank-3 images to extract_patches", lambda: vitlib.extract_patches(np.zeros((32, 32, 3)), 8), r"rank 4.*images\[None\]"),
    ("rank-3 images to the model", lambda: small_model()(np.zeros((16, 16, 3), "float32")), r"got \(16, 16, 3\).*images\[None\]"),
    ("image not divisible by patch", lambda: vitlib.build_vit("Ti/16", image_size=100), r"100x100 is not divisible by patch size 16.*96x96"),
    ("patches of an indivisible image", lambda: vitlib.extract_patches(np.zeros((1, 30, 30, 3)), 8), r"30x30.*patch size 8"),
    ("channel mismatch at call time", lambda: small_model()(np.zeros((2, 16, 16, 1), "float32")), r"\(batch, 16, 16, 3\), got \(2, 16, 16, 1\)"),
    ("image size mismatch at call time", lambda: small_model()(np.zeros((2, 32, 32, 3), "float32")), r"got \(2, 32, 32, 3\).*Resize"),
    ("width not divisible by heads", lambda: vitlib.build_vit(None, **{**SMALL, "num_heads": 3}), r"width 16 \(hidden_size\) is not divisible by num_heads=3.*num_heads=2"),
    ("attention layer width vs heads", lambda: vitlib.MultiHeadSelfAttention(3)(np.zeros((1, 2, 16), "float32")), r"width 16 \(hidden_size\) is not divisible by num_heads=3.*num_heads=2"),
    ("unknown variant", lambda: vitlib.build_vit("X/16"), r"Unknown variant 'X/16'.*'B/16'"),
    ("variant without a patch size", lambda: vitlib.build_vit("B"), r"Unknown variant 'B'"),
    ("unknown pos_embedding", lambda: vitlib.build_vit("Ti/16", pos_embedding="rope"), r"Unknown pos_embedding 'rope'.*'sincos2d'"),
    ("unknown pool", lambda: vitlib.build_vit("Ti/16", pool="max"), r"Unknown pool 'max'.*'gap'"),
    ("unknown stem", lambda: vitlib.build_vit("Ti/16", stem="resnet"), r"Unknown stem 'resnet'"),
    ("negative dropout", lambda: vitlib.build_vit("Ti/16", dropout=-0.1), r"dropout must be a number in \[0, 1\), got -0.1"),
    ("dropout of one", lambda: vitlib.build_vit("Ti/16", drop_path=1.0), r"drop_path must be a number in \[0, 1\), got 1.0"),
    ("zero classes", lambda: vitlib.build_vit("Ti/16", num_classes=0), r"num_classes must be a positive integer, got 0"),
    ("fractional depth", lambda: vitlib.build_vit("Ti/16", depth=2.5), r"depth must be a positive integer, got 2.5"),
    ("custom model missing sizes", lambda: vitlib.build_vit(None, hidden_size=64), r"variant=None needs explicit depth, num_heads, mlp_dim, patch_size"),
    ("sincos2d with width not divisible by 4", lambda: vitlib.build_vit(None, **{**SMALL, "hidden_size": 18, "num_heads": 2, "pos_embedding": "sincos2d"}), r"'sincos2d' needs a width \(hidden_size\) divisible by 4, got 18\. Use 20"),
    ("sincos2d table with width not divisible by 4", lambda: vitlib.sincos_2d((4, 4), 18), r"'sincos2d' needs a width \(hidden_size\) divisible by 4, got 18\. Use 20"),
    ("sincos2d layer on tokens of width 18", lambda: vitlib.PositionEmbedding("sincos2d", (2, 2), 0)(np.zeros((1, 4, 18), "float32")), r"divisible by 4, got 18"),
    ("fused attention with attention dropout", lambda: vitlib.build_vit("Ti/16", attention_impl="fused", attention_dropout=0.1), r"attention_impl='fused' cannot apply attention dropout \(attention_dropout=0.1\)"),
    ("fused attention layer with attention dropout", lambda: vitlib.MultiHeadSelfAttention(2, 0.1, "fused"), r"attention_impl='fused' cannot apply attention dropout \(attention_dropout=0.1\)"),
    ("unknown attention impl", lambda: vitlib.MultiHeadSelfAttention(2, attention_impl="flash"), r"Unknown attention_impl 'flash'"),
    ("resize to an impossible grid", lambda: vitlib.resize_position_embeddings(np.zeros((1, 17, 8)), (0, 4)), r"new_grid must be a positive integer, got 0"),
    ("resize a non-square table without old_grid", lambda: vitlib.resize_position_embeddings(np.zeros((1, 13, 8)), 4), r"Cannot infer the grid of 12.*old_grid"),
    ("resize with a wrong old_grid", lambda: vitlib.resize_position_embeddings(np.zeros((1, 17, 8)), 4, old_grid=(3, 5)), r"holds 15 positions but the table has 16"),
    ("patches_to_images with wrong token count", lambda: vitlib.patches_to_images(np.zeros((1, 5, 48)), 16, 4), r"\(batch, 16, 4\*4\*channels\).*got \(1, 5, 48\)"),
    ("position embedding for the wrong grid", lambda: vitlib.PositionEmbedding("learned", (4, 4))(np.zeros((1, 10, 8), "float32")), r"1 \+ 4x4 = 17 tokens"),
    ("unknown patch method", lambda: vitlib.extract_patches(np.zeros((1, 8, 8, 3)), 4, method="unfold"), r"Unknown method 'unfold'"),
    ("rectangular patches", lambda: vitlib.patch_grid(224, (16, 32)), r"patch_size must be one integer P.*got \(16, 32\)"),
    ("rectangular patches for a model", lambda: vitlib.build_vit(None, **{**SMALL, "patch_size": (4, 8)}), r"patch_size must be one integer P"),
    ("patch larger than the image", lambda: vitlib.patch_grid(8, 16), r"Patch size 16 is larger than the 8x8 image.*at most 8"),
    ("patch larger than one side", lambda: vitlib.patch_grid((8, 32), 16), r"larger than the 8x32 image.*at most 8 that divides 8 and 32"),
    ("output folder that is a file", lambda: loop.train(recipes.recipe("digits"), __file__), r"is a file, not a folder"),
    ("checkpoint of another format", lambda: checkpoints.read_checkpoint(__file__), r"Unknown checkpoint format '.py'.*\.safetensors"),
    ("unknown attention layer", lambda: vitlib.build_vit("Ti/16", attention="window"), r"Unknown attention 'window'.*'mhsa'"),
    ("unknown data set", lambda: vitlib.load_dataset("imagenet"), r"Unknown dataset name 'imagenet'.*'translated_digits'"),
    ("canvas for plain digits", lambda: vitlib.load_dataset("digits", canvas_size=16), r"canvas_size does not apply to 'digits' \(it takes no options\)"),
    ("unknown jit_compile", lambda: recipes.recipe("digits", jit_compile="yes"), r"Unknown jit_compile 'yes'. Choose one of: 'auto', 'xla', True, False"),
    ("conv stem with patch 14", lambda: vitlib.build_vit("B/14", stem="conv"), r"power of 2, got 14"),
]


@pytest.mark.parametrize("what,call,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_value_error_with_the_value_and_the_fix(what, call, message):
    with pytest.raises(ValueError, match=message):
        call()

