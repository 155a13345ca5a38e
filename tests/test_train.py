"""vitlib.train, the command line: recipes with their overrides, progress, wrong uses in one line, fine-tuning a
saved model at a new resolution."""
import json

import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib.training import fitting, loop, recipes, resolution

TINY = dict(image_size=8, channels=1, num_classes=10, patch_size=2, hidden_size=16, depth=1, num_heads=2, mlp_dim=16)


def tiny_vit(**kw):
    return vitlib.build_vit(None, **{**TINY, **kw})


def test_cli_builds_the_recipe_with_its_overrides(monkeypatch, capsys):
    from vitlib import train as cli

    configs = []
    keys = ("test_accuracy", "tested_model", "best_val_accuracy", "train_images", "train_seconds", "parameters",
            "teacher_test_accuracy", "teacher_seconds")
    monkeypatch.setattr(loop, "train", lambda config, out, verbose: configs.append(config) or dict.fromkeys(keys, 0))
    assert cli.main(["--epochs", "4", "--keep", "best"]) == 0
    assert configs[-1].model["stem"] == "shifted" and configs[-1].keep == "best" and configs[-1].epochs == 4
    assert not configs[-1].train_on_validation  # keeping the best epoch holds the validation images out
    assert cli.main([]) == 0 and configs[-1].train_on_validation and configs[-1].keep == "last"
    assert cli.main(["--no-train-on-validation"]) == 0 and not configs[-1].train_on_validation
    assert cli.main(["--variant", "Ti/4"]) == 0  # a named variant is a plain ViT...
    assert configs[-1].model["variant"] == "Ti/4" and configs[-1].model["stem"] == "patch"
    assert cli.main(["--variant", "Ti/4", "--stem", "conv"]) == 0  # ...unless a stem is asked for
    assert configs[-1].model["stem"] == "conv"
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["tested_model"] == 0


def test_cli_shows_progress_by_default_and_is_quiet_when_asked(monkeypatch, capsys):
    import sys

    from vitlib import train as cli

    seen = []
    keys = ("test_accuracy", "tested_model", "best_val_accuracy", "train_images", "train_seconds", "parameters",
            "teacher_test_accuracy", "teacher_seconds")
    monkeypatch.setattr(loop, "train", lambda config, out, verbose: seen.append(verbose) or dict.fromkeys(keys, 0))
    assert cli.main([]) == 0 and seen[-1] == 2  # output captured (a log, CI): one line per epoch
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert cli.main([]) == 0 and seen[-1] == 1  # a terminal: Keras' progress bar
    assert cli.main(["--quiet"]) == 0 and seen[-1] == 0
    assert cli.main(["--verbose", "2"]) == 0 and seen[-1] == 2
    with pytest.raises(SystemExit) as stop:
        cli.main(["--quiet", "--verbose", "1"])
    assert stop.value.code == 2 and "--quiet and --verbose 1 contradict each other" in capsys.readouterr().err


def test_cli_trains_translated_digits_with_their_recipe_and_canvas(monkeypatch, capsys):
    from vitlib import train as cli

    configs = []
    keys = ("test_accuracy", "tested_model", "best_val_accuracy", "train_images", "train_seconds", "parameters",
            "teacher_test_accuracy", "teacher_seconds")
    monkeypatch.setattr(loop, "train", lambda config, out, verbose: configs.append(config) or dict.fromkeys(keys, 0))
    assert cli.main(["--dataset", "translated_digits"]) == 0
    config = configs[-1]
    assert config.dataset == "translated_digits" and config.dataset_options == {"canvas_size": 16}
    assert config.model["stem"] == "shifted" and config.model["patch_size"] == 2
    assert cli.main(["--dataset", "translated_digits", "--canvas-size", "24"]) == 0
    assert configs[-1].dataset_options == {"canvas_size": 24} and configs[-1].model == config.model
    assert cli.main(["--recipe", "translated_digits_patches"]) == 0  # the recipe's own data set
    assert configs[-1].dataset_options == {"canvas_size": 12} and configs[-1].model["stem"] == "patch"
    assert configs[-1].jit_compile == "xla"  # as notebook 07 trains it: the same numbers from the command line
    # notebook 07's controls, each one option on the recipe's command (scripts/train_notebook_models.py)
    assert cli.main(["--recipe", "translated_digits_patches", "--dataset", "centred_digits"]) == 0
    assert configs[-1].dataset == "centred_digits" and configs[-1].dataset_options == {"canvas_size": 12}
    assert cli.main(["--recipe", "translated_digits_patches", "--shuffle-labels", "--no-track-layout"]) == 0
    assert configs[-1].shuffle_labels and not configs[-1].track_layout and not configs[-2].shuffle_labels


