"""vitlib: the Vision Transformer (Dosovitskiy et al. 2021) built one concept at a time, in Keras 3.

The paper's modules, in reading order: patches -> patch_embedding -> position_embedding -> attention -> encoder -> model -> costs.
The machinery, in sub-packages: data (images, data sets, input pipelines), training (recipes, the loop, devices,
resumable runs, experiments), speed (the opt-in speed layer), inspection (analysis, figures, widgets), exercises,
weights (pretrained checkpoints, the PyTorch port). CONTRIBUTING.md has the picture. This file is the one facade: the
names a notebook uses most, each defined in the module named beside it.
"""
import contextlib
import importlib
import os
import sys

from vitlib._notebook import in_notebook as _in_notebook


@contextlib.contextmanager
def _stderr_silenced():
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _import_tensorflow_quietly():
    """TensorFlow prints CUDA and CPU-feature notes to stderr from C++ before it reads TF_CPP_MIN_LOG_LEVEL. When the
    user asked for quiet (TF_CPP_MIN_LOG_LEVEL >= 2), import and initialise it with file descriptor 2 sent to
    /dev/null, so notebooks stay clean. Python exceptions are not affected."""
    wants_quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("2", "3")
    uses_tf = os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow"
    several_workers = "TF_CONFIG" in os.environ  # multi-worker training must start TensorFlow's runtime itself
    if not (wants_quiet and uses_tf) or several_workers or "tensorflow" in sys.modules:
        return
    try:
        with _stderr_silenced():
            import tensorflow as tf

            if not tf.config.list_physical_devices("GPU"):
                # On a machine without a GPU, XLA's first compilation logs a harmless "failed call to cuInit" error;
                # compile one tiny function now, silenced. (This starts the TensorFlow runtime: to split the CPU into
                # logical devices, do it before importing vitlib.)
                tf.function(lambda x: x + 1, jit_compile=True)(tf.constant(1.0))
    except ImportError:
        pass  # Keras reports a missing backend itself


def _silence_native_logs_in_notebooks():
    """In a Jupyter kernel that asked for quiet (TF_CPP_MIN_LOG_LEVEL >= 2), send file descriptor 2 to /dev/null for
    good. TensorFlow's C++ layer writes there while it runs (e.g. oneDNN's "supports DT_INT64 only on platforms with
    AVX-512" on some CPUs), lines its log level does not filter, which a notebook shows in red as if something failed.
    The kernel's Python stderr (warnings, tracebacks) does not use that descriptor, so learners still see those.
    TF_CPP_MIN_LOG_LEVEL=0 keeps every C++ line."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("2", "3") and _in_notebook():
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)


_import_tensorflow_quietly()
_silence_native_logs_in_notebooks()

from vitlib import costs  # noqa: E402
from vitlib.attention import (  # noqa: E402
    ATTENTION_IMPLS,
    ATTENTION_POSITIONS,
    ATTENTIONS,
    MultiHeadSelfAttention,
    register_attention,
    scaled_dot_product_attention,
)

# The private imports (_flexivit, _mae, _tome, _adamw, _distill, _schedule) register the Keras objects that a saved
# file may hold: notebook 10's resized embedding, token-merging ViT and autoencoder, and a recipe's optimiser, loss
# and schedule; so every file the project writes loads after a plain `import vitlib`.
from vitlib.beyond import flexivit as _flexivit  # noqa: E402,F401
from vitlib.beyond import mae as _mae  # noqa: E402,F401
from vitlib.beyond import tome as _tome  # noqa: E402,F401
from vitlib.data.datasets import load_dataset  # noqa: E402
from vitlib.data.images import sample_image  # noqa: E402
from vitlib.encoder import EncoderBlock, MLPBlock, StochasticDepth  # noqa: E402
from vitlib.exercises.checker import check, solution  # noqa: E402
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
from vitlib.patch_embedding import STEMS, ConvStem, PatchEmbedding, ShiftedPatchEmbedding, TokenStem, register_stem  # noqa: E402
from vitlib.patches import (  # noqa: E402
    Patches,
    extract_patches,
    identity_patch_kernel,
    num_patches,
    patch_grid,
    patches_to_images,
)
from vitlib.position_embedding import (  # noqa: E402
    POSITION_EMBEDDINGS,
    POSITION_RESIZES,
    ClassToken,
    PositionEmbedding,
    resize_position_embeddings,
    sincos_1d,
    sincos_2d,
)
from vitlib.speed import adamw as _adamw  # noqa: E402,F401
from vitlib.training import distill as _distill  # noqa: E402,F401
from vitlib.training import schedule as _schedule  # noqa: E402,F401

__version__ = "0.1.0"

_SUBPACKAGES = ("data", "training", "speed", "inspection", "exercises", "weights")

__all__ = [
    "ATTENTIONS", "ATTENTION_IMPLS", "ATTENTION_POSITIONS", "POOLS", "POSITION_EMBEDDINGS", "POSITION_RESIZES", "STEMS",
    "VARIANTS", "ClassToken", "ConvStem", "EncoderBlock", "MLPBlock", "MultiHeadSelfAttention", "PatchEmbedding",
    "Patches", "PositionEmbedding", "ShiftedPatchEmbedding", "StochasticDepth", "TokenPool", "TokenStem", "ViTConfig",
    "VisionTransformer", "attention_weights", "build_vit", "check", "costs", "encoder_blocks", "extract_patches",
    "identity_patch_kernel", "load_dataset", "num_patches", "parse_variant", "patch_grid", "patches_to_images",
    "register_attention", "register_stem", "resize_position_embeddings", "sample_image", "scaled_dot_product_attention",
    "sincos_1d", "sincos_2d", "solution", *_SUBPACKAGES,
]


def __getattr__(name):  # vitlib.inspection, vitlib.weights: imported on first use (matplotlib, ipywidgets, PyTorch)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"vitlib.{name}")
    raise AttributeError(f"module 'vitlib' has no attribute {name!r}")
