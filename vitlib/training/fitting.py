"""Fitting one Keras model the recipes' way: their optimiser, loss and in-model augmentation, for a budget of epochs or
steps, the best model kept, accuracy measured, the history read back. :func:`train_budget` is how every short run
trains (the experiments, FlexiViT's budget, the masked autoencoder, the benchmarks' CNN, the loop's teacher);
:mod:`vitlib.training.loop` wraps the same optimiser (:func:`compile_for_training`) and pipeline
(:func:`training_batches`) in a resumable run with checkpoints and validation.

    config, steps_per_epoch = fitting.step_budget(300)         # the digits recipe's optimiser, 300 steps of 64 images
    seconds = fitting.train_budget(model, data, config, seed=0, steps_per_epoch=steps_per_epoch)
    fitting.accuracy(model, data.x_test, data.y_test)
"""
import csv
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from vitlib import _checks, speed
from vitlib.data.pipeline import augmentation, make_pipeline
from vitlib.training import backup
from vitlib.training.devices import resolve_jit
from vitlib.training.recipes import recipe
from vitlib.training.schedule import WarmupCosine

EVAL_BATCH = 512  # images per evaluation batch: the whole validation and test splits of digits in one
CHUNKS = 10  # a budget in steps is logged and scheduled in this many "epochs" (warm-up: the first)


def step_budget(steps=300, batch_size=64, recipe_name="digits", **recipe_overrides):
    """A budget in optimiser steps, the same whatever the number of training images (a small data set is seen more
    often): ``(config, steps_per_epoch)``, the recipe's optimiser for ``steps`` steps of ``batch_size`` images in
    ``CHUNKS`` "epochs" of ``steps / CHUNKS`` (for the schedule, one of them warm-up, and the log; the images repeat
    freely). ``recipe_overrides`` change the recipe (e.g. ``learning_rate=1e-3``)."""
    _checks.positive_int("steps", steps)
    if steps % CHUNKS:
        raise ValueError(f"steps must be a multiple of {CHUNKS} ({CHUNKS} chunks of steps / {CHUNKS}), got {steps}.")
    return recipe(recipe_name, epochs=CHUNKS, warmup_epochs=1, batch_size=batch_size, train_on_validation=False,
                  keep="last", **recipe_overrides), steps // CHUNKS


def compile_for_training(model, config, steps_per_epoch, loss=None, metrics=None, steps_per_execution=1, weighted=False,
                         own_loss=False):
    """Compile any Keras classifier (logits out, one-hot labels in) with the recipe's optimiser and loss:
    AdamW, warm-up + cosine schedule, global gradient-norm clipping, cross-entropy with label smoothing
    (or ``loss``, such as a :class:`~vitlib.training.distill.DistillationLoss`), accuracy (or ``metrics``).
    ``steps_per_execution``: steps run per call of the traced step (Keras' option; the same numbers, less overhead per
    step for small models). ``weighted=True``: the metrics use the data's sample weights (``weighted_metrics``), as
    padded evaluation batches need. ``own_loss=True``: a model that computes its own loss (``compute_loss``, such as a
    masked autoencoder): the optimiser alone. The optimiser follows the config's ``speed`` setting (:mod:`vitlib.speed`)."""
    schedule = WarmupCosine(config.learning_rate, config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, global_clipnorm=config.clip_norm)
    if own_loss:
        options = {}
    else:
        options = {"loss": loss or keras.losses.CategoricalCrossentropy(from_logits=True,
                                                                         label_smoothing=config.label_smoothing),
                   **metrics_argument(metrics or [keras.metrics.CategoricalAccuracy(name="accuracy")], weighted)}
    with speed.switched(config.speed):  # the recipe's setting: with it on, the same AdamW traced faster
        model.compile(optimizer=speed.optimizer(optimizer), **options, jit_compile=resolve_jit(config.jit_compile),
                      steps_per_execution=steps_per_execution)
        speed.build_optimizer(model)
    return model


def training_batches(data, config, seed, repeat=False, drop_remainder=True):
    """The one training pipeline: the training images of ``data`` (a :class:`~vitlib.data.datasets.Dataset`, or an
    array of images alone, for a model without labels) shuffled with ``seed``, the data set's ``train_map`` applied
    anew on every pass, in batches of ``config.batch_size`` with one-hot labels (for label smoothing). ``repeat``: the
    images repeat endlessly (a budget in steps); ``drop_remainder``: no smaller last batch."""
    if not hasattr(data, "x_train"):  # images alone: batched as a Dataset's would be, without their labels
        images = np.asarray(data, "float32")
        return make_pipeline(images, np.zeros(len(images), "int32"), config.batch_size, shuffle=True, seed=seed,
                             drop_remainder=drop_remainder, repeat=repeat).map(lambda x, _: x)
    return make_pipeline(data.x_train, data.y_train, config.batch_size, data.num_classes, shuffle=True, seed=seed,
                         drop_remainder=drop_remainder, map_fn=data.train_map, repeat=repeat)


