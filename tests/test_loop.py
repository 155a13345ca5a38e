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
from vitlib import backup, experiments, training
from vitlib import data as data_module

ROOT = Path(__file__).resolve().parents[1]


def test_warmup_cosine_schedule_is_linear_then_the_cosine_of_its_formula():
    peak, final, total, warm = 1e-3, 1e-5, 100, 10
    s = training.WarmupCosine(peak, total_steps=total, warmup_steps=warm, final=final)
    lr = np.array([float(ops.convert_to_numpy(s(step))) for step in range(total + 1)])
    steps = np.arange(total + 1)
    progress = np.clip((steps - warm) / (total - warm), 0, 1)
    formula = np.where(steps < warm, peak * steps / warm, final + 0.5 * (peak - final) * (1 + np.cos(np.pi * progress)))
    np.testing.assert_allclose(lr, formula, atol=2e-10)
    keras_schedule = keras.optimizers.schedules.CosineDecay(0.0, total - warm, alpha=final / peak, warmup_target=peak,
                                                            warmup_steps=warm)
    keras_lr = np.array([float(ops.convert_to_numpy(keras_schedule(step))) for step in range(total + 1)])
    np.testing.assert_allclose(lr, keras_lr, atol=2e-10)  # the same schedule as Keras' own
    assert lr[0] == 0 and (np.diff(lr[:11]) > 0).all() and (np.diff(lr[10:]) <= 1e-12).all()
    clone = type(s).from_config(s.get_config())
    assert float(ops.convert_to_numpy(clone(30))) == float(ops.convert_to_numpy(s(30)))


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
    learning_rate, exclude = options.pop("learning_rate", training.WarmupCosine(1e-2, 10, 2)), options.pop("exclude", None)
    weights, previous = [], keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(policy)
        for make_optimiser in (keras.optimizers.AdamW, vitlib.schedule.adamw):
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
    choose = vitlib.schedule.AdamW._direct

    def recorded(self, *args):
        direct.append(choose(self, *args))
        return direct[-1]

    monkeypatch.setattr(vitlib.schedule.AdamW, "_direct", recorded)
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

    optimiser = vitlib.schedule.adamw(1e-3, weight_decay=0.05)
    assert type(optimiser) is vitlib.schedule.AdamW  # on TensorFlow: the subclass
    assert optimiser._direct([tf.zeros(3)])
    assert not optimiser._direct([tf.IndexedSlices(tf.zeros((1, 3)), tf.constant([0]), tf.constant([2, 3]))])
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        assert not optimiser._direct([tf.zeros(3)])
    assert not vitlib.schedule.AdamW(1e-3, amsgrad=True)._direct([tf.zeros(3)])

    class Mine(vitlib.schedule.AdamW):  # a learner's own update: Keras' path, which calls it
        def update_step(self, gradient, variable, learning_rate):
            return super().update_step(gradient, variable, learning_rate)

    assert not Mine(1e-3)._direct([tf.zeros(3)])
    clone = vitlib.schedule.AdamW.from_config(optimiser.get_config())
    assert type(clone) is vitlib.schedule.AdamW and clone.weight_decay == 0.05


def test_recipes_and_bad_configs():
    cfg = training.recipe("digits", epochs=5, model={"depth": 2})
    assert cfg.epochs == 5 and cfg.model["depth"] == 2 and cfg.model["hidden_size"] == 64
    with pytest.raises(ValueError, match="warmup_epochs must be in"):
        training.recipe("digits", epochs=3, warmup_epochs=3)
    with pytest.raises(ValueError, match="Unknown recipe 'imagenet'"):
        training.recipe("imagenet")
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        training.TrainConfig(learning_rate=0)
    with pytest.raises(ValueError, match="distill is the teacher's weight"):
        training.TrainConfig(distill=1.5)
    with pytest.raises(ValueError, match="translate is a fraction"):
        training.TrainConfig(translate=0.6)
    with pytest.raises(ValueError, match="Unknown keep 'final'"):
        training.TrainConfig(keep="final")
    with pytest.raises(ValueError, match="train_on_validation=True leaves no validation images"):
        training.TrainConfig(train_on_validation=True, keep="best")
    assert training.recipe("digits").train_on_validation  # the final digits run trains on the validation images...
    assert not training.recipe("digits", keep="best").train_on_validation  # ...unless it must pick an epoch by them


