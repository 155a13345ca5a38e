"""The training loop: AdamW with linear warm-up and cosine decay, label smoothing, gradient clipping, resumable
runs, and the final test. What to train comes from :mod:`vitlib.recipes`, how (precision, XLA, devices) from
:mod:`vitlib.devices`, the optional teacher from :mod:`vitlib.distill`.

    result = vitlib.training.train(vitlib.training.recipe("digits"), out_dir="runs/digits")
"""
import contextlib
import csv
import dataclasses
import json
import time
from pathlib import Path

import keras
import numpy as np

from vitlib import _checks, _compiled, backup, multiworker, progress
from vitlib.analysis import LayoutTracker
from vitlib.data import DatasetUnavailableError, augmentation, load_dataset, make_pipeline  # noqa: F401  (re-exported)
from vitlib.devices import distribution_size, gpu_available, resolve_jit, resolve_precision, resolve_strategy  # noqa: F401
from vitlib.distill import DistillationLoss, distillation_model, small_cnn, student_accuracy  # noqa: F401  (re-exported)
from vitlib.experiments import accuracy
from vitlib.model import build_vit
from vitlib.pipeline import recipe_augmentation, with_augmentation
from vitlib.recipes import RECIPES, TrainConfig, recipe  # noqa: F401  (re-exported: training.recipe("digits"), ...)
from vitlib.schedule import WarmupCosine, adamw  # noqa: F401  (WarmupCosine re-exported)

EVAL_BATCH = 512  # images per evaluation batch: the whole validation and test splits of digits in one


class SaveBest(keras.callbacks.Callback):
    """Save ``model`` (the bare ViT, without the augmentation wrapper) whenever ``monitor`` improves. ``staged``:
    to :func:`vitlib.backup.staged`'s path, for a :class:`vitlib.backup.Backup` to move into place with its epoch."""

    def __init__(self, model, path, monitor="val_accuracy", best=-np.inf, staged=False):
        super().__init__()
        self.vit, self.path, self.monitor, self.best, self.staged = model, Path(path), monitor, best, staged

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value >= self.best:  # a tie goes to the later, longer-trained epoch
            self.best = float(value)
            target = backup.staged(self.path, epoch + 1) if self.staged else self.path
            backup.replace_atomically(target, self.vit.save)  # killed while saving: the last best stays


def compile_for_training(model, config, steps_per_epoch, loss=None, metrics=None, steps_per_execution=1, weighted=False):
    """Compile any Keras classifier (logits out, one-hot labels in) with the recipe's optimiser and loss:
    AdamW, warm-up + cosine schedule, global gradient-norm clipping, cross-entropy with label smoothing
    (or ``loss``, such as a :class:`DistillationLoss`), accuracy (or ``metrics``). ``steps_per_execution``: steps
    run per call of the traced step (Keras' option; the same numbers, less overhead per step for small models).
    ``weighted=True``: the metrics use the data's sample weights (``weighted_metrics``), as padded evaluation batches need."""
    schedule = WarmupCosine(config.learning_rate, config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch)
    model.compile(
        optimizer=adamw(schedule, weight_decay=config.weight_decay, global_clipnorm=config.clip_norm),
        loss=loss or keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
        **_metrics_argument(metrics or [keras.metrics.CategoricalAccuracy(name="accuracy")], weighted),
        jit_compile=resolve_jit(config.jit_compile),
        steps_per_execution=steps_per_execution,
    )
    # The optimiser's slots now: created while TensorFlow traces the first step (with a metric given by name), they
    # make it trace the whole step a second time, which doubled a digits run's start-up (9 s, not 4.5 s, on 2 cores).
    model.optimizer.build(model.trainable_variables)
    return model


def _metrics_argument(metrics, weighted):
    """``weighted_metrics`` where the data carries sample weights (padded evaluation batches' blanks), else ``metrics``."""
    return {"weighted_metrics" if weighted else "metrics": metrics}


def _train_teacher(config, data, path, pipe, steps_per_epoch):
    """The distillation teacher: loaded from ``path`` if an interrupted run saved it, else a :func:`small_cnn` trained
    with the same recipe (augmentation included) and saved there. Returns (teacher, seconds training it, test accuracy)."""
    if path.exists():
        teacher, seconds = keras.saving.load_model(path), 0.0
    else:
        teacher = small_cnn(data.image_shape, data.num_classes, name="teacher")
        wrapped = compile_for_training(with_augmentation(teacher, config), config, steps_per_epoch)
        start = time.perf_counter()
        wrapped.fit(pipe(data.x_train, data.y_train, True), epochs=config.epochs, verbose=0, shuffle=False)
        seconds = time.perf_counter() - start
        teacher.save(path)
    predictions = teacher.predict(data.x_test, batch_size=EVAL_BATCH, verbose=0)
    return teacher, seconds, float(np.mean(np.argmax(predictions, -1) == data.y_test))


