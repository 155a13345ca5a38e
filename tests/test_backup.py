"""vitlib.training.backup: a run killed at any moment resumes after its last finished epoch (the killed-process tests
that drive this through `python -m vitlib.train` are in test_loop.py and test_multiworker.py)."""
import json

import keras
import numpy as np
import pytest

import vitlib
from vitlib.training import backup, fitting, loop, recipes


def _model():
    model = vitlib.build_vit(None, image_size=8, channels=1, num_classes=10, patch_size=4, hidden_size=16, depth=1,
                             num_heads=2, mlp_dim=32)
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


class Interrupted(Exception):
    pass


def test_a_run_killed_while_writing_its_backup_resumes_from_the_last_complete_one(tmp_path):
    model = _model()
    for variable in model.optimizer.variables:  # as after some steps: a step count and moments that are not zero
        variable.assign(np.full(variable.shape, 3, keras.backend.standardize_dtype(variable.dtype)))
    callback = backup.Backup(str(tmp_path / "backup"))
    callback.set_model(model)
    callback.on_epoch_end(0)  # epoch 0 finished: backed up, the optimiser's state too
    saved = [v.numpy().copy() for v in model.weights]
    moments = [v.numpy().copy() for v in model.optimizer.variables]
    for v in model.weights:
        v.assign(v + 1.0)

    def dies_halfway(path, overwrite=True):  # as if killed while writing: half a file, then nothing
        with open(path, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n" + bytes(64))
        raise Interrupted

    model.save_weights = dies_halfway
    with pytest.raises(Interrupted):
        callback.on_epoch_end(1)
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 1

    fresh = _model()  # the restarted run
    assert backup.restore(fresh, tmp_path / "backup") == 1  # epoch 1 runs again, from the weights epoch 0 ended with
    for value, expected in zip([*fresh.weights, *fresh.optimizer.variables], [*saved, *moments]):
        np.testing.assert_array_equal(value.numpy(), expected)
    assert backup.epochs_done(tmp_path) == 1 and sorted(p.name for p in (tmp_path / "backup").iterdir()) == [
        "epoch1.weights.h5", "partial-epoch2.weights.h5", "training_metadata.json"]


def test_a_staged_best_model_takes_its_place_only_with_its_epochs_backup(tmp_path):
    model, best = _model(), tmp_path / "best.keras"
    callback = backup.Backup(str(tmp_path / "backup"), staged_files=[best])
    callback.set_model(model)
    backup.staged(best, 1).write_text("epoch 1's best")  # written by SaveBest(staged=True) at the end of epoch 0
    callback.on_epoch_end(0)
    assert best.read_text() == "epoch 1's best" and not backup.staged(best, 1).exists()
    backup.staged(best, 2).write_text("epoch 2's best")  # then stopped before epoch 1's backup: that epoch runs again
    backup.restore(_model(), tmp_path / "backup", staged_files=[best])
    assert best.read_text() == "epoch 1's best" and not backup.staged(best, 2).exists()
    # Stopped after the backup named epoch 2's file but before moving it: the restart finishes the move.
    backup.staged(best, 2).write_text("epoch 2's best")
    metadata = tmp_path / "backup" / "training_metadata.json"
    metadata.write_text(json.dumps({**json.loads(metadata.read_text()), "moves": ["best-epoch2.keras"]}))
    backup.restore(_model(), tmp_path / "backup", staged_files=[best])
    assert best.read_text() == "epoch 2's best" and not backup.staged(best, 2).exists()


def test_a_backup_whose_weights_are_missing_is_refused_by_name(tmp_path):
    callback = backup.Backup(str(tmp_path / "backup"))
    callback.set_model(_model())
    callback.on_epoch_end(0)
    next((tmp_path / "backup").glob("*.weights.h5")).unlink()
    with pytest.raises(FileNotFoundError, match=r"names epoch1.weights.h5, which is missing.*Delete .*backup"):
        backup.restore(_model(), tmp_path / "backup")
    assert backup.restore(_model(), tmp_path / "no backup") == 0  # no backup at all: a fresh run


def test_finish_leaves_no_backup_behind(tmp_path):
    callback = backup.Backup(str(tmp_path / "backup"))
    callback.set_model(_model())
    callback.on_epoch_end(0)
    (tmp_path / "backup.finished").mkdir()  # left by a stop in the middle of an earlier finish
    backup.finish(tmp_path)
    assert list(tmp_path.iterdir()) == [] and backup.epochs_done(tmp_path) == 0


def test_the_history_keeps_only_the_epochs_the_backup_holds(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,accuracy,loss\r\n0,0.5,1.0\r\n1,0.6,0.9\r\n2,0.7,0.8\r\n")
    backup.trim_history(tmp_path)  # no backup at all: killed before the first one was named, every epoch runs again
    assert (tmp_path / "history.csv").read_bytes() == b"epoch,accuracy,loss\r\n"
    (tmp_path / "history.csv").write_text("epoch,accuracy,loss\r\n0,0.5,1.0\r\n1,0.6,0.9\r\n")
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "training_metadata.json").write_text('{"epoch": 1, "batch": 0, "weights": "x"}')
    backup.trim_history(tmp_path)
    assert (tmp_path / "history.csv").read_bytes() == b"epoch,accuracy,loss\r\n0,0.5,1.0\r\n"


@pytest.mark.tensorflow_only
def test_a_run_killed_after_its_last_epoch_resumes_with_nothing_to_train(tmp_path, monkeypatch):
    cfg = recipes.recipe("digits", epochs=2, warmup_epochs=1, model={"depth": 1}, train_on_validation=False)

    def killed(out):
        raise Interrupted

    monkeypatch.setattr(backup, "finish", killed)  # stopped after metrics.json, before the backup is dropped
    with pytest.raises(Interrupted):
        loop.train(cfg, tmp_path, verbose=0)
    first = json.loads((tmp_path / "metrics.json").read_text())
    monkeypatch.undo()
    again = loop.train(cfg, tmp_path, verbose=0)
    assert again["epochs_this_run"] == [] and again["test_accuracy"] == first["test_accuracy"]
    assert fitting.read_history(tmp_path / "history.csv")["epoch"] == [0, 1]  # each epoch's row once
    assert not (tmp_path / "backup").exists()  # finished now: the next run in this folder starts afresh
