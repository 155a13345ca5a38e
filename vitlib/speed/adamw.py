"""Keras' AdamW with an update that TensorFlow traces faster: part of the speed layer (:mod:`vitlib.speed`)."""
import keras


@keras.saving.register_keras_serializable(package="vitlib")
class AdamW(keras.optimizers.AdamW):
    """Keras' ``AdamW``, only faster to start on TensorFlow: ``keras.optimizers.AdamW`` gives the same weights
    (tests compare them bit for bit, on the CPU, with and without XLA).

    Before its first step TensorFlow *traces* the training step: it runs the Python code once to record a graph of
    operations, then optimises that graph. For AdamW, Keras records every variable's update through
    ``tf.distribute`` and computes the learning-rate schedule anew for each variable's weight decay (once per
    variable, plus once for the update), a large share of a small ViT's start-up (benchmarks/RESULTS.md). Outside a
    ``tf.distribute`` strategy this class computes the rate and Adam's step size once per update and updates each
    variable directly, with the same operations in the same order. Keras' own code runs instead under a strategy,
    with AMSGrad, for sparse gradients (the Adam update), for a subclass that overrides ``update_step``, and on other
    backends (it overrides Keras' internal ``_apply_weight_decay`` and ``_backend_update_step``, which
    :func:`vitlib.speed.compatible` checks for). :func:`vitlib.speed.optimizer` makes one from Keras' AdamW on
    TensorFlow only (Keras swaps in a PyTorch-specific optimiser on PyTorch, which a subclass would not get); a saved
    one loads as Keras' class on PyTorch.
    """

    @classmethod
    def from_config(cls, config, custom_objects=None):
        if keras.backend.backend() == "torch":  # Keras' class, so that Keras picks its PyTorch optimiser
            return keras.optimizers.AdamW.from_config(config, custom_objects)
        return super().from_config(config, custom_objects)

    def _direct(self, grads=()):
        """True where this class's own update runs (see the class docstring), False where Keras' does."""
        if (keras.backend.backend() != "tensorflow" or self.amsgrad
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

