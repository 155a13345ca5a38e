"""Seeding many short runs in one process without rebuilding TensorFlow's traced steps: part of the speed layer.

``keras.utils.set_random_seed(s)`` also calls ``tf.random.set_seed(s)``, and TensorFlow clears its kernel caches
whenever its global seed is set: every traced training step is then instantiated again on its next call, which costs
a short run more than its training (benchmarks/RESULTS.md). :func:`set_seed` seeds everything else with the run's seed
and holds TensorFlow's global seed at one fixed value. The runs still differ by seed where it matters: ``tf.data``
shuffles and random streams take the run's seed as their operation seed, and Keras' initialisers and layers draw from
the Keras seed. (With TensorFlow's global seed at 0, seed 0 gives the numbers of ``keras.utils.set_random_seed(0)``.)
"""
import random

import numpy as np

TF_GLOBAL_SEED = 0


def set_seed(seed):
    """``keras.utils.set_random_seed(seed)`` except that TensorFlow's global seed is set to ``TF_GLOBAL_SEED`` (only
    when it has another value, so at most once between other code's seeding)."""
    import keras
    from keras.src.backend.common import global_state  # Keras' own seed state, as set_random_seed sets it
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}.")
    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    try:
        import tensorflow as tf
    except ImportError:  # JAX or PyTorch without TensorFlow: no tf.data either
        tf = None
    if tf is not None and tf.compat.v1.random.get_seed(0)[0] != TF_GLOBAL_SEED:
        tf.random.set_seed(TF_GLOBAL_SEED)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)
