"""Small controlled experiments (notebook 08): several models, trained on fractions of a data set over seeds, with
one budget rule for all, collected in a tidy table (one dict per run).

The budget rule: every run takes the same number of optimiser steps of the same batch size, whatever the model
and however many training images it has (a small fraction is seen many more times). The optimiser is the
recipe's: AdamW, warm-up + cosine, label smoothing, gradient clipping (:func:`vitlib.training.fitting.step_budget`,
trained by :func:`vitlib.training.fitting.train_budget`).

    rows = run_grid({"ViT": lambda seed: vitlib.build_vit(...), "CNN": lambda seed: small_cnn(...)}, data,
                    fractions=(0.1, 1.0), seeds=(0, 1, 2), steps=300)
    summarise(rows, "test_accuracy", by=("model", "fraction"))

:func:`train_run` is one run written out in plain Keras; :func:`run_grid` gives the same numbers (a test checks it)
for many. Both run steps / 10 steps per call of the traced step (Keras' ``steps_per_execution``, not on PyTorch: the
same numbers, less time a run for these small models). ``run_grid`` turns the speed layer on, as the recipe does
(:mod:`vitlib.speed`): on TensorFlow it then compiles each architecture once and re-initialises it for every run,
and seeds without retracing.
"""
import dataclasses
import json

import keras
import numpy as np

from vitlib import speed
from vitlib.training.fitting import (
    accuracy,
    compile_for_training,
    step_budget,
    train_budget,
    with_augmentation,
)
from vitlib.training.progress import Runs
from vitlib.training.recipes import recipe


def fraction_of(data, fraction, seed=0):
    """The data set with only ``fraction`` of its training images, the same share of every class (at least one
    image each); validation and test splits unchanged. Smaller fractions are subsets of larger ones (same seed)."""
    _check_fraction(fraction)
    rng = np.random.default_rng(seed)
    per_class = [np.flatnonzero(data.y_train == c) for c in np.unique(data.y_train)]
    keep = np.concatenate([rng.permutation(idx)[: max(1, round(fraction * len(idx)))] for idx in per_class])
    keep.sort()
    return dataclasses.replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep])


def _check_fraction(fraction):
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}.")


def _per_call(steps_per_epoch):
    """Steps per call of the traced step: a whole "epoch" of the budget, except on PyTorch (Keras allows only 1)."""
    return 1 if keras.backend.backend() == "torch" else steps_per_epoch


def _compile_run(model, config, steps_per_epoch):
    """``model`` compiled with the recipe's optimiser and loss for a run of this budget."""
    return compile_for_training(model, config, steps_per_epoch, steps_per_execution=_per_call(steps_per_epoch))


def train_run(build, data, seed=0, steps=300, batch_size=64, verbose=0, **recipe_overrides):
    """One run, written out: seed, build the model, train it ``steps`` steps with the recipe's optimiser, test.
    ``build(seed)`` returns an uncompiled Keras classifier (logits) for ``data``'s images, drawing its initial
    weights from Keras' global random state (seeded just before). ``recipe_overrides`` change the optimiser (e.g.
    ``learning_rate=1e-3``). Returns its row and the trained model."""
    config, steps_per_epoch = step_budget(steps, batch_size, **recipe_overrides)
    keras.utils.set_random_seed(seed)
    model = build(seed)
    seconds = train_budget(model, data, config, seed, steps_per_epoch, verbose=verbose,
                           steps_per_execution=_per_call(steps_per_epoch))
    return run_row(model, data, seed, seconds), model


def run_row(model, data, seed, seconds, forward=None):
    """A run's row of the tidy table: its seed, training images, parameters, validation and test accuracy
    (:func:`~vitlib.training.fitting.accuracy`; ``forward``: a traced forward pass to use) and training seconds."""
    return {"seed": seed, "train_images": len(data.y_train), "parameters": int(model.count_params()),
            "val_accuracy": accuracy(model, data.x_val, data.y_val, forward),
            "test_accuracy": accuracy(model, data.x_test, data.y_test, forward), "seconds": round(seconds, 2)}


def run_grid(builders, data, fractions=(1.0,), seeds=(0, 1, 2), steps=300, batch_size=64, progress=True,
             keep_models=False, **recipe_overrides):
    """Train every model of ``builders`` (name -> ``build(seed)``, as for :func:`train_run`) on every fraction of
    ``data``'s training images (:func:`fraction_of`, drawn with the run's seed) with every seed, under the same
    budget. Returns a list of rows: ``model``, ``fraction``, ``seed``, ``train_images``, ``parameters``,
    ``val_accuracy``, ``test_accuracy``, ``seconds`` (training only). ``progress``: True prints one line per model
    when its runs are done, False nothing, a function ``progress(done, total, row)`` is called after each run.
    ``recipe_overrides`` change the optimiser for every run (e.g. ``learning_rate=1e-3``). ``keep_models=True``
    adds ``trained``, the trained model, to every row.

    Every run starts from the weights ``build(seed)`` gives under its seed and a fresh optimiser state, so the result
    equals :func:`train_run`'s (a test checks it). The speed layer is on as the recipe says (:mod:`vitlib.speed`).
    """
    if not builders:
        raise ValueError("builders is empty: give at least one name -> build() pair.")
    for fraction in fractions:  # before any training
        _check_fraction(fraction)
    config, steps_per_epoch = step_budget(steps, batch_size, **recipe_overrides)
    runs = Runs(progress, len(builders) * len(fractions) * len(seeds))
    with speed.switched(config.speed):
        for name, build in builders.items():
            for seed in seeds:
                for row in _seed_runs(name, build, data, fractions, seed, config, steps_per_epoch, keep_models,
                                      json.dumps(recipe_overrides, sort_keys=True, default=str)):
                    runs.add(row)
            runs.done(name)
    return runs.rows


