"""vitlib.speed.seeding: seeding like keras.utils.set_random_seed without resetting TensorFlow's global seed."""
import numpy as np
import pytest

import vitlib
from vitlib.data import datasets
from vitlib.training import fitting

pytestmark = pytest.mark.speed

TINY = dict(image_size=8, channels=1, num_classes=10, patch_size=2, hidden_size=16, depth=1, num_heads=2, mlp_dim=16)


def tiny_vit(**kw):
    return vitlib.build_vit(None, **{**TINY, **kw})


def test_set_seed_seeds_like_keras_but_holds_tensorflows_global_seed():
    import keras
    import tensorflow as tf

    from vitlib.speed.seeding import TF_GLOBAL_SEED, set_seed

    keras.utils.set_random_seed(5)
    expected_weights, expected_draw = tiny_vit().get_weights(), np.random.rand()
    tf.random.set_seed(123)  # someone else's seed: set_seed puts TensorFlow's back to its fixed value
    set_seed(5)
    weights, draw = tiny_vit().get_weights(), np.random.rand()
    for a, b in zip(expected_weights, weights):
        np.testing.assert_array_equal(a, b)  # the same initial weights as keras.utils.set_random_seed(5) gives
    assert draw == expected_draw and tf.compat.v1.random.get_seed(0)[0] == TF_GLOBAL_SEED
    set_seed(6)
    assert not np.array_equal(tiny_vit().get_weights()[0], weights[0])
    d = datasets.load_dataset("digits")
    config, _ = fitting.step_budget(10)
    first = lambda s: next(iter(fitting.training_batches(d, config, s, repeat=True)))[1].numpy().argmax(-1)  # noqa: E731
    set_seed(0)
    a = first(0)
    set_seed(1)
    assert not np.array_equal(a, first(1))  # each seed its own shuffle
    set_seed(0)
    np.testing.assert_array_equal(a, first(0))  # and the same again
    with pytest.raises(ValueError, match=r"seed must be an int, got 1.5"):
        set_seed(1.5)
