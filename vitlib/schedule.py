"""The learning-rate schedule of the training recipes: linear warm-up, then cosine decay.

Its own small module, imported with ``vitlib``, so that a model saved with its optimiser (``model.save`` after
``training.compile_for_training``) loads after a plain ``import vitlib``.
"""
import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vitlib")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak`` over ``warmup_steps``, then cosine decay to ``final`` at ``total_steps``.

    The same numbers as Keras' ``CosineDecay(0, total - warmup, alpha=final / peak, warmup_target=peak,
    warmup_steps=warmup)`` (tested to 2e-10), kept because that one made a JAX training run 5x slower here (one epoch
    of translated digits: 108 against 25 s)."""

    def __init__(self, peak, total_steps, warmup_steps=0, final=0.0):
        self.peak, self.total_steps = float(peak), int(total_steps)
        self.warmup_steps, self.final = int(warmup_steps), float(final)
        self._traced = None  # (graph, step, rate) of the last call inside a TensorFlow graph

    def __call__(self, step):
        # AdamW asks for the rate once per variable (its weight decay), so a traced TensorFlow step would build this
        # formula ~60 times for a small ViT: about 2 of the 10 s it takes to trace a training step on 2 cores. Inside
        # one graph, for the same step variable, build it once; eagerly (and under JAX, PyTorch) compute it every time.
        graph = _current_graph()
        if graph is not None and self._traced is not None and self._traced[0] is graph and self._traced[1] is step:
            return self._traced[2]
        rate = self._rate(step)
        if graph is not None:
            self._traced = (graph, step, rate)
        return rate

    def _rate(self, step):
        step = ops.cast(step, "float32")
        warm = self.peak * step / max(self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0)
        cosine = self.final + 0.5 * (self.peak - self.final) * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps, "final": self.final}


def _current_graph():
    """The TensorFlow graph being traced, or None (eager execution, or another backend)."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()
