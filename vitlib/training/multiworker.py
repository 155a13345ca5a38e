"""Training on several machines with TensorFlow: ``tf.distribute.MultiWorkerMirroredStrategy``, one process per
machine (or several on one machine, as the tests do), each told the cluster and its own place in it by
``TF_CONFIG``. Every worker holds the whole model and trains on its share of each batch; gradients are summed across
workers at every step. Use it with ``strategy="multiworker"`` (``python -m vitlib.train --strategy multiworker``).

Keras 3's ``fit`` needs two work-arounds here (tensorflow#72388), both in :func:`prepare`: the model is built
before ``fit`` (Keras would build it on a batch averaged across workers, which fails), which takes Keras internals and
so lives with vitlib's other uses of them in :mod:`vitlib.speed` (:func:`vitlib.speed.build_before_fit`); and each step
reports its metrics as 1-element vectors (Keras averages every metric over axis 0 across workers, which fails for a
scalar).

Worker 0, the chief, writes the run's files into ``out_dir``; worker k writes its own copies into
``out_dir/worker{k}`` (its backup included), so that workers sharing one disk never write the same file.
Each worker backs up after the epoch's last shared step: a worker lost in the moment between the others' backups
and its own leaves backups one epoch apart. :func:`check_backups_agree` refuses to resume from them.
"""
import contextlib
import json
import os

_STRATEGY = []  # the one strategy of this process: collective ops can be set up only once, at start-up


def cluster():
    """``(workers, index)`` from ``TF_CONFIG``: the workers' addresses and this process's index among them. A
    missing or malformed ``TF_CONFIG`` is a ValueError that says what it should hold."""
    example = ('e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}\' on the first machine, index 1 on the second')
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ValueError(f"strategy='multiworker' needs TF_CONFIG, which is not set: {example}.")
    try:
        config = json.loads(text)
        workers, task = list(config["cluster"]["worker"]), config["task"]
        index = int(task["index"])
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"TF_CONFIG is not valid ({type(error).__name__}: {error}); it should read {example}. "
                         f"Got {text!r}.") from None
    if task.get("type", "worker") != "worker" or not 0 <= index < len(workers):
        raise ValueError(f"TF_CONFIG's task must be a worker with an index from 0 to {len(workers) - 1}, got "
                         f"{task!r}.")
    return workers, index


def strategy():
    """This process's ``MultiWorkerMirroredStrategy`` (created on the first call, after checking ``TF_CONFIG``)."""
    if not _STRATEGY:
        cluster()
        import tensorflow as tf

        try:
            _STRATEGY.append(tf.distribute.MultiWorkerMirroredStrategy())
        except RuntimeError as error:
            raise RuntimeError(f"Cannot start multi-worker training ({error}): TensorFlow had already run an operation "
                               "in this process. Set TF_CONFIG before importing vitlib, and train before running "
                               "anything else with TensorFlow (the command line does).") from None
    return _STRATEGY[0]


def active(strategy):
    """Whether ``strategy`` spans several workers."""
    return bool(_STRATEGY) and strategy is _STRATEGY[0]


def folder(out):
    """Where this worker writes its files: ``out`` for the chief (worker 0), ``out/worker{k}`` for worker k."""
    _, index = cluster()
    if index == 0:
        return out
    (out / f"worker{index}").mkdir(exist_ok=True)
    return out / f"worker{index}"


def prepare(model, element_spec):
    """Make a compiled model trainable by Keras 3's ``fit`` across workers (see the module's docstring).
    ``element_spec``: the training pipeline's, to build the model, its loss, metrics and optimiser from."""
    import tensorflow as tf

    from vitlib import speed

    speed.build_before_fit(model, element_spec)

    def as_vectors(step):
        return lambda data: {name: tf.reshape(value, [1]) for name, value in step(data).items()}

    model.train_step, model.test_step = as_vectors(model.train_step), as_vectors(model.test_step)
    return model


def check_backups_agree(strategy, epochs_done):
    """Refuse to resume when the workers' backups hold different numbers of epochs (a worker lost between the
    others' backups and its own): they would train out of step. Every worker calls it before ``fit``; the sums of
    the epochs and of their squares, over the workers, are equal to a single worker's times the count only if all
    agree."""
    import tensorflow as tf

    value = tf.constant([float(epochs_done), float(epochs_done) ** 2])
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(value)), axis=None).numpy()
    count = strategy.num_replicas_in_sync
    if total[1] * count != total[0] ** 2:  # all equal exactly when sum(x^2) * n == (sum x)^2
        raise ValueError(f"The workers' backups hold different numbers of finished epochs (this worker's: "
                         f"{epochs_done}, the mean over the {count} workers: {total[0] / count:g}): a worker was "
                         "lost between the others' backups and its own. Delete every worker's backup/ folder and "
                         "start the run again.")


class WorkerLost(RuntimeError):
    """Another worker stopped during multi-worker training."""


@contextlib.contextmanager
def lost_worker_explained(strategy):
    """Turn TensorFlow's error when another worker stops (its heartbeats stop; TensorFlow notices within ~10 s)
    into :class:`WorkerLost`, which says how to resume."""
    if not active(strategy):
        yield
        return
    import tensorflow as tf

    try:
        yield
    except tf.errors.UnavailableError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
        reason = next((line for line in lines if "unhealthy" in line or "aborted" in line), lines[0])
        raise WorkerLost(f"Another worker stopped, so this one cannot go on ({reason}). Start every worker again "
                         "with the same command and TF_CONFIG: each resumes after its "
                         "last finished epoch, from its backup/ folder.") from None
