"""A training run from a recipe: the data, the ViT, Keras' ``fit`` with the recipe's optimiser, the best and last models
kept, resumable after an interruption, and one final test. What to train comes from :mod:`vitlib.training.recipes`,
how (precision, XLA, devices) from :mod:`vitlib.training.devices`, the optional teacher from
:mod:`vitlib.training.distill`; :func:`train` runs the steps below in order, each a function of its own.

    from vitlib.training import loop, recipes
    result = loop.train(recipes.recipe("digits"), out_dir="runs/digits")
"""
import contextlib
import dataclasses
import json
import time

import keras
import numpy as np

from vitlib import _checks, speed
from vitlib._notebook import in_notebook
from vitlib.data.datasets import load_dataset
from vitlib.data.pipeline import make_pipeline
from vitlib.inspection.analysis import LayoutTracker
from vitlib.model import build_vit
from vitlib.training import backup, multiworker, progress, resolution
from vitlib.training.devices import distribution_size, resolve_precision, resolve_strategy
from vitlib.training.distill import DistillationLoss, distillation_model, small_cnn, student_accuracy
from vitlib.training.fitting import (
    EVAL_BATCH,
    SaveBest,
    accuracy,
    compile_for_training,
    metrics_argument,
    read_history,
    recipe_augmentation,
    train_budget,
    training_batches,
    with_augmentation,
)
from vitlib.training.recipes import TrainConfig, generic_patch_size

RESULTS = ("history.csv", "best.keras", "last.keras", "metrics.json", "teacher.keras", "layout.npz")


def train(config, out_dir="runs/digits", verbose="auto", data=None):
    """Train, keep the best model by validation accuracy and the last one, evaluate one of them (``config.keep``)
    once on the test split. With ``config.train_on_validation`` the validation images are trained on as well
    (for the final run of a fixed recipe): no validation curves and no ``best.keras`` then.

    Writes ``out_dir/best.keras`` and ``last.keras`` (plain ViTs), ``history.csv``, ``metrics.json`` and, while running,
    ``backup/``: run the same call again after an interruption and it resumes after the last finished
    epoch. Returns the metrics dict (``test_accuracy``, ``train_seconds``, ``config``, ...) plus
    ``history``, the per-epoch losses and accuracies (plot them with ``vitlib.inspection.figures.history_figure``).
    ``data``: a :class:`vitlib.data.datasets.Dataset` instead of ``load_dataset(config.dataset)`` (a fold of
    ``benchmarks/digits_cv.py``). ``verbose``: as Keras' ``fit`` (0 silent, 1 a progress bar, 2 a line per epoch), or
    ``"line"``: one line updated per epoch (:class:`vitlib.training.progress.EpochLine`), which ``"auto"`` (the default)
    means in a notebook. ``config.speed`` turns the speed layer on for the run (:mod:`vitlib.speed`).
    """
    if isinstance(config, dict):
        config = TrainConfig(**config)
    _check_backend(config)
    with _checks.output_folder(out_dir) as out, speed.switched(config.speed):  # a refused run leaves no empty folder
        strategy = _strategy(config)  # first: a multi-worker strategy must start TensorFlow's runtime itself
        out = multiworker.folder(out) if multiworker.active(strategy) else out
        _forget_finished_run(out)
        keras.utils.set_random_seed(config.seed)
        with _dtype_policy(resolve_precision(config.mixed_precision)) as precision:
            data = _data(config, data)
            batches = Batches.for_run(config, data, strategy)
            with strategy.scope() if strategy is not None else contextlib.nullcontext():
                teacher = _teacher(config, data, batches, out / "teacher.keras") if config.distill else None
                vit, model = _models(config, data, batches, teacher and teacher[0])
                training_batches = batches.training()
                initial_epoch = _resume(model, out, strategy, training_batches)
            history, seconds = _fit(config, model, vit, batches, training_batches, initial_epoch, out, verbose, strategy)
            test_accuracy = _test(config, vit, data, batches, out)
    metrics = _metrics(config, data, vit, history, seconds, test_accuracy, teacher, precision, batches, out)
    backup.finish(out)  # the results are written: nothing left to resume
    return {**metrics, "history": read_history(out / "history.csv")}


def _check_backend(config):
    if config.strategy == "multiworker" and keras.backend.backend() != "tensorflow":
        raise ValueError(f"strategy='multiworker' is TensorFlow's (tf.distribute); on {keras.backend.backend()} use "
                         "strategy='auto' (JAX: set a keras.distribution, see the README).")


def _strategy(config):
    """The ``tf.distribute`` strategy of the run (TensorFlow), or None."""
    return resolve_strategy(config.strategy) if keras.backend.backend() == "tensorflow" else None


def _forget_finished_run(out):
    """Nothing to resume (no backup): a fresh run, so the results of an earlier finished one in ``out`` go."""
    if not (out / "backup").exists():
        for name in RESULTS:
            (out / name).unlink(missing_ok=True)


@contextlib.contextmanager
def _dtype_policy(precision):
    """Keras' global dtype policy set to ``precision`` for the block, then put back."""
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(precision)
    try:
        yield precision
    finally:
        keras.config.set_dtype_policy(previous)


