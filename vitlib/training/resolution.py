"""A new resolution, Sec. 3.2 of the paper: fine-tune a trained ViT on larger images with the same patch size.

The patch grid grows (8x8 images in 2x2 patches: a 4x4 grid; 16x16 images: 8x8), so the patch embedding, the
encoder and the head keep their weights, and only the position embeddings need a new table: the trained one
interpolated in 2-D (``"bilinear"``, ``"bicubic"``, ``"nearest"``) or, as the naive alternative, a fresh random one
(``"reinit"``). The paper's point: patch extraction and this interpolation are the only places where the 2-D
structure of images is put into a ViT by hand.

    big = vitlib.training.resolution.at_resolution(model, 16, "bicubic")    # then fine-tune big on 16x16 images

The images are resized with :func:`vitlib.data.images.resize_images`.
"""
import dataclasses
from pathlib import Path

import keras

from vitlib import _checks, speed
from vitlib.model import VisionTransformer
from vitlib.position_embedding import POSITION_RESIZES, resize_position_embeddings


def at_resolution(model, image_size, method="bilinear", seed=0):
    """A copy of the vitlib ViT ``model`` for images of ``image_size`` (an int or (height, width)), same patch size.

    Every weight is copied unchanged except the learned position embeddings, which are resized to the new patch
    grid by ``method`` (one of ``vitlib.position_embedding.POSITION_RESIZES``; ``"reinit"`` keeps the new model's random
    table, drawn with ``seed``). Fixed sin-cos tables are computed anew for the new grid. Returns the new model (not
    compiled).
    """
    if not isinstance(model, VisionTransformer):
        raise ValueError(f"at_resolution needs a vitlib ViT (built by vitlib.build_vit or loaded from its .keras "
                         f"file), got {type(model).__name__}.")
    _checks.choice("position resize method", method, tuple(POSITION_RESIZES))
    config = dataclasses.replace(model.config, image_size=image_size)  # checks that the patch size divides it
    speed.set_seed(seed)
    new = VisionTransformer(config, name=model.name)
    old_table, new_table = model.position_embedding.embeddings, new.position_embedding.embeddings
    if len(model.weights) != len(new.weights):
        raise ValueError(f"{model.name!r} has {len(model.weights)} weights but a ViT built from its config has "
                         f"{len(new.weights)}: was it built by vitlib.build_vit?")
    for source, target in zip(model.weights, new.weights):  # the same architecture: the same order
        if target is new_table:
            if not target.trainable or POSITION_RESIZES[method] is None:  # sin-cos: computed anew; "reinit": random
                continue
            value = resize_position_embeddings(keras.ops.convert_to_numpy(old_table), config.grid_size,
                                               old_grid=model.config.grid_size,
                                               num_prefix_tokens=config.num_prefix_tokens,
                                               interpolation=POSITION_RESIZES[method])
        else:
            value = keras.ops.convert_to_numpy(source)
        target.assign(value)
    return new


def load_vit(path):
    """A vitlib ViT from its ``.keras`` file, with a clear error for a missing, damaged or non-ViT file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"No saved model at {str(path)!r}: give the .keras file a training run wrote (e.g. "
                         "runs/digits/last.keras).")
    try:
        loaded = keras.saving.load_model(path)
    except Exception as exc:  # zipfile, JSON or Keras deserialisation errors, depending on the damage
        raise ValueError(f"Could not load {str(path)!r} as a Keras model ({type(exc).__name__}: {exc}); is it a "
                         ".keras file saved by vitlib, and complete?") from exc
    if not isinstance(loaded, VisionTransformer):
        raise ValueError(f"{str(path)!r} holds a {type(loaded).__name__}, not a vitlib ViT: give a file saved from "
                         "vitlib.build_vit's model (a training run's best.keras or last.keras).")
    return loaded
