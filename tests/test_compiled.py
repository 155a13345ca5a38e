"""vitlib.speed.compiled: a compiled model kept for the next run gives the numbers of a fresh compile."""
import dataclasses

import keras
import pytest

import vitlib
from vitlib import speed
from vitlib.speed import compiled
from vitlib.training import fitting, loop, recipes

pytestmark = pytest.mark.speed


def test_only_tensorflow_keeps_a_compiled_model_for_the_next_run():
    # JAX and PyTorch compile every run (a compiled model trained again from reset weights gave other numbers there).
    vit = vitlib.build_vit(image_size=8, channels=1, patch_size=4, hidden_size=8, depth=1, num_heads=2, mlp_dim=8, num_classes=10)
    compiles = []

    def compile_fn(wrapper):
        compiles.append(wrapper)
        wrapper.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return wrapper

    compiled.forget()
    with speed.switched():
        for _ in range(2):
            model, _ = speed.training_model("one key", vit, compile_fn, vit)
            assert model is vit
    assert len(compiles) == (1 if keras.backend.backend() == "tensorflow" else 2)
    model, _ = speed.training_model("one key", vit, compile_fn, vit)  # the speed layer off: always compiled
    assert len(compiles) == (2 if keras.backend.backend() == "tensorflow" else 3)
    compiled.forget()


@pytest.mark.tensorflow_only
def test_a_run_like_the_last_but_for_its_seed_reuses_its_compiled_model_with_the_numbers_of_a_fresh_compile(
        tmp_path, monkeypatch):
    # Random augmentation and dropout too: their random states must start as in a fresh model.
    cfg = lambda seed: recipes.recipe("digits", epochs=2, warmup_epochs=1, model={"depth": 1, "dropout": 0.1},  # noqa: E731
                                       augment="basic", train_on_validation=False, seed=seed)
    original, compiles = fitting.compile_for_training, []

    def spy(*args, **kwargs):
        compiles.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "compile_for_training", spy)

    def run(seed, name, fresh=False):
        if fresh:
            compiled.forget()
        metrics = loop.train(cfg(seed), tmp_path / name, verbose=0)
        return metrics["test_accuracy"], (tmp_path / name / "history.csv").read_text(), len(compiles)

    first = run(1, "first", fresh=True)
    second = run(0, "second")
    alone = run(0, "alone", fresh=True)
    again = run(1, "again")
    assert [r[2] for r in (first, second, alone, again)] == [1, 1, 2, 2]  # second and again reused a compiled model
    assert second[:2] == alone[:2] and again[:2] == first[:2]  # test accuracy, every epoch's numbers, to the last digit
    assert first[:2] != second[:2]  # the seeds do differ
    loop.train(dataclasses.replace(cfg(0), epochs=3), tmp_path / "longer", verbose=0)
    assert len(compiles) == 3  # another config (here the schedule's length) compiles its own


@pytest.mark.tensorflow_only
def test_run_grid_shares_one_compiled_model_per_architecture_with_the_numbers_of_one_model_per_run(monkeypatch):
    from vitlib.data import datasets
    from vitlib.training import experiments

    d = datasets.load_dataset("digits")
    build = lambda seed: vitlib.build_vit(None, image_size=8, channels=1, num_classes=10, patch_size=4,  # noqa: E731
                                          hidden_size=16, depth=1, num_heads=2, mlp_dim=16)
    compiles = []
    original = experiments._compile_run
    monkeypatch.setattr(experiments, "_compile_run", lambda *a: compiles.append(1) or original(*a))
    compiled.forget()
    shared = experiments.run_grid({"vit": build}, d, fractions=(0.25, 1.0), seeds=(0, 1), steps=40, progress=False)
    assert len(compiles) == 1  # four runs, one compiled model
    monkeypatch.setattr(speed, "shared_model", lambda key, compile_fn: (None, None))  # every run compiles its own
    alone = experiments.run_grid({"vit": build}, d, fractions=(0.25, 1.0), seeds=(0, 1), steps=40, progress=False)
    assert len(compiles) == 5
    for a, b in zip(shared, alone):
        assert (a["val_accuracy"], a["test_accuracy"]) == (b["val_accuracy"], b["test_accuracy"])
    compiled.forget()
