"""The optimiser of the training recipes: AdamW, with a learning rate that warms up linearly, then decays as a cosine.

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

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = self.peak * step / max(self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0)
        cosine = self.final + 0.5 * (self.peak - self.final) * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps, "final": self.final}


_TESTED_KERAS = ("3.15.",)  # Keras versions whose AdamW internals AdamW below was checked against, bit for bit


@keras.saving.register_keras_serializable(package="vitlib")
class AdamW(keras.optimizers.AdamW):
    """Keras' ``AdamW``, only faster to start on TensorFlow: ``keras.optimizers.AdamW`` gives the same weights
    (tests compare them bit for bit, on the CPU, with and without XLA).

    Before its first step TensorFlow *traces* the training step: it runs the Python code once to record a graph of
    operations, then optimises that graph. For AdamW, Keras records every variable's update through
    ``tf.distribute`` and computes the learning-rate schedule anew for each variable's weight decay (56 times for a
    small ViT's 56 variables, plus once for the update): recording and optimising the update took about 4.5 s of a
    small ViT's ~10 s start-up on 2 CPU cores. Outside a ``tf.distribute`` strategy this class computes the rate and
    Adam's step size once per update and updates each variable directly, with the same operations in the same
    order: under 2 s. Keras' own code runs instead under a strategy, with AMSGrad, for sparse gradients (the Adam
    update), for a subclass that overrides ``update_step``, on JAX, and with a Keras version other than those of
    ``_TESTED_KERAS`` (it overrides Keras' internal ``_apply_weight_decay`` and ``_backend_update_step``). Build
    it with :func:`adamw`, which gives Keras' own class on PyTorch (Keras swaps in a PyTorch-specific optimiser
    there, which a subclass would not get); a saved one loads as Keras' class there too.
    """

    @classmethod
    def from_config(cls, config, custom_objects=None):
        if keras.backend.backend() == "torch":  # Keras' class, so that Keras picks its PyTorch optimiser
            return keras.optimizers.AdamW.from_config(config, custom_objects)
        return super().from_config(config, custom_objects)

    def _direct(self, grads=()):
        """True where this class's own update runs (see the class docstring), False where Keras' does."""
        if (keras.backend.backend() != "tensorflow" or self.amsgrad or not keras.version().startswith(_TESTED_KERAS)
                or type(self).update_step is not keras.optimizers.AdamW.update_step):
            return False
        import tensorflow as tf

        return (not tf.distribute.has_strategy() and self._distribution_strategy is tf.distribute.get_strategy()
                and not any(isinstance(g, tf.IndexedSlices) for g in grads))

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None or not self._direct():
            return super()._apply_weight_decay(variables)
        import tensorflow as tf

        factors = {}  # dtype -> (weight decay, learning rate), computed once: Keras computes the same rate per variable
        for variable in map(_tf_variable, variables):
            if self._use_weight_decay(variable):  # asked of the tf.Variable, as Keras does (its name decides exclusions)
                if variable.dtype not in factors:
                    factors[variable.dtype] = tf.cast(self.weight_decay, variable.dtype), tf.cast(self.learning_rate,
                                                                                                  variable.dtype)
                decay, rate = factors[variable.dtype]
                variable.assign_sub(variable * decay * rate)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if not self._direct(grads):
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        import tensorflow as tf

        constants = {}  # dtype -> Adam's step size lr * sqrt(1 - beta_2^t) / (1 - beta_1^t), 1 - beta_1, 1 - beta_2, epsilon
        for gradient, variable in zip(grads, trainable_variables):
            index, variable = self._get_variable_index(variable), _tf_variable(variable)
            dtype = variable.dtype
            if dtype not in constants:
                step = tf.cast(self.iterations + 1, dtype)
                beta_1_power, beta_2_power = tf.pow(tf.cast(self.beta_1, dtype), step), tf.pow(tf.cast(self.beta_2, dtype), step)
                constants[dtype] = (tf.cast(learning_rate, dtype) * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power),
                                    tf.constant(1 - self.beta_1, dtype), tf.constant(1 - self.beta_2, dtype),
                                    tf.constant(self.epsilon, dtype))
            alpha, one_minus_beta_1, one_minus_beta_2, epsilon = constants[dtype]
            gradient = tf.cast(gradient, dtype)
            m, v = _tf_variable(self._momentums[index]), _tf_variable(self._velocities[index])
            m.assign_add((gradient - m) * one_minus_beta_1)  # Keras' Adam.update_step, operation for operation
            v.assign_add((tf.square(gradient) - v) * one_minus_beta_2)
            variable.assign_sub((m * alpha) / (tf.sqrt(v) + epsilon))


def _tf_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


def adamw(learning_rate, **options):
    """The recipes' optimiser: :class:`AdamW` on TensorFlow (the same numbers, traced faster), Keras' ``AdamW``
    on JAX and PyTorch. ``options``: Keras' (``weight_decay``, ``global_clipnorm``, ...)."""
    return (AdamW if keras.backend.backend() == "tensorflow" else keras.optimizers.AdamW)(learning_rate, **options)