def _data(config, data=None):
    """The run's data set: ``config.dataset`` (or ``data``) with the changes the config asks for."""
    data = data if data is not None else load_dataset(config.dataset, seed=config.seed, **config.dataset_options)
    if config.image_size is not None:  # a new resolution (Sec. 3.2): every split resized, as a user would
        data = data.resized(config.image_size)
    if config.train_on_validation:  # the recipe is fixed: its validation images become training images
        data = data.with_validation_in_training()
    if config.shuffle_labels:  # the control with nothing to learn: same images, labels that say nothing
        data = data.with_shuffled_labels(config.seed)
    return data


@dataclasses.dataclass
class Batches:
    """How a run's images are batched, on how many devices."""

    config: TrainConfig
    data: object
    steps_per_epoch: int
    drop_remainder: bool
    eval_batch: int
    replicas: int  # devices a training batch is split over
    shards: int    # devices of a JAX keras.distribution (1 without one)

    @classmethod
    def for_run(cls, config, data, strategy):
        # Training batches of one size (the left-over images change each epoch, as the data is reshuffled). Evaluation
        # in big batches on one device, with several in the training batch size (TensorFlow's MirroredStrategy fails
        # on some unevenly split big batches). Under a JAX keras.distribution the evaluation images are padded with
        # up to shards - 1 blank, zero-weight ones, so that every batch splits evenly (the accuracy counts the real
        # images; the loss is divided by the padded count).
        drop_remainder = len(data.y_train) >= config.batch_size
        shards = distribution_size()
        replicas = strategy.num_replicas_in_sync if strategy is not None else shards
        if config.batch_size % replicas:
            raise ValueError(f"batch_size={config.batch_size} does not split evenly over {replicas} devices: use a "
                             f"multiple of {replicas}.")
        return cls(config, data, len(data.y_train) // config.batch_size if drop_remainder else 1, drop_remainder,
                   max(config.batch_size, EVAL_BATCH) if replicas == 1 else config.batch_size, replicas, shards)

    def training(self):
        """The training split's ``tf.data`` pipeline: shuffled, moved and batched (:func:`fitting.training_batches`)."""
        return training_batches(self.data, self.config, self.config.seed, drop_remainder=self.drop_remainder)

    def evaluation(self, x, y):
        """An evaluation split's ``tf.data`` pipeline: batched, padded to split evenly over a JAX distribution's devices."""
        return make_pipeline(x, y, self.eval_batch, self.data.num_classes, pad_to=self.shards if self.shards > 1 else None)

    @property
    def one_device(self):
        """TensorFlow on one device, without a ``tf.distribute`` strategy."""
        return keras.backend.backend() == "tensorflow" and self.config.strategy in ("auto", "none") and self.replicas == 1

    def compile_options(self):
        """``compile_for_training``'s options for these devices: TensorFlow on one device runs up to 32 steps per call
        of its traced step (the same numbers, less overhead; callbacks and Ctrl-C act between calls). Not JAX, which
        unrolls them, nor PyTorch."""
        return dict(weighted=self.shards > 1, steps_per_execution=min(self.steps_per_epoch, 32) if self.one_device else 1)


def _teacher(config, data, batches, path):
    """The distillation teacher: loaded from ``path`` if an interrupted run saved it, else a :func:`small_cnn` trained
    with the same recipe (augmentation included) and saved there. Returns (teacher, seconds training it, test accuracy)."""
    if path.exists():
        teacher, seconds = keras.saving.load_model(path), 0.0
    else:
        teacher = small_cnn(data.image_shape, data.num_classes, name="teacher")
        seconds = train_budget(with_augmentation(teacher, config), data, config, config.seed,
                               drop_remainder=batches.drop_remainder)
        teacher.save(path)
    return teacher, seconds, accuracy(teacher, data.x_test, data.y_test)


def _initial_vit(config, data):
    """The ViT a run starts from: built from ``config.model``, or the saved one of ``config.init_from`` moved to the
    data's image size (position embeddings resized by ``config.pos_resize``; :mod:`vitlib.training.resolution`)."""
    keras.utils.set_random_seed(config.seed)  # the ViT starts the same with or without a teacher
    if config.init_from is None:
        options = {"image_size": data.image_shape[:2], "channels": data.image_shape[2], "num_classes": data.num_classes,
                   **config.model}
        if options.get("patch_size") == "auto":  # the generic recipe: a patch size that suits these images
            options["patch_size"] = generic_patch_size(data.image_shape[:2])
        return build_vit(**options)
    saved = resolution.load_vit(config.init_from)
    if (saved.config.channels, saved.config.num_classes) != (data.image_shape[2], data.num_classes):
        raise ValueError(f"{config.init_from} takes {saved.config.channels}-channel images and has "
                         f"{saved.config.num_classes} classes, but {data.name!r} has {data.image_shape[2]} and "
                         f"{data.num_classes}: fine-tune it on a data set like the one it was trained on.")
    return resolution.at_resolution(saved, data.image_shape[:2], config.pos_resize, config.seed)


