"""vitlib.speed: one switch, off by default, on in the recipes; VITLIB_SPEED=off keeps it off; a Keras it was not
checked against switches it off with one warning; on or off, a run gives the same numbers (to float rounding)."""
import warnings

import keras
import numpy as np
import pytest

import vitlib
from vitlib import speed
from vitlib.training import loop, recipes

pytestmark = pytest.mark.speed


def tiny_recipe(**overrides):
    options = dict(epochs=2, warmup_epochs=1, train_on_validation=False,
                   model={"hidden_size": 16, "depth": 1, "num_heads": 2, "mlp_dim": 32})
    return recipes.recipe("digits", **{**options, **overrides})


def test_the_switch_is_off_by_default_on_in_a_block_and_restored_after_it():
    assert speed.compatible()  # the Keras of constraints.txt is one it was checked against
    assert not speed.enabled()
    with speed.switched() as on:
        assert on and speed.enabled()
        with speed.switched(False):
            assert not speed.enabled()
        assert speed.enabled()
    assert not speed.enabled()
    assert all(recipe.get("speed") for recipe in recipes.RECIPES.values())  # every recipe turns it on


def test_vitlib_speed_off_keeps_it_off_whatever_a_recipe_says(monkeypatch):
    monkeypatch.setenv("VITLIB_SPEED", "off")
    with speed.switched(True) as on:
        assert not on and not speed.enabled()


def tiny_vit():
    return vitlib.build_vit(None, image_size=8, channels=1, num_classes=3, patch_size=4, hidden_size=8, depth=1,
                            num_heads=2, mlp_dim=8)


def test_off_every_hook_is_plain_keras():
    model = tiny_vit()
    optimizer = keras.optimizers.AdamW(1e-3)
    assert speed.optimizer(optimizer) is optimizer
    assert speed.accelerate(model) is model
    assert model.get_layer("encoder_block_0").mlp.fc1.activation is keras.activations.gelu
    assert speed.shared_model("key", lambda: model) == (None, None)
    compiled = []
    assert speed.training_model("key", model, lambda m: compiled.append(m) or m, model) == (model, model) and compiled
    keras.utils.set_random_seed(7)
    weights, draw = tiny_vit().get_weights(), np.random.rand()
    speed.set_seed(7)  # off: keras.utils.set_random_seed itself, TensorFlow's global seed included
    assert all(np.array_equal(a, b) for a, b in zip(tiny_vit().get_weights(), weights)) and np.random.rand() == draw
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        assert tf.compat.v1.random.get_seed(0)[0] == 7
    with pytest.raises(ValueError, match="seed must be an int"):
        speed.set_seed("7")


def test_a_keras_it_was_not_checked_against_switches_it_off_with_one_warning_and_training_runs_plain(
        monkeypatch, tmp_path):
    monkeypatch.setattr(keras, "version", lambda: "3.99.0")
    assert not speed.compatible()
    with pytest.warns(speed.SpeedLayerOff) as caught:
        with speed.switched() as on:
            assert not on and not speed.enabled()
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert "Keras 3.99.0 is not one it was checked against" in str(caught[0].message)
    seen = []
    original = loop.compile_for_training
    monkeypatch.setattr(loop, "compile_for_training", lambda *a, **k: seen.append(speed.enabled()) or original(*a, **k))
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        result = loop.train(tiny_recipe(epochs=1, warmup_epochs=0), tmp_path, verbose=0)  # the recipe asks for it
    assert seen == [False] and [w.category for w in again].count(speed.SpeedLayerOff) == 1
    assert 0 <= result["test_accuracy"] <= 1


