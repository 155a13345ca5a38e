"""vitlib.training.loop: a recipe's run writes its models, history and metrics; it resumes after being killed at any
moment; it trains on several devices as on one."""
import csv
import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib.data import datasets, pipeline
from vitlib.training import backup, fitting, loop, recipes

ROOT = Path(__file__).resolve().parents[1]


def _tiny_vit():
    return vitlib.build_vit(None, image_size=8, channels=1, num_classes=10, patch_size=4, hidden_size=16, depth=1,
                            num_heads=2, mlp_dim=32)


@pytest.mark.tensorflow_only
def test_train_writes_metrics_and_reloadable_best_and_last_models(tmp_path):
    cfg = recipes.recipe("digits", epochs=3, warmup_epochs=1, model={"depth": 1}, train_on_validation=False)
    assert cfg.keep == "last"  # the digits recipe tests its last epoch
    metrics = loop.train(cfg, tmp_path, verbose=0)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test_accuracy"] == metrics["test_accuracy"] and saved["config"]["epochs"] == 3
    assert metrics["history"]["epoch"] == [0, 1, 2] and len(metrics["history"]["val_accuracy"]) == 3
    assert max(metrics["history"]["val_accuracy"]) == pytest.approx(metrics["best_val_accuracy"])
    assert saved["epochs_this_run"] == [0, 1, 2] and saved["train_seconds"] > 0
    assert metrics["test_accuracy"] > 0.5  # 3 epochs of a 1-layer ViT: far above chance (10 %)
    ds = vitlib.load_dataset("digits")
    accuracy = lambda model, x, y: float(np.mean(np.argmax(ops.convert_to_numpy(model(x)), -1) == y))  # noqa: E731
    best, last = (keras.saving.load_model(tmp_path / name) for name in ("best.keras", "last.keras"))
    assert isinstance(best, vitlib.VisionTransformer) and isinstance(last, vitlib.VisionTransformer)
    assert accuracy(best, ds.x_val, ds.y_val) == pytest.approx(metrics["best_val_accuracy"], abs=1e-6)
    assert accuracy(last, ds.x_val, ds.y_val) == pytest.approx(metrics["history"]["val_accuracy"][-1], abs=1e-6)
    assert saved["tested_model"] == "last.keras" and saved["train_images"] == len(ds.y_train)
    assert accuracy(last, ds.x_test, ds.y_test) == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