def test_save_best_saves_on_improvement_and_on_ties_so_the_later_epoch_wins(tmp_path):
    saved = []

    class Recorder:
        def save(self, path):
            saved.append(epoch)
            Path(path).write_text(str(epoch))

    callback = training.SaveBest(Recorder(), tmp_path / "best.keras")
    for epoch, accuracy in enumerate([0.5, 0.7, 0.6, 0.7, 0.65]):
        callback.on_epoch_end(epoch, {"val_accuracy": accuracy})
    assert saved == [0, 1, 3] and callback.best == 0.7
    assert [p.name for p in tmp_path.iterdir()] == ["best.keras"] and (tmp_path / "best.keras").read_text() == "3"


def test_distillation_loss_matches_its_formula(rng):
    student, teacher = rng.normal(size=(5, 4)).astype("float32"), rng.normal(size=(5, 4)).astype("float32")
    labels = np.eye(4, dtype="float32")[rng.integers(0, 4, 5)]
    softmax = lambda z: np.exp(z - z.max(-1, keepdims=True)) / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)  # noqa: E731
    ce = -(labels * np.log(softmax(student))).sum(-1)
    p, q = softmax(teacher / 3.0), softmax(student / 3.0)
    kl = (p * np.log(p / q)).sum(-1)
    expected = np.mean(0.25 * ce + 0.75 * 9.0 * kl)
    loss = training.DistillationLoss(4, alpha=0.75, temperature=3.0)
    got = float(ops.convert_to_numpy(loss(labels, np.concatenate([student, teacher], -1))))
    assert got == pytest.approx(expected, rel=1e-5)
    # alpha 0 is plain cross-entropy; a teacher equal to the student adds nothing at alpha 1
    plain = training.DistillationLoss(4, alpha=0.0)(labels, np.concatenate([student, teacher], -1))
    assert float(ops.convert_to_numpy(plain)) == pytest.approx(ce.mean(), rel=1e-5)
    same = training.DistillationLoss(4, alpha=1.0)(labels, np.concatenate([student, student], -1))
    assert float(ops.convert_to_numpy(same)) == pytest.approx(0.0, abs=1e-6)
    clone = training.DistillationLoss.from_config(loss.get_config())
    assert (clone.num_classes, clone.alpha, clone.temperature) == (4, 0.75, 3.0)


def test_distillation_trains_the_student_and_leaves_the_teacher_alone(rng):
    student = _tiny_vit()
    teacher = training.small_cnn((8, 8, 1), 10)
    model = training.distillation_model(student, teacher)
    assert model.output_shape == (None, 20)
    cfg = training.recipe("digits", epochs=2, warmup_epochs=1)
    training.compile_for_training(model, cfg, 4, loss=training.DistillationLoss(10, 0.5),
                                  metrics=[training.student_accuracy(10)])
    x = rng.random((64, 8, 8, 1)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, 64)]
    teacher_before = [w.copy() for w in teacher.get_weights()]
    student_before = [w.copy() for w in student.get_weights()]
    logs = model.fit(x, y, batch_size=16, epochs=2, verbose=0).history
    assert "accuracy" in logs and 0 <= logs["accuracy"][-1] <= 1
    assert all(np.array_equal(a, b) for a, b in zip(teacher_before, teacher.get_weights()))
    assert not all(np.array_equal(a, b) for a, b in zip(student_before, student.get_weights()))
    out = ops.convert_to_numpy(model(x[:3]))
    np.testing.assert_allclose(out[:, :10], ops.convert_to_numpy(student(x[:3])), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[:, 10:], ops.convert_to_numpy(teacher(x[:3])), rtol=1e-5, atol=1e-5)


