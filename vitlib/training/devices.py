"""Devices and precision: which accelerators the Keras backend sees, and what a training run uses on them
(mixed precision, XLA, data parallelism). Everything is chosen at run time, so the same code runs on a CPU and a GPU.
"""
import keras

from vitlib import _checks

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")  # "auto": resolve_precision picks
STRATEGIES = ("auto", "none", "mirrored", "multiworker")  # see resolve_strategy
JIT_SETTINGS = ("auto", "xla", True, False)  # see resolve_jit


def devices(backend):
    """Names of the accelerators (GPUs) the active backend can use, as a list of strings."""
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if backend == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform != "cpu"]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def gpu_available():
    """Whether the active Keras backend sees a GPU."""
    return bool(devices(keras.backend.backend()))


def resolve_precision(setting):
    """``"auto"``: mixed bfloat16 on GPUs that support it (compute capability 8+), float16 on older
    GPUs, float32 on CPUs (where mixed precision is slower)."""
    if setting != "auto":
        return setting
    if not gpu_available():
        return "float32"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
        return "mixed_bfloat16" if details.get("compute_capability", (0, 0))[0] >= 8 else "mixed_float16"
    return "mixed_bfloat16"


def resolve_jit(setting):
    """``"auto"``: with TensorFlow, XLA compilation on GPUs, where it speeds up every step, not on CPUs (compiling a
    small ViT's training step takes longer there than it saves in a short run); with JAX always, as JAX's own
    default (without ``jit`` JAX runs a step op by op, slower even with compilation counted:
    benchmarks/RESULTS.md); with PyTorch never (``torch.compile`` takes longer than it saves in a short run).
    ``"xla"``: XLA with TensorFlow (on CPUs too) and JAX, never ``torch.compile``: for runs long enough that compiling
    pays on a CPU (notebook 07's recipe). ``True``/``False``: Keras' own meaning (``True`` on PyTorch: torch.compile)."""
    _checks.choice("jit_compile", setting, JIT_SETTINGS)
    if setting == "xla":
        return keras.backend.backend() != "torch"
    if setting != "auto":
        return bool(setting)
    backend = keras.backend.backend()
    return backend == "jax" or (backend == "tensorflow" and gpu_available())


def resolve_strategy(setting):
    """A ``tf.distribute`` strategy: ``MirroredStrategy`` over all GPUs (``"auto"`` with 2+ GPUs, or
    ``"mirrored"``, which falls back to all logical CPUs when there is no GPU), else the default one.
    ``"multiworker"``: several machines, from ``TF_CONFIG`` (:mod:`vitlib.training.multiworker`).
    Under JAX set a ``keras.distribution.DataParallel`` instead (:func:`distribution_size`)."""
    if setting == "multiworker":
        from vitlib.training import multiworker

        return multiworker.strategy()
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if setting == "mirrored" or (setting == "auto" and len(gpus) > 1):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def distribution_size():
    """How many devices the global ``keras.distribution`` (JAX: e.g. ``DataParallel``) splits each batch over; 1
    when none is set (and on TensorFlow and PyTorch, which use ``tf.distribute`` or nothing instead)."""
    import keras
    import numpy as np

    distribution = keras.distribution.distribution() if keras.backend.backend() == "jax" else None
    return 1 if distribution is None else int(np.size(distribution.device_mesh.devices))