@pytest.mark.tensorflow_only  # elsewhere the speed layer changes only the seeding
def test_a_run_gives_the_same_numbers_with_the_speed_layer_on_and_off(tmp_path, monkeypatch):
    on = loop.train(tiny_recipe(), tmp_path / "on", verbose=0)
    monkeypatch.setenv("VITLIB_SPEED", "off")
    off = loop.train(tiny_recipe(), tmp_path / "off", verbose=0)
    np.testing.assert_allclose(on["history"]["loss"], off["history"]["loss"], rtol=1e-4)
    assert abs(on["test_accuracy"] - off["test_accuracy"]) <= 2 / 359  # float rounding may move an image or two
    assert on["train_seconds"] > 0 and off["train_seconds"] > 0


def test_a_switch_inside_one_that_asked_the_same_keeps_its_answer_and_warns_no_more(monkeypatch):
    monkeypatch.setenv("VITLIB_SPEED", "on")
    with speed.switched() as outer, speed.switched() as inner:
        assert inner is outer is speed.compatible() and speed.enabled() is outer
    assert not speed.enabled()
    monkeypatch.setattr(keras, "version", lambda: "3.99.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with speed.switched() as outer, speed.switched() as inner, speed.switched(False) as off:
            assert not outer and not inner and not off
    assert [w.category for w in caught].count(speed.SpeedLayerOff) == 1


def _hooks_acting(tmp_seed=3):
    """Which parts of the speed layer act now, read off what each hook does (TensorFlow)."""
    model = tiny_vit()
    acting = []
    speed.accelerate(model)
    if model.get_layer("encoder_block_0").mlp.fc1.activation is not keras.activations.gelu:
        acting.append("gradients")
    if type(speed.optimizer(keras.optimizers.AdamW(1e-3))) is not keras.optimizers.AdamW:
        acting.append("adamw")
    compiles = []

    def compile_fn(wrapper):
        compiles.append(wrapper)
        wrapper.compile(optimizer="adam", loss="mse")
        return wrapper

    for _ in range(2):  # the compiled part keeps the first model for the second run
        speed.training_model("parts test", model, compile_fn, model)
    if len(compiles) == 1 and speed.shared_model("parts test", lambda: compile_fn(tiny_vit())) != (None, None):
        acting.append("compiled")
    import tensorflow as tf

    speed.set_seed(tmp_seed)  # the seeding part holds TensorFlow's global seed; keras.utils.set_random_seed sets it
    if tf.compat.v1.random.get_seed(0)[0] != tmp_seed:
        acting.append("seeding")
    return acting


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("setting, expected", [
    (None, ["gradients", "adamw", "compiled", "seeding"]),
    ("all", ["gradients", "adamw", "compiled", "seeding"]),
    ("", []), ("none", []),
    ("gradients", ["gradients"]), ("adamw", ["adamw"]), ("compiled", ["compiled"]), ("seeding", ["seeding"]),
    ("adamw,compiled,seeding", ["adamw", "compiled", "seeding"]),  # all but one, as benchmarks/speed_parts.py runs
    ("gradients, compiled,seeding", ["gradients", "compiled", "seeding"]),
    ("gradients,adamw,seeding", ["gradients", "adamw", "seeding"]),
    ("GRADIENTS,adamw,compiled", ["gradients", "adamw", "compiled"]),
])
def test_vitlib_speed_parts_switches_exactly_the_parts_it_names(monkeypatch, setting, expected):
    from vitlib.speed import compiled

    monkeypatch.setenv("VITLIB_SPEED", "on")
    if setting is None:
        monkeypatch.delenv("VITLIB_SPEED_PARTS", raising=False)
    else:
        monkeypatch.setenv("VITLIB_SPEED_PARTS", setting)
    try:
        with speed.switched():
            assert list(speed.parts()) == expected
            assert _hooks_acting() == expected
        assert _hooks_acting() == []  # the switch off: no part acts, whatever the list says
    finally:
        compiled.forget()


def test_vitlib_speed_parts_refuses_a_name_it_does_not_know(monkeypatch):
    monkeypatch.setenv("VITLIB_SPEED_PARTS", "gradients,fused")
    with pytest.raises(ValueError, match=r"VITLIB_SPEED_PARTS names 'fused'; the parts are gradients, adamw"):
        speed.parts()