def test_auto_precision_is_float32_without_a_gpu_and_mixed_with_one(monkeypatch):
    from vitlib import devices

    backend = keras.backend.backend()
    monkeypatch.setattr(devices, "gpu_available", lambda: False)  # whatever this machine has
    assert training.resolve_precision("auto") == "float32"
    assert training.resolve_jit("auto") is (backend == "jax")  # JAX always jits: op by op it is many times slower
    assert training.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"  # an explicit setting is kept
    assert training.resolve_jit(False) is False and training.resolve_jit(True) is True
    assert training.resolve_jit("xla") is (backend != "torch")  # XLA on CPUs too, never torch.compile
    monkeypatch.setattr(devices, "gpu_available", lambda: True)
    assert training.resolve_jit("auto") is (backend != "torch")
    assert training.resolve_jit("xla") is (backend != "torch")
    with pytest.raises(ValueError, match="Unknown jit_compile 'yes'. Choose one of: 'auto', 'xla', True, False"):
        training.resolve_jit("yes")
    if backend != "tensorflow":  # TensorFlow asks the GPU for its compute capability
        assert training.resolve_precision("auto") == "mixed_bfloat16"


@pytest.mark.tensorflow_only
def test_train_writes_metrics_and_reloadable_best_and_last_models(tmp_path):
    cfg = training.recipe("digits", epochs=3, warmup_epochs=1, model={"depth": 1}, train_on_validation=False)
    assert cfg.keep == "last"  # the digits recipe tests its last epoch
    metrics = training.train(cfg, tmp_path, verbose=0)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test_accuracy"] == metrics["test_accuracy"] and saved["config"]["epochs"] == 3
    assert metrics["history"]["epoch"] == [0, 1, 2] and len(metrics["history"]["val_accuracy"]) == 3
    assert max(metrics["history"]["val_accuracy"]) == pytest.approx(metrics["best_val_accuracy"])
    assert saved["epochs_this_run"] == [0, 1, 2] and saved["train_seconds"] > 0
    assert metrics["test_accuracy"] > 0.5  # 3 epochs of a 1-layer ViT: far above chance (10 %)
    ds = vitlib.data.load_dataset("digits")
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
    cfg = training.recipe("digits", epochs=2, warmup_epochs=1, model={"depth": 1}, train_on_validation=False)
    original, asked = training.compile_for_training, []

    def run(name, force=None):
        def spy(*args, steps_per_execution=1, **kwargs):
            asked.append(steps_per_execution)
            return original(*args, steps_per_execution=force or steps_per_execution, **kwargs)

        monkeypatch.setattr(training, "compile_for_training", spy)
        metrics = training.train(cfg, tmp_path / name, verbose=0)
        return metrics["test_accuracy"], (tmp_path / name / "history.csv").read_text()

    training._compiled.forget()  # so that this run compiles its own model (not the one an earlier test left)
    if keras.backend.backend() != "tensorflow":  # one step per call, so nothing to compare: stop at the compile

        class Compiled(Exception):
            pass

        def stop(*args, steps_per_execution=1, **kwargs):
            asked.append(steps_per_execution)
            raise Compiled

        monkeypatch.setattr(training, "compile_for_training", stop)
        with pytest.raises(Compiled):
            training.train(cfg, tmp_path / "default", verbose=0)
        assert asked == [1]
        return
    default = run("default")
    training._compiled.forget()  # and the next one too (the same config: it would reuse this one's)
    one = run("one", force=1)
    assert asked == [min(len(vitlib.data.load_dataset("digits").y_train) // cfg.batch_size, 32)] * 2  # one forced to 1
    assert default == one  # test accuracy and every epoch's losses and accuracies, to the last digit


def test_only_tensorflow_keeps_a_compiled_model_for_the_next_run():
    # JAX and PyTorch compile every run (a compiled model trained again from reset weights gave other numbers there).
    cfg = training.recipe("digits", model={"depth": 1})
    vit = vitlib.build_vit(image_size=8, channels=1, patch_size=4, hidden_size=8, depth=1, num_heads=2, mlp_dim=8, num_classes=10)
    compiled = []

    def compile_fn(wrapper):
        compiled.append(wrapper)
        wrapper.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return wrapper

    training._compiled.forget()
    for seed in (0, 1):
        model, _ = training._compiled.training_model(dataclasses.replace(cfg, seed=seed), vit, vit, compile_fn, [8])
        assert model is vit
    assert len(compiled) == (1 if keras.backend.backend() == "tensorflow" else 2)
    training._compiled.forget()


@pytest.mark.tensorflow_only
def test_a_run_like_the_last_but_for_its_seed_reuses_its_compiled_model_with_the_numbers_of_a_fresh_compile(
        tmp_path, monkeypatch):
    # Random augmentation and dropout too: their random states must start as in a fresh model.
    cfg = lambda seed: training.recipe("digits", epochs=2, warmup_epochs=1, model={"depth": 1, "dropout": 0.1},  # noqa: E731
                                       augment="basic", train_on_validation=False, seed=seed)
    original, compiled = training.compile_for_training, []

    def spy(*args, **kwargs):
        compiled.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "compile_for_training", spy)

    def run(seed, name, fresh=False):
        if fresh:
            training._compiled.forget()
        metrics = training.train(cfg(seed), tmp_path / name, verbose=0)
        return metrics["test_accuracy"], (tmp_path / name / "history.csv").read_text(), len(compiled)

    first = run(1, "first", fresh=True)
    second = run(0, "second")
    alone = run(0, "alone", fresh=True)
    again = run(1, "again")
    assert [r[2] for r in (first, second, alone, again)] == [1, 1, 2, 2]  # second and again reused a compiled model
    assert second[:2] == alone[:2] and again[:2] == first[:2]  # test accuracy, every epoch's numbers, to the last digit
    assert first[:2] != second[:2]  # the seeds do differ
    training.train(dataclasses.replace(cfg(0), epochs=3), tmp_path / "longer", verbose=0)
    assert len(compiled) == 3  # another config (here the schedule's length) compiles its own


@pytest.mark.tensorflow_only
def test_final_run_trains_on_the_validation_images_too(tmp_path):
    cfg = training.recipe("digits", epochs=2, warmup_epochs=1, model={"depth": 1})
    assert cfg.train_on_validation and cfg.keep == "last"
    metrics = training.train(cfg, tmp_path, verbose=0)
    ds = vitlib.data.load_dataset("digits")
    assert metrics["train_images"] == len(ds.y_train) + len(ds.y_val) == 1438
    assert metrics["best_val_accuracy"] is None and "val_accuracy" not in metrics["history"]
    assert len(metrics["history"]["loss"]) == 2 and not (tmp_path / "best.keras").exists()
    last = keras.saving.load_model(tmp_path / "last.keras")
    predicted = np.argmax(ops.convert_to_numpy(last(ds.x_test)), -1)
    assert float(np.mean(predicted == ds.y_test)) == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert metrics["test_accuracy"] > 0.3  # 2 epochs of a 1-layer ViT; chance is 10 %


@pytest.mark.tensorflow_only
def test_train_with_a_teacher_saves_it_and_reports_it(tmp_path):
    cfg = training.recipe("digits", epochs=2, warmup_epochs=1, distill=0.5, model={"depth": 1})
    metrics = training.train(cfg, tmp_path, verbose=0)
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
    cfg = training.recipe("digits", epochs=3, warmup_epochs=1, model={"depth": 1}, train_on_validation=False)

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
        training.train(cfg, tmp_path, verbose=0)
    monkeypatch.setattr(backup, "Backup", real)
    metrics = training.train(cfg, tmp_path, verbose=0)
    assert metrics["epochs_this_run"] == ([1, 2] if stop == "before" else [2])
    assert epochs_in(tmp_path / "history.csv") == [0, 1, 2]  # each epoch once, none lost
    # best.keras is the best epoch's model, not the one the stopped attempt saved for an epoch that ran again
    data = training.load_dataset("digits", seed=0)
    best = keras.saving.load_model(tmp_path / "best.keras")
    assert experiments.accuracy(best, data.x_val, data.y_val) == pytest.approx(max(metrics["history"]["val_accuracy"]))
    assert sorted(p.name for p in tmp_path.glob("*.keras")) == ["best.keras", "last.keras"]
    # A fresh run next (it reuses the resumed run's compiled model, which BackupAndRestore told to start at epoch 1 or 2)
    assert training.train(dataclasses.replace(cfg, seed=1), tmp_path / "fresh", verbose=0)["epochs_this_run"] == [0, 1, 2]


MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from vitlib import data as data_module
from vitlib import training
out = {}
for strategy in ("none", "mirrored"):
    cfg = training.recipe("digits", epochs=2, warmup_epochs=1, augment="none", strategy=strategy, model={"depth": 1})
    m = training.train(cfg, sys.argv[1] + "/" + strategy, verbose=0)
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


def test_cli_builds_the_recipe_with_its_overrides(monkeypatch, capsys):
    from vitlib import train as cli

    configs = []
    keys = ("test_accuracy", "tested_model", "best_val_accuracy", "train_images", "train_seconds", "parameters",
            "teacher_test_accuracy", "teacher_seconds")
    monkeypatch.setattr(training, "train", lambda config, out, verbose: configs.append(config) or dict.fromkeys(keys, 0))
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
    monkeypatch.setattr(training, "train", lambda config, out, verbose: seen.append(verbose) or dict.fromkeys(keys, 0))
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
    monkeypatch.setattr(training, "train", lambda config, out, verbose: configs.append(config) or dict.fromkeys(keys, 0))
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
        training.train(training.recipe("digits", dataset_options={"canvas_size": 16}), tmp_path / "other", verbose=0)


def test_translated_digits_train_with_a_fresh_placement_every_epoch(tmp_path, monkeypatch):
    seen = []
    original = data_module.make_pipeline

    def spy(*args, **kwargs):
        seen.append(kwargs.get("map_fn"))
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "make_pipeline", spy)
    config = training.recipe("translated_digits_patches", epochs=1, warmup_epochs=0, jit_compile="auto",
                             model={"hidden_size": 16, "depth": 1, "num_heads": 2, "mlp_dim": 16})
    result = training.train(config, tmp_path, verbose=0)
    assert seen[0] is not None and all(f is None for f in seen[1:])  # training data only, tests untouched
    assert result["train_images"] == 1295 and 0 <= result["test_accuracy"] <= 1  # validation held out


