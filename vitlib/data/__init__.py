"""What a ViT is trained and shown on.

- :mod:`vitlib.data.images`: sample photos, the generated quadrant task, digits placed on a canvas, resizing;
- :mod:`vitlib.data.datasets`: the data set registry (``DATASETS``, ``load_dataset``, ``Dataset``);
- :mod:`vitlib.data.pipeline`: ``tf.data`` input pipelines and in-model augmentation (TensorFlow, at the edge).
"""
import importlib

__all__ = ["datasets", "images", "pipeline"]


def __getattr__(name):
    """A module on first use: ``vitlib.data.datasets`` works without importing it first."""
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
