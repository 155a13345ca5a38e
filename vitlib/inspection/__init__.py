"""Looking inside a trained ViT, and showing it.

- :mod:`vitlib.inspection.analysis`: what a ViT learned (Fig. 7 of the paper, attention rollout), with controls;
- :mod:`vitlib.inspection.figures`: every figure (matplotlib): the notebooks' and the analyses';
- :mod:`vitlib.inspection.widgets`: interactive explorers (ipywidgets).

matplotlib and ipywidgets come with the ``lab`` extra; nothing here is imported by ``import vitlib``.
"""
import importlib

__all__ = ["analysis", "figures", "widgets"]


def __getattr__(name):
    """A module on first use: ``vitlib.inspection.analysis`` works without importing it first."""
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
