"""vitlib.beyond.timing: each model is traced once on one batch, then timed once per round, the models taking turns,
and its fastest round gives its images per second."""
import time

import numpy as np
import pytest

from vitlib.beyond import timing

pytestmark = pytest.mark.backend_independent


class Sleeper:
    """A stand-in model whose predict takes ``delay`` seconds and writes down each call."""

    def __init__(self, name, delay, log):
        self.name, self.delay, self.log = name, delay, log

    def predict(self, images, batch_size, verbose):
        self.log.append((self.name, len(images), batch_size))
        time.sleep(self.delay)


def test_throughput_traces_once_then_times_the_models_in_turns():
    log = []
    images = np.zeros((10, 4, 4, 1), "float32")
    speeds = timing.throughput({"slow": Sleeper("slow", 0.05, log), "fast": Sleeper("fast", 0.005, log)}, images,
                               rounds=3, batch_size=5)
    assert log[:2] == [("slow", 5, 5), ("fast", 5, 5)]  # one batch each first: the trace, not timed
    assert log[2:] == [("slow", 10, 5), ("fast", 10, 5)] * 3  # then every round times each model once, in turns
    assert set(speeds) == {"slow", "fast"}
    assert speeds["slow"] <= 10 / 0.05  # no round is faster than the model's own delay
    assert speeds["fast"] > 3 * speeds["slow"]


def test_throughput_of_a_real_model_is_a_positive_rate():
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    speeds = timing.throughput({"dense": model}, np.ones((8, 4), "float32"), rounds=2)
    assert list(speeds) == ["dense"] and np.isfinite(speeds["dense"]) and speeds["dense"] > 0