def test_tensorflow_trains_up_to_32_steps_per_call_of_its_step_with_the_numbers_of_one_step_per_call(tmp_path, monkeypatch):
    # train() asks Keras for steps_per_execution = the epoch's steps, at most 32, on TensorFlow (less overhead per
    # step), 1 on JAX (which would unroll them) and PyTorch (which has only 1); a run gives the same numbers either way.
    cfg = recipes.recipe("digits", epochs=2, warmup_epochs=1, model={"depth": 1}, train_on_validation=False)
    original, asked = fitting.compile_for_training, []

    def run(name, force=None):
        def spy(*args, steps_per_execution=1, **kwargs):
            asked.append(steps_per_execution)
            return original(*args, steps_per_execution=force or steps_per_execution, **kwargs)

        monkeypatch.setattr(loop, "compile_for_training", spy)
        metrics = loop.train(cfg, tmp_path / name, verbose=0)
        return metrics["test_accuracy"], (tmp_path / name / "history.csv").read_text()

    if keras.backend.backend() != "tensorflow":  # one step per call, so nothing to compare: stop at the compile

        class Compiled(Exception):
            pass

        def stop(*args, steps_per_execution=1, **kwargs):
            asked.append(steps_per_execution)
            raise Compiled

        monkeypatch.setattr(loop, "compile_for_training", stop)
        with pytest.raises(Compiled):
            loop.train(cfg, tmp_path / "default", verbose=0)
        assert asked == [1]
        return
    default = run("default")
    one = run("one", force=1)
    assert asked == [min(len(vitlib.load_dataset("digits").y_train) // cfg.batch_size, 32)] * 2  # one forced to 1
    assert default == one  # test accuracy and every epoch's losses and accuracies, to the last digit


@pytest.mark.tensorflow_only
def test_final_run_trains_on_the_validation_images_too(tmp_path):
    cfg = recipes.recipe("digits", epochs=2, warmup_epochs=1, model={"depth": 1})
    assert cfg.train_on_validation and cfg.keep == "last"
    metrics = loop.train(cfg, tmp_path, verbose=0)
    ds = vitlib.load_dataset("digits")
    assert metrics["train_images"] == len(ds.y_train) + len(ds.y_val) == 1438
    assert metrics["best_val_accuracy"] is None and "val_accuracy" not in metrics["history"]
    assert len(metrics["history"]["loss"]) == 2 and not (tmp_path / "best.keras").exists()
    last = keras.saving.load_model(tmp_path / "last.keras")
    predicted = np.argmax(ops.convert_to_numpy(last(ds.x_test)), -1)
    assert float(np.mean(predicted == ds.y_test)) == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert metrics["test_accuracy"] > 0.3  # 2 epochs of a 1-layer ViT; chance is 10 %


@pytest.mark.tensorflow_only
def test_train_with_a_teacher_saves_it_and_reports_it(tmp_path):
    cfg = recipes.recipe("digits", epochs=2, warmup_epochs=1, distill=0.5, model={"depth": 1})
    metrics = loop.train(cfg, tmp_path, verbose=0)
    assert (tmp_path / "teacher.keras").exists() and metrics["teacher_seconds"] > 0
    assert metrics["teacher_test_accuracy"] > 0.3 and metrics["test_accuracy"] > 0.3  # chance: 10 %
    student = keras.saving.load_model(tmp_path / "last.keras")
    assert isinstance(student, vitlib.VisionTransformer) and student.output_shape == (None, 10)  # the student alone


def epochs_in(csv_path):
    lines = Path(csv_path).read_text().splitlines()[1:] if Path(csv_path).exists() else []
    return [int(line.split(",")[0]) for line in lines if line and line[0].isdigit()]


@pytest.mark.tensorflow_only
def test_killed_training_resumes_after_the_last_finished_epoch(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "vitlib.train", "--dataset", "digits", "--epochs", "6", "--warmup-epochs", "1",
           "--out", str(out), "--verbose", "0"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    first = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while len(epochs_in(out / "history.csv")) < 2:
        assert first.poll() is None, first.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "training did not finish two epochs in time"
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)  # no clean-up: as if the machine died
    first.wait()
    finished_before = epochs_in(out / "history.csv")
    assert finished_before[:2] == [0, 1] and finished_before[-1] < 5 and not (out / "metrics.json").exists()

    second = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    resumed = metrics["epochs_this_run"]
    # Nothing finished is redone; killed after an epoch's row but before its backup, that epoch runs again.
    assert resumed[0] in (finished_before[-1], finished_before[-1] + 1)
    assert resumed[-1] == 5
    assert epochs_in(out / "history.csv") == [0, 1, 2, 3, 4, 5]  # every epoch once: none twice, none lost
    assert json.loads(second.stdout.strip().splitlines()[-1])["test_accuracy"] == metrics["test_accuracy"]


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("stop", ["before", "after"])
def test_a_run_stopped_next_to_an_epochs_backup_resumes_with_every_epochs_row_once(tmp_path, monkeypatch, stop):
    # Stopped at epoch 1's end just before its backup (the epoch runs again: its first row must go) or just after
    # it (the epoch is done: its row must be there already).
    cfg = recipes.recipe("digits", epochs=3, warmup_epochs=1, model={"depth": 1}, train_on_validation=False)

    class Stopped(Exception):
        pass

    class StopsAtEpoch1(backup.Backup):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1 and stop == "before":
                raise Stopped
            super().on_epoch_end(epoch, logs)
            if epoch == 1:
                raise Stopped

    real = backup.Backup
    monkeypatch.setattr(backup, "Backup", StopsAtEpoch1)
    with pytest.raises(Stopped):
        loop.train(cfg, tmp_path, verbose=0)
    monkeypatch.setattr(backup, "Backup", real)
    metrics = loop.train(cfg, tmp_path, verbose=0)
    assert metrics["epochs_this_run"] == ([1, 2] if stop == "before" else [2])
    assert epochs_in(tmp_path / "history.csv") == [0, 1, 2]  # each epoch once, none lost
    # best.keras is the best epoch's model, not the one the stopped attempt saved for an epoch that ran again
    data = datasets.load_dataset("digits", seed=0)
    best = keras.saving.load_model(tmp_path / "best.keras")
    assert fitting.accuracy(best, data.x_val, data.y_val) == pytest.approx(max(metrics["history"]["val_accuracy"]))
    assert sorted(p.name for p in tmp_path.glob("*.keras")) == ["best.keras", "last.keras"]
    # A fresh run next in another folder starts at epoch 0 (the resumed one started where its backup ended)
    assert loop.train(dataclasses.replace(cfg, seed=1), tmp_path / "fresh", verbose=0)["epochs_this_run"] == [0, 1, 2]


MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from vitlib.training import loop, recipes
out = {}
for strategy in ("none", "mirrored"):
    cfg = recipes.recipe("digits", epochs=2, warmup_epochs=1, augment="none", strategy=strategy, model={"depth": 1})
    m = loop.train(cfg, sys.argv[1] + "/" + strategy, verbose=0)
    out[strategy] = {"devices": m["devices"], "val": m["best_val_accuracy"], "test": m["test_accuracy"],
                     "loss": open(sys.argv[1] + "/" + strategy + "/history.csv").read()}
print(json.dumps(out))
"""


@pytest.mark.tensorflow_only
def test_mirrored_training_on_two_logical_cpus_matches_one_device(tmp_path):
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            timeout=600, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(result.stdout.strip().splitlines()[-1])
    assert runs["none"]["devices"] == 1 and runs["mirrored"]["devices"] == 2
    losses = {k: [float(row["loss"]) for row in csv.DictReader(io.StringIO(v["loss"]))] for k, v in runs.items()}
    assert len(losses["none"]) == len(losses["mirrored"]) == 2
    # Same data, same schedule: the first epoch's mean loss agrees closely (it is 2.15 for both, ~3e-4 apart;
    # a wrong gradient reduction across replicas would show here). Later epochs drift apart the way two runs
    # with different float summation orders do, so only learning itself is asserted for them.
    assert losses["mirrored"][0] == pytest.approx(losses["none"][0], rel=5e-3)
    for run in runs.values():
        assert run["test"] > 0.5  # chance is 10 %
    assert losses["mirrored"][1] < losses["mirrored"][0] - 0.3 and losses["none"][1] < losses["none"][0] - 0.3


def test_translated_digits_train_with_a_fresh_placement_every_epoch(tmp_path, monkeypatch):
    seen = []
    original = pipeline.make_pipeline

    def spy(*args, **kwargs):
        seen.append(kwargs.get("map_fn"))
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "make_pipeline", spy)  # evaluation
    monkeypatch.setattr(fitting, "make_pipeline", spy)  # training (fitting.training_batches)
    config = recipes.recipe("translated_digits_patches", epochs=1, warmup_epochs=0, jit_compile="auto",
                             model={"hidden_size": 16, "depth": 1, "num_heads": 2, "mlp_dim": 16})
    result = loop.train(config, tmp_path, verbose=0)
    assert seen[0] is not None and all(f is None for f in seen[1:])  # training data only, tests untouched
    assert result["train_images"] == 1295 and 0 <= result["test_accuracy"] <= 1  # validation held out


def test_shuffle_labels_trains_on_permuted_labels_and_tests_on_true_ones(tmp_path, monkeypatch):
    labels = []
    original = pipeline.make_pipeline
    spy = lambda x, y, *a, **k: labels.append(y) or original(x, y, *a, **k)  # noqa: E731
    monkeypatch.setattr(loop, "make_pipeline", spy)  # evaluation
    monkeypatch.setattr(fitting, "make_pipeline", spy)  # training (fitting.training_batches)
    config = recipes.recipe("digits", epochs=1, warmup_epochs=0, shuffle_labels=True, seed=3,
                             model={"hidden_size": 16, "depth": 1, "num_heads": 2, "mlp_dim": 16})
    loop.train(config, tmp_path, verbose=0)
    digits = datasets.load_dataset("digits", seed=3).with_validation_in_training()
    np.testing.assert_array_equal(labels[0], digits.with_shuffled_labels(3).y_train)
    assert np.mean(labels[0] == digits.y_train) < 0.2