def test_cli_trains_mnist_5k_with_its_own_recipe(monkeypatch):
    from vitlib import train as cli

    configs = []
    keys = ("test_accuracy", "tested_model", "best_val_accuracy", "train_images", "train_seconds", "parameters",
            "teacher_test_accuracy", "teacher_seconds")
    monkeypatch.setattr(loop, "train", lambda config, out, verbose: configs.append(config) or dict.fromkeys(keys, 0))
    assert cli.main(["--dataset", "mnist_5k"]) == 0  # the data set's name picks its recipe
    config = configs[-1]
    assert config.dataset == "mnist_5k" and config.augment == "basic" and config.train_on_validation
    assert config.model["patch_size"] == 7 and config.model["stem"] == "shifted" and config.speed
    assert cli.main(["--recipe", "mnist_5k", "--epochs", "5", "--seed", "4"]) == 0
    assert (configs[-1].dataset, configs[-1].epochs, configs[-1].seed) == ("mnist_5k", 5, 4)


def test_the_mnist_5k_recipe_trains_a_28x28_vit_that_learns(tmp_path):
    from vitlib.training import recipes

    config = recipes.recipe("mnist_5k", epochs=2, warmup_epochs=1)
    metrics = loop.train(config, tmp_path / "mnist", verbose=0)
    assert metrics["train_images"] == 4000  # train + validation, as a fixed recipe's final run
    assert metrics["test_accuracy"] > 0.5  # two epochs; chance is 0.1


def test_cli_refuses_an_output_path_it_cannot_use_in_one_line(tmp_path, capsys):
    from vitlib import train as cli

    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert cli.main(["--out", str(notes)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: out_dir '{notes}' is a file, not a folder: give a folder path (it is created if missing).\n"
    assert cli.main(["--out", str(notes / "run")]) == 2  # a folder cannot be made under a file
    err = capsys.readouterr().err
    assert err.startswith(f"error: Cannot create the output folder '{notes / 'run'}' (Not a directory)")
    assert err.count("\n") == 1 and "Traceback" not in err and notes.read_text() == "mine"


def test_translated_digits_recipe_refuses_a_canvas_smaller_than_a_digit(tmp_path, capsys):
    from vitlib import train as cli

    assert cli.main(["--dataset", "translated_digits", "--canvas-size", "6", "--out", str(tmp_path / "runs" / "a")]) == 2
    assert "canvas_size=6 is smaller than the 8x8 images" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before training: no empty folders left behind
    with pytest.raises(ValueError, match="canvas_size does not apply to 'digits'"):
        loop.train(recipes.recipe("digits", dataset_options={"canvas_size": 16}), tmp_path / "other", verbose=0)


def test_cli_fine_tunes_a_saved_model_at_a_new_image_size(tmp_path, monkeypatch, capsys):
    from vitlib import train as cli

    saved = tiny_vit(patch_size=2)
    saved.save(tmp_path / "small.keras")
    started = {}
    original = resolution.at_resolution

    def spy(model, image_size, method="bilinear", seed=0):
        new = original(model, image_size, method, seed)
        started.update(saved=[w.copy() for w in model.get_weights()], new=[w.copy() for w in new.get_weights()],
                       method=method)
        return new

    monkeypatch.setattr(resolution, "at_resolution", spy)
    args = ["--dataset", "digits", "--resume-from", str(tmp_path / "small.keras"), "--image-size", "16",
            "--pos-resize", "bicubic", "--epochs", "1", "--warmup-epochs", "0", "--out", str(tmp_path / "run")]
    assert cli.main(args) == 0, capsys.readouterr().err
    assert started["method"] == "bicubic"
    table = ops.convert_to_numpy(saved.get_layer("position_embedding").embeddings)
    for old, new, weight in zip(started["saved"], started["new"], saved.weights):
        if weight is saved.get_layer("position_embedding").embeddings:
            np.testing.assert_array_equal(new, vitlib.resize_position_embeddings(table, (8, 8), interpolation="bicubic"))
        else:
            np.testing.assert_array_equal(new, old)  # every other weight copied unchanged
    tuned = resolution.load_vit(tmp_path / "run" / "last.keras")
    assert tuned.config.image_size == (16, 16) and tuned.config.grid_size == (8, 8)
    metrics = fitting.read_history(tmp_path / "run" / "history.csv")
    assert len(metrics["loss"]) == 1
    # wrong uses: a one-line error and exit code 2
    bad = [(["--resume-from", str(tmp_path / "nothing.keras")], "No saved model at"),
           (["--resume-from", str(tmp_path / "small.keras"), "--image-size", "15"], "15x15 is not divisible by patch size 2"),
           (["--resume-from", str(tmp_path / "small.keras"), "--stem", "conv"], "--stem cannot change the architecture"),
           (["--resume-from", str(tmp_path / "small.keras"), "--dataset", "position"], "has 10 classes, but 'position'")]
    for extra, message in bad:
        capsys.readouterr()
        assert cli.main([*extra, "--epochs", "1", "--warmup-epochs", "0", "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
