"""Training a ViT, plain Keras ``fit`` throughout.

- :mod:`vitlib.training.recipes`: what to train (``TrainConfig``, ``RECIPES``, ``recipe``);
- :mod:`vitlib.training.devices`: where and how (GPUs, mixed precision, XLA, several devices);
- :mod:`vitlib.training.schedule`: the learning rate (``WarmupCosine``);
- :mod:`vitlib.training.distill`: a small CNN baseline and teacher, distillation (DeiT);
- :mod:`vitlib.training.loop`: the run itself (``train``, ``compile_for_training``, ``read_history``);
- :mod:`vitlib.training.backup`, :mod:`vitlib.training.multiworker`: runs that survive being killed, several machines;
- :mod:`vitlib.training.progress`: one live line of progress in notebooks and terminals;
- :mod:`vitlib.training.resolution`: a trained ViT at a new resolution (Sec. 3.2);
- :mod:`vitlib.training.experiments`: many short controlled runs (notebook 08).

The command line is ``python -m vitlib.train``.
"""
import importlib

__all__ = ["backup", "devices", "distill", "experiments", "fitting",
           "loop", "multiworker", "progress", "recipes", "resolution", "schedule"]


def __getattr__(name):
    """A module on first use: ``vitlib.training.backup`` works without importing it first."""
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
