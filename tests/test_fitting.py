"""vitlib.training.fitting: the recipe's optimiser and loss, the best model kept, a compiled model saved and loaded."""
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import vitlib
from vitlib.training import fitting, recipes


def _tiny_vit():
    return vitlib.build_vit(None, image_size=8, channels=1, num_classes=10, patch_size=4, hidden_size=16, depth=1,
                            num_heads=2, mlp_dim=32)


def test_save_best_saves_on_improvement_and_on_ties_so_the_later_epoch_wins(tmp_path):
    saved = []

    class Recorder:
        def save(self, path):
            saved.append(epoch)
            Path(path).write_text(str(epoch))

    callback = fitting.SaveBest(Recorder(), tmp_path / "best.keras")
    for epoch, accuracy in enumerate([0.5, 0.7, 0.6, 0.7, 0.65]):
        callback.on_epoch_end(epoch, {"val_accuracy": accuracy})
    assert saved == [0, 1, 3] and callback.best == 0.7
    assert [p.name for p in tmp_path.iterdir()] == ["best.keras"] and (tmp_path / "best.keras").read_text() == "3"


def test_a_model_saved_with_the_recipes_optimiser_loads_after_a_plain_import_vitlib(tmp_path):
    # The optimiser's WarmupCosine schedule is saved with the model; it must be registered by `import vitlib`
    # alone, without importing vitlib.training (a fresh process, as a user loading the file would have).
    model = _tiny_vit()
    fitting.compile_for_training(model, recipes.recipe("digits", epochs=2, warmup_epochs=1), steps_per_epoch=3)
    model.save(tmp_path / "compiled.keras")
    code = ("import sys, keras, vitlib; m = keras.saving.load_model(sys.argv[1]); "
            "print(type(m.optimizer).__name__, type(m.optimizer._learning_rate).__name__, 'vitlib.training.loop' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "compiled.keras")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["AdamW", "WarmupCosine", "False"]  # Keras' AdamW: the speed layer is off here


@pytest.mark.speed
@pytest.mark.tensorflow_only
@pytest.mark.parametrize("recipe_speed, environment, fast", [(True, "on", True), (False, "on", False),
                                                            (True, "off", False)])
def test_compile_for_training_follows_the_recipes_speed_setting(recipe_speed, environment, fast, monkeypatch):
    """A notebook that compiles its own model with a recipe's config gets the recipe's optimiser, the speed layer's
    AdamW where the recipe turns it on, Keras' own where it does not or VITLIB_SPEED=off; nothing stays switched on."""
    import keras

    from vitlib import speed
    from vitlib.speed import adamw

    monkeypatch.setenv("VITLIB_SPEED", environment)
    config = dataclasses.replace(recipes.recipe("digits", epochs=2, warmup_epochs=1), speed=recipe_speed)
    model = fitting.compile_for_training(_tiny_vit(), config, steps_per_epoch=3)
    assert isinstance(model.optimizer, adamw.AdamW) is (fast and speed.compatible())
    assert isinstance(model.optimizer, keras.optimizers.AdamW) and not speed.enabled()


def test_train_budget_trains_for_steps_or_for_passes_over_the_images():
    import keras
    import numpy as np

    from vitlib.data import datasets

    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(100, 8, 8, 1)).astype("float32"), rng.integers(0, 10, 100).astype("int32")
    data = datasets.Dataset("random", x, y, x[:10], y[:10], x[:10], y[:10], [str(i) for i in range(10)])
    config, steps_per_epoch = fitting.step_budget(30, batch_size=64)  # more steps than the 100 images fill
    assert (config.epochs, steps_per_epoch, config.warmup_epochs) == (10, 3, 1)
    model = _tiny_vit()
    seconds = fitting.train_budget(model, data, config, seed=0, steps_per_epoch=steps_per_epoch)
    assert int(model.optimizer.iterations) == 30 and seconds > 0  # the images repeat freely
    passes = recipes.recipe("digits", epochs=2, warmup_epochs=0, batch_size=64)
    for drop_remainder, steps in ((True, 2 * 1), (False, 2 * 2)):  # 100 images: 1 full batch, or 1 and a partial one
        model = _tiny_vit()
        history = keras.callbacks.History()
        fitting.train_budget(model, data, passes, 0, callbacks=[history], drop_remainder=drop_remainder)
        assert int(model.optimizer.iterations) == steps and len(history.history["loss"]) == 2
        assert model.optimizer._learning_rate.total_steps == steps  # the schedule spans the steps taken
    with pytest.raises(ValueError, match="steps must be a multiple of 10"):
        fitting.step_budget(25)


def test_the_training_pipeline_is_the_same_for_a_data_set_and_for_its_images_alone():
    import numpy as np

    from vitlib.data import datasets

    data = datasets.load_dataset("digits")
    config, _ = fitting.step_budget(10, batch_size=16)
    labelled = next(iter(fitting.training_batches(data, config, seed=3, repeat=True)))
    alone = next(iter(fitting.training_batches(data.x_train, config, seed=3, repeat=True)))
    np.testing.assert_array_equal(labelled[0].numpy(), alone.numpy())  # the same images in the same order
    assert labelled[1].shape == (16, 10)  # one-hot labels, for label smoothing
