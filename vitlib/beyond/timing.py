"""Measured speed: images per second of a model's forward pass, several models measured in turns."""
import time

import numpy as np


def throughput(models, images, rounds=5, batch_size=None):
    """Images per second of each model's forward pass on ``images``: ``{name: images/s}`` for ``models``
    (``{name: keras.Model}``). Keras' ``predict`` runs each model once first (tracing it), then every round times
    each model once, the models taking turns, so that a slow spell of a shared machine hits them all alike; the
    fastest round counts (the least disturbed). ``batch_size``: images per call (default: all at once)."""
    images = np.asarray(images)
    batch_size = batch_size or len(images)
    for model in models.values():
        model.predict(images[:batch_size], batch_size=batch_size, verbose=0)
    best = {name: np.inf for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.predict(images, batch_size=batch_size, verbose=0)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: len(images) / seconds for name, seconds in best.items()}
