"""vitlib.training.devices: precision and XLA chosen from what the backend sees."""
import keras
import pytest

from vitlib.training import devices


def test_auto_precision_is_float32_without_a_gpu_and_mixed_with_one(monkeypatch):
    backend = keras.backend.backend()
    monkeypatch.setattr(devices, "gpu_available", lambda: False)  # whatever this machine has
    assert devices.resolve_precision("auto") == "float32"
    assert devices.resolve_jit("auto") is (backend == "jax")  # JAX always jits: op by op it is many times slower
    assert devices.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"  # an explicit setting is kept
    assert devices.resolve_jit(False) is False and devices.resolve_jit(True) is True
    assert devices.resolve_jit("xla") is (backend != "torch")  # XLA on CPUs too, never torch.compile
    monkeypatch.setattr(devices, "gpu_available", lambda: True)
    assert devices.resolve_jit("auto") is (backend != "torch")
    assert devices.resolve_jit("xla") is (backend != "torch")
    with pytest.raises(ValueError, match="Unknown jit_compile 'yes'. Choose one of: 'auto', 'xla', True, False"):
        devices.resolve_jit("yes")
    if backend != "tensorflow":  # TensorFlow asks the GPU for its compute capability
        assert devices.resolve_precision("auto") == "mixed_bfloat16"
