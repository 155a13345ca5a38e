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


def report():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    import vitlib  # first: it imports TensorFlow quietly

    backend = keras.backend.backend()
    lines = [
        f"vitlib      {vitlib.__version__}",
        f"python      {platform.python_version()} ({sys.executable})",
        f"keras       {keras.__version__}  backend: {backend}  (set KERAS_BACKEND to change)",
    ]
    for package in ("tensorflow", "jax", "torch", "numpy", "matplotlib", "ipywidgets", "jupyterlab"):
        lines.append(f"{package:<11} {_version(package)}")
    from vitlib.training.devices import devices

    gpus = devices(backend)
    lines.append(f"GPUs        {', '.join(gpus) if gpus else f'none found by {backend}: training runs on the CPU'}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
