"""TensorFlow prints CUDA and CPU-feature notes to stderr from C++ before it reads TF_CPP_MIN_LOG_LEVEL.
When the user asked for quiet (TF_CPP_MIN_LOG_LEVEL >= 2), import and initialise TensorFlow with file
descriptor 2 sent to /dev/null, so notebooks stay clean. Python exceptions are not affected."""
import contextlib
import os


@contextlib.contextmanager
def _stderr_silenced():
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def import_tensorflow_quietly():
    wants_quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("2", "3")
    uses_tf = os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow"
    several_workers = "TF_CONFIG" in os.environ  # multi-worker training must start TensorFlow's runtime itself
    if not (wants_quiet and uses_tf) or several_workers or "tensorflow" in __import__("sys").modules:
        return
    try:
        with _stderr_silenced():
            import tensorflow as tf

            if not tf.config.list_physical_devices("GPU"):
                # On a machine without a GPU, XLA's first compilation logs a harmless "failed call to
                # cuInit" error; compile one tiny function now, silenced. (This starts the TensorFlow
                # runtime: to split the CPU into logical devices, do it before importing vitlib.)
                tf.function(lambda x: x + 1, jit_compile=True)(tf.constant(1.0))
    except ImportError:
        pass  # Keras reports a missing backend itself