def test_shuffle_labels_trains_on_permuted_labels_and_tests_on_true_ones(tmp_path, monkeypatch):
    labels = []
    original = data_module.make_pipeline
    monkeypatch.setattr(training, "make_pipeline", lambda x, y, *a, **k: labels.append(y) or original(x, y, *a, **k))
    config = training.recipe("digits", epochs=1, warmup_epochs=0, shuffle_labels=True, seed=3,
                             model={"hidden_size": 16, "depth": 1, "num_heads": 2, "mlp_dim": 16})
    training.train(config, tmp_path, verbose=0)
    digits = data_module.load_dataset("digits", seed=3).with_validation_in_training()
    np.testing.assert_array_equal(labels[0], digits.with_shuffled_labels(3).y_train)
    assert np.mean(labels[0] == digits.y_train) < 0.2


def test_a_model_saved_with_the_recipes_optimiser_loads_after_a_plain_import_vitlib(tmp_path):
    # The optimiser's WarmupCosine schedule is saved with the model; it must be registered by `import vitlib`
    # alone, without importing vitlib.training (a fresh process, as a user loading the file would have).
    model = _tiny_vit()
    training.compile_for_training(model, training.recipe("digits", epochs=2, warmup_epochs=1), steps_per_epoch=3)
    model.save(tmp_path / "compiled.keras")
    code = ("import sys, keras, vitlib; m = keras.saving.load_model(sys.argv[1]); "
            "print(type(m.optimizer).__module__, type(m.optimizer._learning_rate).__name__, 'vitlib.training' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "compiled.keras")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    optimiser_module = type(training.adamw(1e-3)).__module__  # vitlib.schedule on TensorFlow, Keras' elsewhere
    assert out.stdout.split() == [optimiser_module, "WarmupCosine", "False"]
    if keras.backend.backend() == "tensorflow":  # saved here, loaded on PyTorch: Keras' own PyTorch AdamW
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "compiled.keras")], capture_output=True,
                             text=True, env={**os.environ, "KERAS_BACKEND": "torch"})
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.split() == ["keras.src.backend.torch.optimizers.torch_adamw", "WarmupCosine", "False"]