def train_budget(model, data, config, seed, steps_per_epoch=None, callbacks=(), verbose=0, drop_remainder=True,
                 compiled=False, **compile_options):
    """Train ``model`` the recipe's way for a fixed budget: the one way every short run of vitlib trains.

    ``model`` is compiled with ``config``'s optimiser, schedule and loss (:func:`compile_for_training` with
    ``compile_options``; ``compiled=True``: it was, for this budget) and fitted on ``data``'s training images
    (:func:`training_batches`, shuffled with ``seed``) for ``config.epochs`` epochs: of ``steps_per_epoch`` steps each,
    the images repeating freely (a budget in steps, :func:`step_budget`), or, with ``steps_per_epoch=None``, of one
    pass over the images each (the last smaller batch dropped unless ``drop_remainder=False``). Random draws follow
    the caller's seeding: seed, then build, then this. Returns the seconds that ``fit`` took."""
    repeat = steps_per_epoch is not None
    if not compiled:
        images = len(data.y_train) if hasattr(data, "y_train") else len(data)
        per_epoch = steps_per_epoch or (images // config.batch_size if drop_remainder else -(-images // config.batch_size))
        compile_for_training(model, config, per_epoch, **compile_options)
    batches = training_batches(data, config, seed, repeat=repeat, drop_remainder=drop_remainder)
    start = time.perf_counter()
    model.fit(batches, epochs=config.epochs, steps_per_epoch=steps_per_epoch, verbose=verbose, shuffle=False,
              callbacks=list(callbacks))  # the pipeline shuffles
    return time.perf_counter() - start


def metrics_argument(metrics, weighted):
    """``weighted_metrics`` where the data carries sample weights (padded evaluation batches' blanks), else ``metrics``."""
    return {"weighted_metrics" if weighted else "metrics": metrics}


def recipe_augmentation(config):
    """The in-model augmentation layers a :class:`~vitlib.training.recipes.TrainConfig` asks for."""
    return augmentation(config.augment, config.flip, config.translate, config.seed)


def with_augmentation(model, config, name=None):
    """A training model: images -> the recipe's in-model augmentation -> ``model``. Keep ``model`` itself."""
    images = keras.Input(model.input_shape[1:], name="images")
    return keras.Model(images, model(recipe_augmentation(config)(images)), name=name)


class SaveBest(keras.callbacks.Callback):
    """Save ``model`` (the bare ViT, without the augmentation wrapper) whenever ``monitor`` improves. ``staged``:
    to :func:`~vitlib.training.backup.staged`'s path, for a :class:`~vitlib.training.backup.Backup` to move into
    place with its epoch."""

    def __init__(self, model, path, monitor="val_accuracy", best=-np.inf, staged=False):
        super().__init__()
        self.vit, self.path, self.monitor, self.best, self.staged = model, Path(path), monitor, best, staged

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value >= self.best:  # a tie goes to the later, longer-trained epoch
            self.best = float(value)
            target = backup.staged(self.path, epoch + 1) if self.staged else self.path
            backup.replace_atomically(target, self.vit.save)  # killed while saving: the last best stays


def accuracy(model, x, y, forward=None):
    """Accuracy on (x, y), the model called directly in batches (no traced predict step to build for one evaluation).
    ``forward``: a function of a batch to call instead of ``model(batch, training=False)``."""
    if len(y) == 0:
        return None
    forward = forward or (lambda batch: model(batch, training=False))
    logits = np.concatenate([ops.convert_to_numpy(forward(x[i:i + EVAL_BATCH])) for i in range(0, len(x), EVAL_BATCH)])
    return float(np.mean(np.argmax(logits, -1) == y))


def read_history(path):
    """A ``CSVLogger`` file such as ``history.csv`` as a dict of lists, ``{"loss": [...], ...}``; ``{}``
    when there is no file yet. Columns with no values are left out (``CSVLogger`` writes ``val_*`` columns of
    "NA" when there is no validation split)."""
    if not Path(path).exists():
        return {}
    rows = list(csv.DictReader(Path(path).read_text().splitlines()))
    columns = {key: [float(row[key]) for row in rows if row.get(key) not in (None, "", "NA")]
               for key in (rows[0] if rows else {})}
    return {key: values for key, values in columns.items() if values}
