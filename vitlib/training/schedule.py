"""The training recipes' learning rate: a linear warm-up, then a cosine decay.

Its own small module, imported with ``vitlib``, so that a model saved with its optimiser (``model.save`` after
``training.loop.compile_for_training``) loads after a plain ``import vitlib``.
"""
import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vitlib")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak`` over ``warmup_steps``, then cosine decay to ``final`` at ``total_steps``.

    The same numbers as Keras' ``CosineDecay(0, total - warmup, alpha=final / peak, warmup_target=peak,
    warmup_steps=warmup)`` (tested to 2e-10), written out because that one traces into a much slower training step
    under JAX (benchmarks/RESULTS.md)."""

    def __init__(self, peak, total_steps, warmup_steps=0, final=0.0):
        self.peak, self.total_steps = float(peak), int(total_steps)
        self.warmup_steps, self.final = int(warmup_steps), float(final)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = self.peak * step / max(self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0)
        cosine = self.final + 0.5 * (self.peak - self.final) * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps, "final": self.final}