def _initial_vit(config, data):
    """The ViT a run starts from: built from ``config.model``, or the saved one of ``config.init_from`` moved to the
    data's image size (position embeddings resized by ``config.pos_resize``; :mod:`vitlib.resolution`)."""
    if config.init_from is None:
        return build_vit(**{"image_size": data.image_shape[:2], "channels": data.image_shape[2],
                            "num_classes": data.num_classes, **config.model})
    from vitlib import resolution

    saved = resolution.load_vit(config.init_from)
    if (saved.config.channels, saved.config.num_classes) != (data.image_shape[2], data.num_classes):
        raise ValueError(f"{config.init_from} takes {saved.config.channels}-channel images and has "
                         f"{saved.config.num_classes} classes, but {data.name!r} has {data.image_shape[2]} and "
                         f"{data.num_classes}: fine-tune it on a data set like the one it was trained on.")
    return resolution.at_resolution(saved, data.image_shape[:2], config.pos_resize, config.seed)


def train(config, out_dir="runs/digits", verbose="auto", data=None):
    """Train, keep the best model by validation accuracy and the last one, evaluate one of them (``config.keep``)
    once on the test split. With ``config.train_on_validation`` the validation images are trained on as well
    (for the final run of a fixed recipe): no validation curves and no ``best.keras`` then.

    Writes ``out_dir/best.keras`` and ``last.keras`` (plain ViTs), ``history.csv``, ``metrics.json`` and, while running,
    ``backup/``: run the same call again after an interruption and it resumes after the last finished
    epoch. Returns the metrics dict (``test_accuracy``, ``train_seconds``, ``config``, ...) plus
    ``history``, the per-epoch losses and accuracies (plot them with ``vitlib.plotting.history_figure``).
    ``data``: a :class:`vitlib.data.Dataset` instead of ``load_dataset(config.dataset)`` (a fold of ``benchmarks/digits_cv.py``).
    ``verbose``: as Keras' ``fit`` (0 silent, 1 a progress bar, 2 a line per epoch), or ``"line"``: one line updated
    per epoch (:class:`vitlib.progress.EpochLine`), which ``"auto"`` (the default) means in a notebook.
    """
    if isinstance(config, dict):
        config = TrainConfig(**config)
    with _checks.output_folder(out_dir) as out:  # a run refused before it starts leaves no empty folder
        return _train(config, out, verbose, data)


