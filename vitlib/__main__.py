"""``python -m vitlib``: versions, the Keras backend and the devices it sees."""
import importlib.metadata
import os
import platform
import sys


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


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


def report():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import vitlib  # first: it imports TensorFlow quietly

    import keras

    backend = keras.backend.backend()
    lines = [
        f"vitlib      {vitlib.__version__}",
        f"python      {platform.python_version()} ({sys.executable})",
        f"keras       {keras.__version__}  backend: {backend}  (set KERAS_BACKEND to change)",
    ]
    for package in ("tensorflow", "jax", "torch", "numpy", "matplotlib", "ipywidgets", "jupyterlab"):
        lines.append(f"{package:<11} {_version(package)}")
    gpus = devices(backend)
    lines.append(f"GPUs        {', '.join(gpus) if gpus else f'none found by {backend}: training runs on the CPU'}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
