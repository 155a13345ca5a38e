"""Fitting one Keras model the recipes' way: their optimiser, loss and in-model augmentation, the best model kept,
accuracy measured, the history read back. :mod:`vitlib.training.loop` runs a whole recipe with these;
:mod:`vitlib.training.experiments` and the notebooks use them on their own models.
"""
import csv
from pathlib import Path

import keras
import numpy as np
from keras import ops

from vitlib import speed
from vitlib.data.pipeline import augmentation
from vitlib.training import backup
from vitlib.training.devices import resolve_jit
from vitlib.training.schedule import WarmupCosine

EVAL_BATCH = 512  # images per evaluation batch: the whole validation and test splits of digits in one


def compile_for_training(model, config, steps_per_epoch, loss=None, metrics=None, steps_per_execution=1, weighted=False):
    """Compile any Keras classifier (logits out, one-hot labels in) with the recipe's optimiser and loss:
    AdamW, warm-up + cosine schedule, global gradient-norm clipping, cross-entropy with label smoothing
    (or ``loss``, such as a :class:`~vitlib.training.distill.DistillationLoss`), accuracy (or ``metrics``).
    ``steps_per_execution``: steps run per call of the traced step (Keras' option; the same numbers, less overhead per
    step for small models). ``weighted=True``: the metrics use the data's sample weights (``weighted_metrics``), as
    padded evaluation batches need. The optimiser follows the config's ``speed`` setting (:mod:`vitlib.speed`)."""
    schedule = WarmupCosine(config.learning_rate, config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, global_clipnorm=config.clip_norm)
    with speed.switched(config.speed):  # the recipe's setting: with it on, the same AdamW traced faster
        model.compile(
            optimizer=speed.optimizer(optimizer),
            loss=loss or keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
            **metrics_argument(metrics or [keras.metrics.CategoricalAccuracy(name="accuracy")], weighted),
            jit_compile=resolve_jit(config.jit_compile),
            steps_per_execution=steps_per_execution,
        )
        speed.build_optimizer(model)
    return model


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
