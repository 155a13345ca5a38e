"""vitlib.speed.adamw: the speed layer's AdamW gives the weights of Keras' AdamW bit for bit, and takes Keras' own
path where its shortcut does not apply."""
import keras
import numpy as np
import pytest

import vitlib
from vitlib import speed
from vitlib.speed import adamw
from vitlib.training import schedule

pytestmark = pytest.mark.speed


def _tiny_vit():
    return vitlib.build_vit(None, image_size=8, channels=1, num_classes=10, patch_size=4, hidden_size=16, depth=1,
                            num_heads=2, mlp_dim=32)


RECIPE_LIKE = {"weight_decay": 0.05, "global_clipnorm": 1.0}  # with a WarmupCosine schedule, as the recipes have it


OTHER_OPTIONS = {"learning_rate": 1e-2, "weight_decay": 0.1, "exclude": ["bias"], "gradient_accumulation_steps": 2}


def _two_optimisers_trained(make_step, options, policy="float32", steps=4):
    """Weights after ``steps`` updates with Keras' AdamW and with vitlib's, from the same start and data, and that
    start."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 8, 8, 1)).astype("float32"), keras.utils.to_categorical(rng.integers(0, 10, 32), 10)
    options = dict(options)
    learning_rate, exclude = options.pop("learning_rate", schedule.WarmupCosine(1e-2, 10, 2)), options.pop("exclude", None)
    weights, previous = [], keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(policy)
        for make_optimiser in (keras.optimizers.AdamW, _speed_layers_adamw):
            keras.utils.set_random_seed(0)
            model = _tiny_vit()
            start = model.get_weights()
            optimiser = make_optimiser(learning_rate, **options)
            if exclude:
                optimiser.exclude_from_weight_decay(var_names=exclude)
            make_step(model, optimiser, x, y, steps)
            weights.append(model.get_weights())
    finally:
        keras.config.set_dtype_policy(previous)
    return weights, start


def _speed_layers_adamw(learning_rate, **options):
    """What compile_for_training compiles with when the speed layer is on: vitlib's AdamW on TensorFlow."""
    with speed.switched():
        return speed.optimizer(keras.optimizers.AdamW(learning_rate, **options))


def _fit(model, optimiser, x, y, steps, jit_compile=False):
    model.compile(optimizer=optimiser, loss=keras.losses.CategoricalCrossentropy(from_logits=True), jit_compile=jit_compile)
    model.fit(x, y, batch_size=8, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)


def _fit_with_xla(model, optimiser, x, y, steps):
    _fit(model, optimiser, x, y, steps, jit_compile=True)


def _two_updates_per_traced_call(model, optimiser, x, y, steps):
    # A user's loop: one traced function applies the optimiser twice, so the step counter moves within one graph
    # (a cached learning rate would give step t's rate to step t + 1 here).
    import tensorflow as tf

    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True)
    optimiser.build(model.trainable_variables)

    @tf.function
    def two_steps(xb, yb):
        for _ in range(2):
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, model(xb, training=True))
            optimiser.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)

    for i in range(steps // 2):
        two_steps(x[8 * i:8 * i + 8], y[8 * i:8 * i + 8])


TF = pytest.mark.tensorflow_only


@pytest.mark.parametrize("make_step, options, policy", [
    (_fit, RECIPE_LIKE, "float32"),
    (_fit, OTHER_OPTIONS, "float32"),  # a fixed rate, excluded variables, gradient accumulation
    pytest.param(_fit, RECIPE_LIKE, "mixed_float16", marks=TF),  # float16 compute, under Keras' loss scaling
    pytest.param(_fit_with_xla, RECIPE_LIKE, "float32", marks=TF),
    pytest.param(_two_updates_per_traced_call, RECIPE_LIKE, "float32", marks=TF),
])
def test_the_recipes_adamw_gives_the_weights_of_keras_adamw_bit_for_bit(make_step, options, policy, monkeypatch):
    direct = []  # what vitlib's AdamW chose while tracing: its own update (True) or Keras' (False)
    choose = adamw.AdamW._direct

    def recorded(self, *args):
        direct.append(choose(self, *args))
        return direct[-1]

    monkeypatch.setattr(adamw.AdamW, "_direct", recorded)
    (keras_weights, vitlib_weights), start = _two_optimisers_trained(make_step, options, policy)
    if keras.backend.backend() == "tensorflow":
        assert direct and all(direct)  # its own update ran, so the comparison below compares two implementations
    else:
        assert not any(direct)  # elsewhere it is Keras' AdamW: the same numbers by construction
    assert len(keras_weights) == len(vitlib_weights) > 10
    for a, b in zip(keras_weights, vitlib_weights):
        np.testing.assert_array_equal(a, b)  # exactly equal, not close
    assert max(float(np.abs(a - b).max()) for a, b in zip(vitlib_weights, start)) > 1e-3  # it trained


@pytest.mark.tensorflow_only
def test_the_recipes_adamw_takes_keras_own_path_under_a_strategy_and_for_sparse_gradients():
    import tensorflow as tf

    optimiser = _speed_layers_adamw(1e-3, weight_decay=0.05)
    assert type(optimiser) is adamw.AdamW  # on TensorFlow: the subclass
    assert optimiser._direct([tf.zeros(3)])
    assert not optimiser._direct([tf.IndexedSlices(tf.zeros((1, 3)), tf.constant([0]), tf.constant([2, 3]))])
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        assert not optimiser._direct([tf.zeros(3)])
    assert not adamw.AdamW(1e-3, amsgrad=True)._direct([tf.zeros(3)])

    class Mine(adamw.AdamW):  # a learner's own update: Keras' path, which calls it
        def update_step(self, gradient, variable, learning_rate):
            return super().update_step(gradient, variable, learning_rate)

    assert not Mine(1e-3)._direct([tf.zeros(3)])
    clone = adamw.AdamW.from_config(optimiser.get_config())
    assert type(clone) is adamw.AdamW and clone.weight_decay == 0.05


def test_a_model_compiled_with_the_speed_layer_loads_after_a_plain_import_vitlib_and_as_keras_adamw_on_pytorch(tmp_path):
    # vitlib's AdamW is registered by `import vitlib` alone (a fresh process, as a user loading the file would have)
    import os
    import subprocess
    import sys

    from vitlib.training import fitting, recipes

    model = _tiny_vit()
    with speed.switched():
        fitting.compile_for_training(model, recipes.recipe("digits", epochs=2, warmup_epochs=1), steps_per_epoch=3)
    model.save(tmp_path / "compiled.keras")
    code = ("import sys, keras, vitlib; m = keras.saving.load_model(sys.argv[1]); "
            "print(type(m.optimizer).__module__, type(m.optimizer._learning_rate).__name__)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "compiled.keras")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    tensorflow = keras.backend.backend() == "tensorflow"
    assert out.stdout.split() == ["vitlib.speed.adamw" if tensorflow else type(model.optimizer).__module__, "WarmupCosine"]
    if tensorflow:  # saved here, loaded on PyTorch: Keras' own PyTorch AdamW
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "compiled.keras")], capture_output=True,
                             text=True, env={**os.environ, "KERAS_BACKEND": "torch"})
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.split() == ["keras.src.backend.torch.optimizers.torch_adamw", "WarmupCosine"]