def _models(config, data, batches, teacher=None):
    """``(vit, model)``: the ViT to keep and the compiled model that trains it (augmentation, and the teacher if any,
    around it). With the speed layer on, a run like the last one but for its seed reuses its compiled model."""
    vit = speed.accelerate(_initial_vit(config, data))
    options = batches.compile_options()
    if teacher is not None:
        model = distillation_model(vit, teacher, recipe_augmentation(config))
        loss = DistillationLoss(data.num_classes, config.distill, config.distill_temperature, config.label_smoothing)
        return vit, compile_for_training(model, config, batches.steps_per_epoch, loss=loss,
                                         metrics=[student_accuracy(data.num_classes)], **options)
    key = json.dumps([{**dataclasses.asdict(config), "seed": None}, vit.get_config(), data.image_shape,
                      data.num_classes, batches.steps_per_epoch, options], sort_keys=True, default=str)
    model, vit = speed.training_model(key, with_augmentation(vit, config, name="train_model"),
                                      lambda m: compile_for_training(m, config, batches.steps_per_epoch, **options), vit,
                                      reuse=batches.one_device)  # a strategy's models belong to its scope
    return vit, model


def _resume(model, out, strategy, training_batches):
    """The epoch to start at: after the last one the backup in ``out`` holds (0 for a fresh run), its weights and
    optimiser state loaded. Every worker of a multi-worker run checks that all of them hold the same epoch."""
    if multiworker.active(strategy):
        multiworker.prepare(model, training_batches.element_spec)
        multiworker.check_backups_agree(strategy, backup.epochs_done(out))
    return backup.restore(model, out / "backup", staged_files=[out / "best.keras"])


def _callbacks(config, vit, out, verbose):
    """``(callbacks, verbose)`` for ``fit``: the best model, NaN guard, layout snapshots, the history's rows and the
    backup last (an epoch counts as done only once its row and best model are written), and a live line in a
    notebook."""
    backup.trim_history(out)  # the rows of epochs that run again go
    best_so_far = max(read_history(out / "history.csv").get("val_accuracy", []), default=-np.inf)
    callbacks = [
        SaveBest(vit, out / "best.keras", best=best_so_far, staged=True),
        keras.callbacks.TerminateOnNaN(),
        *([LayoutTracker(vit, out / "layout.npz")] if config.track_layout else []),  # before the CSV row
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        backup.Backup(out / "backup", staged_files=[out / "best.keras"]),
    ]
    if verbose == "line" or (verbose == "auto" and in_notebook()):
        return [*callbacks, progress.EpochLine(out.name)], 0  # the run, by its folder
    return callbacks, verbose


def _fit(config, model, vit, batches, training_batches, initial_epoch, out, verbose, strategy):
    """Keras' ``fit`` from ``initial_epoch`` to ``config.epochs``; the last model saved. Returns (history, seconds)."""
    callbacks, verbose = _callbacks(config, vit, out, verbose)
    data = batches.data
    validation = batches.evaluation(data.x_val, data.y_val) if len(data.y_val) else None
    start = time.perf_counter()
    with multiworker.lost_worker_explained(strategy):
        history = model.fit(training_batches, validation_data=validation, epochs=config.epochs, callbacks=callbacks,
                            initial_epoch=initial_epoch, verbose=verbose, shuffle=False)  # the pipeline shuffles
    seconds = time.perf_counter() - start
    backup.replace_atomically(out / "last.keras", vit.save)
    return history, seconds


def _test(config, vit, data, batches, out):
    """The test accuracy of the kept model (``config.keep``), read back from its file."""
    tested = keras.saving.load_model(out / f"{config.keep}.keras")
    if batches.replicas == 1:  # called batch by batch: no traced step built for one evaluation
        return accuracy(tested, data.x_test, data.y_test)
    tested.compile(loss=keras.losses.CategoricalCrossentropy(from_logits=True),  # split over the devices, as in training
                   **metrics_argument(["accuracy"], weighted=batches.shards > 1))
    return tested.evaluate(batches.evaluation(data.x_test, data.y_test), verbose=0)[1]


def _metrics(config, data, vit, history, seconds, test_accuracy, teacher, precision, batches, out):
    """The run's ``metrics.json``, written and returned."""
    _, teacher_seconds, teacher_accuracy = teacher or (None, 0.0, None)
    metrics = {
        "test_accuracy": float(test_accuracy),
        "tested_model": f"{config.keep}.keras",
        "best_val_accuracy": max(read_history(out / "history.csv").get("val_accuracy", []), default=None),
        "train_images": len(data.y_train),
        "train_seconds": round(seconds, 2),
        "teacher_test_accuracy": teacher_accuracy,
        "teacher_seconds": round(teacher_seconds, 2),
        "epochs_this_run": [int(e) for e in history.epoch],
        "parameters": int(vit.count_params()),
        "precision": precision,
        "backend": keras.backend.backend(),
        "devices": batches.replicas,
        "dataset": repr(data),
        "config": dataclasses.asdict(config),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