def _train(config, out, verbose, data):
    if config.strategy == "multiworker" and keras.backend.backend() != "tensorflow":
        raise ValueError(f"strategy='multiworker' is TensorFlow's (tf.distribute); on {keras.backend.backend()} use "
                         "strategy='auto' (JAX: set a keras.distribution, see the README).")
    # First, as a multi-worker strategy must start TensorFlow's runtime itself; worker k writes into out/worker{k}.
    strategy = resolve_strategy(config.strategy) if keras.backend.backend() == "tensorflow" else None
    out = multiworker.folder(out) if multiworker.active(strategy) else out
    if not (out / "backup").exists():  # nothing to resume: a fresh run, so forget any earlier finished one
        for name in ("history.csv", "best.keras", "last.keras", "metrics.json", "teacher.keras", "layout.npz"):
            (out / name).unlink(missing_ok=True)
    keras.utils.set_random_seed(config.seed)
    previous_policy = keras.config.dtype_policy().name
    precision = resolve_precision(config.mixed_precision)
    keras.config.set_dtype_policy(precision)
    try:
        data = data if data is not None else load_dataset(config.dataset, seed=config.seed, **config.dataset_options)
        if config.image_size is not None:  # a new resolution (Sec. 3.2): every split resized, as a user would
            data = data.resized(config.image_size)
        if config.train_on_validation:  # the recipe is fixed: its validation images become training images
            data = data.with_validation_in_training()
        if config.shuffle_labels:  # the control with nothing to learn: same images, labels that say nothing
            data = data.with_shuffled_labels(config.seed)
        # Batches of one size (the left-over images change each epoch, as the data is reshuffled): even over replicas.
        drop_remainder = len(data.y_train) >= config.batch_size
        steps_per_epoch = len(data.y_train) // config.batch_size if drop_remainder else 1
        # Evaluation in big batches on one device; with several replicas in the training batch size (TensorFlow's
        # MirroredStrategy fails on some unevenly split big batches). Under a JAX keras.distribution the evaluation
        # images are padded with up to shards - 1 blank, zero-weight ones, so that every batch splits evenly (the
        # accuracy counts the real images; the loss is divided by the padded count, e.g. 144 for 143 on 2 devices).
        shards = distribution_size()
        replicas = strategy.num_replicas_in_sync if strategy is not None else shards
        if config.batch_size % replicas:
            raise ValueError(f"batch_size={config.batch_size} does not split evenly over {replicas} devices: use a "
                             f"multiple of {replicas}.")
        eval_batch = max(config.batch_size, EVAL_BATCH) if replicas == 1 else config.batch_size

        def pipe(x, y, training):
            return make_pipeline(x, y, config.batch_size if training else eval_batch, data.num_classes, training,
                                 config.seed, drop_remainder=training and drop_remainder,
                                 map_fn=data.train_map if training else None,
                                 pad_to=shards if shards > 1 and not training else None)

        teacher_seconds, teacher_accuracy = 0.0, None
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            if config.distill:
                teacher, teacher_seconds, teacher_accuracy = _train_teacher(config, data, out / "teacher.keras", pipe,
                                                                            steps_per_epoch)
            keras.utils.set_random_seed(config.seed)  # the ViT starts the same with or without a teacher
            vit = _initial_vit(config, data)
            # TensorFlow, one device, no strategy: up to 32 steps per traced call (same numbers, less overhead;
            # callbacks and Ctrl-C act between calls). Not JAX, which unrolls them, nor PyTorch.
            one = keras.backend.backend() == "tensorflow" and config.strategy in ("auto", "none") and replicas == 1
            options = dict(weighted=shards > 1, steps_per_execution=min(steps_per_epoch, 32) if one else 1)
            if config.distill:
                model = distillation_model(vit, teacher, recipe_augmentation(config))
                compile_for_training(model, config, steps_per_epoch, metrics=[student_accuracy(data.num_classes)],
                                     loss=DistillationLoss(data.num_classes, config.distill, config.distill_temperature,
                                                           config.label_smoothing), **options)
            else:  # one device on TensorFlow: a run like the last one but for its seed reuses its compiled model
                model, vit = _compiled.training_model(config, vit, with_augmentation(vit, config, name="train_model"),
                                                      lambda m: compile_for_training(m, config, steps_per_epoch, **options),
                                                      [data.image_shape, data.num_classes, steps_per_epoch, options], one)
            training_batches = pipe(data.x_train, data.y_train, True)
            if multiworker.active(strategy):
                multiworker.prepare(model, training_batches.element_spec)
                multiworker.check_backups_agree(strategy, backup.epochs_done(out))
        backup.trim_history(out)  # the rows of epochs that run again go
        best_so_far = max(read_history(out / "history.csv").get("val_accuracy", []), default=-np.inf)
        callbacks = [  # the backup last: an epoch counts as done only once its row and best model are written
            SaveBest(vit, out / "best.keras", best=best_so_far, staged=True),
            keras.callbacks.TerminateOnNaN(),
            *([LayoutTracker(vit, out / "layout.npz")] if config.track_layout else []),  # before the CSV row
            keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
            backup.Backup(str(out / "backup"), staged_files=[out / "best.keras"]),
        ]
        if verbose == "line" or (verbose == "auto" and progress._in_notebook()):
            callbacks.append(progress.EpochLine(out.name))  # the run, by its folder
            verbose = 0
        start = time.perf_counter()
        validation = pipe(data.x_val, data.y_val, False) if len(data.y_val) else None
        with multiworker.lost_worker_explained(strategy):  # data shuffles itself
            history = model.fit(training_batches, validation_data=validation, epochs=config.epochs, callbacks=callbacks,
                                verbose=verbose, shuffle=False)
        train_seconds = time.perf_counter() - start
        backup.replace_atomically(out / "last.keras", vit.save)
        tested = keras.saving.load_model(out / f"{config.keep}.keras")
        if replicas == 1:  # called batch by batch: no traced step built for one evaluation (about 1.5 s on 2 cores)
            test_accuracy = accuracy(tested, data.x_test, data.y_test)
        else:  # the test batches split over the devices, as in training
            tested.compile(loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                           **_metrics_argument(["accuracy"], weighted=shards > 1))
            _, test_accuracy = tested.evaluate(pipe(data.x_test, data.y_test, False), verbose=0)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    history_so_far = read_history(out / "history.csv")  # all epochs, those of earlier (interrupted) runs too
    metrics = {
        "test_accuracy": float(test_accuracy),
        "tested_model": f"{config.keep}.keras",
        "best_val_accuracy": max(history_so_far.get("val_accuracy", []), default=None),  # None: no validation split
        "train_images": len(data.y_train),
        "train_seconds": round(train_seconds, 2),
        "teacher_test_accuracy": teacher_accuracy,
        "teacher_seconds": round(teacher_seconds, 2),
        "epochs_this_run": [int(e) for e in history.epoch],
        "parameters": int(vit.count_params()),
        "precision": precision,
        "backend": keras.backend.backend(),
        "devices": replicas,
        "dataset": repr(data),
        "config": dataclasses.asdict(config),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    backup.finish(out)  # the results are written: nothing left to resume
    return {**metrics, "history": history_so_far}


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
