"""The notebooks' exercises.

- :mod:`vitlib.exercises.questions`: what an exercise is (``Exercise``, ``Choice``) and how it judges an answer;
- :mod:`vitlib.exercises.bank`: the questions of every notebook (``EXERCISES``);
- :mod:`vitlib.exercises.checker`: ``check`` and ``solution``, the feedback a learner sees (also ``vitlib.check``).
"""
import importlib

__all__ = ["bank", "checker", "questions"]


def __getattr__(name):
    """A module on first use: ``vitlib.exercises.bank`` works without importing it first."""
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