def _seed_runs(name, build, data, fractions, seed, config, steps_per_epoch, keep_models, overrides):
    """The rows of one model and seed over every fraction, each run from ``build(seed)``'s weights."""
    speed.set_seed(seed)
    fresh = speed.accelerate(build(seed))  # this seed's initial weights
    start_weights = fresh.get_weights()
    key = json.dumps([_architecture(fresh), config.epochs * steps_per_epoch, config.batch_size, overrides])
    for k, fraction in enumerate(fractions):
        # With the speed layer on: one compiled model per architecture and budget (fresh itself, unless it is kept).
        model, forward = speed.shared_model(key, lambda: _compile_run(
            speed.accelerate(build(seed)) if keep_models else fresh, config, steps_per_epoch))
        if model is None:
            model = _compile_run(build(seed), config, steps_per_epoch)
        model.set_weights(start_weights)
        part = fraction_of(data, fraction, seed)
        speed.set_seed(seed)
        seconds = train_budget(model, part, config, seed, steps_per_epoch, compiled=True)
        row = {"model": name, "fraction": fraction, **run_row(model, part, seed, seconds, forward)}
        if keep_models:  # a model of its own with the trained weights (the compiled one trains on)
            row["trained"] = fresh if k == 0 else build(seed)
            row["trained"].set_weights(model.get_weights())
        yield row


def _architecture(model):
    """A key equal for models that differ only in their weights: the class and the configuration."""
    return type(model).__name__, json.dumps(model.get_config(), sort_keys=True, default=str)


def summarise(rows, value="test_accuracy", by=("model", "fraction")):
    """Mean, standard deviation (over the rows of a group, ddof=1), minimum, maximum and count of ``value`` per
    group of the ``by`` keys, in order of first appearance: a list of dicts."""
    groups = {}
    for row in rows:
        if value not in row or any(k not in row for k in by):
            raise ValueError(f"rows need the keys {list(by)} and {value!r}; a row has {sorted(row)}.")
        groups.setdefault(tuple(row[k] for k in by), []).append(row[value])
    out = []
    for key, values in groups.items():
        v = np.asarray(values, float)
        out.append({**dict(zip(by, key)), "mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                    "min": float(v.min()), "max": float(v.max()), "n": len(v)})
    return out


class EpochScores(keras.callbacks.Callback):
    """After every epoch: the accuracy of ``model`` (the bare classifier) on validation and test images, in
    ``self.val`` and ``self.test``. The test curve is only read at an epoch chosen by the validation curve."""

    def __init__(self, model, data):
        super().__init__()
        self.classifier, self.data, self.val, self.test = model, data, [], []

    def on_epoch_end(self, epoch, logs=None):
        self.val.append(accuracy(self.classifier, self.data.x_val, self.data.y_val))
        self.test.append(accuracy(self.classifier, self.data.x_test, self.data.y_test))


def epoch_run(build, data, seed=0, epochs=20, recipe_name="mnist_5k", **recipe_overrides):
    """One run of ``epochs`` passes over ``data``'s training images (however many there are), with a recipe's
    optimiser, schedule, loss and augmentation (``recipe_overrides`` change them, e.g. ``learning_rate=1e-3``).
    ``build(seed)`` returns an uncompiled Keras classifier (logits), its initial weights drawn after seeding.

    Returns ``(row, model)``; the row holds the validation and test accuracy after every epoch and two readings of
    them: ``last_test``, the test accuracy after the last epoch (equal epochs: every image seen ``epochs`` times), and
    ``early_test``, the test accuracy at the epoch of best validation accuracy (early stopping on validation; ties go
    to the later epoch). The test curve is never used to choose anything."""
    recipe_overrides.setdefault("warmup_epochs", min(3, epochs - 1))
    config = recipe(recipe_name, epochs=epochs, keep="last", train_on_validation=False, **recipe_overrides)
    with speed.switched(config.speed):
        keras.utils.set_random_seed(seed)
        model = build(seed)
        scores = EpochScores(model, data)
        seconds = train_budget(with_augmentation(model, config), data, config, seed, callbacks=[scores],
                               drop_remainder=False)  # every image, every epoch
    best = len(scores.val) - 1 - int(np.argmax(scores.val[::-1]))  # the last epoch of highest validation accuracy
    row = {"seed": seed, "train_images": len(data.y_train), "epochs": epochs, "val_curve": scores.val,
           "test_curve": scores.test, "best_epoch": best + 1, "last_test": scores.test[-1],
           "early_test": scores.test[best], "seconds": round(seconds, 2)}
    return row, model
