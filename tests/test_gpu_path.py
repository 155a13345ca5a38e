"""The GPU training path, run on the CPU: mixed precision (bfloat16, and float16 with loss scaling), XLA, and the
CIFAR-10 recipe's exact code on a generated stand-in of CIFAR's shape, so that the first user with a GPU does not
meet the first bug. (Speed is measured on a GPU in benchmarks/RESULTS.md, not here.)"""
import keras
import numpy as np
import pytest

import vitlib
from vitlib.data import datasets
from vitlib.training import fitting, loop, recipes

TINY = {"patch_size": 4, "hidden_size": 16, "depth": 1, "num_heads": 2, "mlp_dim": 32, "stem": "patch"}


@pytest.mark.parametrize("precision,jit", [("mixed_bfloat16", True), ("mixed_float16", False)])
def test_mixed_precision_trains_and_the_saved_model_predicts_in_float32(tmp_path, precision, jit):
    backend = keras.backend.backend()
    if precision == "mixed_float16" and backend == "jax":
        pytest.skip("XLA on a CPU has no float16 matrix products (dot_general F16_F16_F32): float16 under JAX runs "
                    "on GPUs only; bfloat16 is tested here")
    if backend == "torch":
        jit = "auto"  # jit_compile=True would be torch.compile, not part of vitlib's PyTorch path
    config = recipes.recipe("digits", epochs=3, warmup_epochs=1, mixed_precision=precision, jit_compile=jit,
                             model=TINY)
    result = loop.train(config, tmp_path, verbose=0)
    losses = result["history"]["loss"]
    assert result["precision"] == precision and losses[-1] < losses[0] - 0.3, losses  # it learns
    assert result["test_accuracy"] > 0.3  # chance is 0.1
    assert keras.config.dtype_policy().name == "float32"  # train() puts the global policy back
    model = keras.saving.load_model(tmp_path / "last.keras")  # under the default policy: float32 throughout
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in model.weights)
    digits = datasets.load_dataset("digits")
    logits = model.predict(digits.x_test, verbose=0)
    assert logits.dtype == np.float32 and np.isfinite(logits).all()
    # train() tested the model in mixed precision; in float32 it classifies the test images about as well
    assert np.mean(logits.argmax(-1) == digits.y_test) == pytest.approx(result["test_accuracy"], abs=0.03)


@pytest.mark.tensorflow_only  # the loss-scale wrapper is Keras' on every backend; TensorFlow's is the GPU default
def test_float16_wraps_the_optimizer_in_loss_scaling():
    config = recipes.recipe("digits", model=TINY)
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = fitting.compile_for_training(vitlib.build_vit(None, image_size=8, channels=1, num_classes=10, **TINY),
                                              config, 10)
    finally:
        keras.config.set_dtype_policy("float32")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


@pytest.mark.tensorflow_only  # 30-60 s here, 140-180 s under JAX or PyTorch on 2 cores: once, on the default backend
def test_cifar10_recipe_runs_its_exact_code_path_on_a_stand_in(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)

    def stand_in():  # keras.datasets.cifar10.load_data's shapes and dtypes, 256 + 64 images
        return ((rng.integers(0, 256, (256, 32, 32, 3), dtype="uint8"), rng.integers(0, 10, (256, 1), dtype="uint8")),
                (rng.integers(0, 256, (64, 32, 32, 3), dtype="uint8"), rng.integers(0, 10, (64, 1), dtype="uint8")))

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", stand_in)
    config = recipes.recipe("cifar10", epochs=1, warmup_epochs=0, mixed_precision="mixed_bfloat16")
    result = loop.train(config, tmp_path, verbose=0)  # the recipe's model: ViT-Lite-7/4, strong augmentation
    assert result["train_images"] == 230 and result["parameters"] > 3_000_000  # 90 % of 256; 7 layers of width 256
    assert np.isfinite(result["history"]["loss"]).all() and 0 <= result["test_accuracy"] <= 1
    model = keras.saving.load_model(tmp_path / "last.keras")
    assert model.config.depth == 7 and model.config.drop_path == 0.1 and model.config.image_size == (32, 32)
