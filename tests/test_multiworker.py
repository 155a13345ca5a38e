"""Several machines, tested on one: tf.distribute.MultiWorkerMirroredStrategy with two worker processes on
127.0.0.1, each told the cluster by TF_CONFIG (vitlib.multiworker), through `python -m vitlib.train`, as the README
shows it."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vitlib.training import backup, multiworker
from vitlib.training.fitting import read_history

pytestmark = pytest.mark.tensorflow_only
ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--dataset", "digits", "--epochs", "2", "--warmup-epochs", "1", "--augment", "none", "--no-train-on-validation",
         "--verbose", "0"]


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(workers, index):
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def start_workers(args, workers=None):
    workers = workers or [f"127.0.0.1:{port}" for port in free_ports(2)]
    return [subprocess.Popen([sys.executable, "-m", "vitlib.train", *args], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": tf_config(workers, i)})
            for i in range(len(workers))], workers


def finish(processes, timeout=300):
    results = [p.communicate(timeout=timeout) for p in processes]
    for p, (_, err) in zip(processes, results):
        assert p.returncode == 0, err[-3000:]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in results]


def losses(path):
    return read_history(path)["loss"]


def test_two_workers_train_one_model_as_one_process_would_and_resume_after_one_is_killed(tmp_path, monkeypatch):
    # One cluster for both checks: starting two TensorFlow workers costs about 20 s of this 2-core machine's time.
    out = tmp_path / "two"
    args = [*SMALL, "--epochs", "3", "--strategy", "multiworker", "--out", str(out)]  # the last --epochs counts
    (chief, worker), workers = start_workers(args)
    deadline = time.time() + 240
    while backup.epochs_done(out / "worker1") < 1:  # worker 1 backed up an epoch
        assert worker.poll() is None and chief.poll() is None, (chief.stderr.read() + worker.stderr.read())[-3000:]
        assert time.time() < deadline, "the first epoch did not finish in time"
        time.sleep(0.1)
    worker.send_signal(signal.SIGKILL)  # as if its machine died
    worker.communicate()
    # The chief notices the missing heartbeats within seconds, and stops with one line that says what to do.
    _, err = chief.communicate(timeout=120)
    assert chief.returncode == 1
    assert err.strip().splitlines()[-1].startswith("error: Another worker stopped, so this one cannot go on")
    assert "Traceback" not in err and "Start every worker again" in err
    assert backup.epochs_done(out) == 1 and not (out / "metrics.json").exists()

    processes, _ = start_workers(args, workers)  # a cluster manager restarts both
    chief, worker = finish(processes)
    for folder in (out, out / "worker1"):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["epochs_this_run"] == [1, 2]  # nothing finished is redone
        assert read_history(folder / "history.csv")["epoch"] == [0, 1, 2]
        assert metrics["devices"] == 2
    # The chief writes the run's files, worker 1 its own copies in worker1/ (nothing written twice to one file).
    assert (out / "last.keras").exists() and (out / "worker1" / "last.keras").exists()
    assert not (out / "worker1" / "worker1").exists()
    # One model: both workers end with the same history and test accuracy.
    history = losses(out / "history.csv")
    assert history == losses(out / "worker1" / "history.csv")
    assert chief["test_accuracy"] == worker["test_accuracy"] > 0.5  # chance: 10 %
    # The same global batches of 64 (32 per worker), summed gradients: the first epoch's mean loss agrees with
    # one process's (a gradient left unreduced, or averaged twice, would show); later epochs drift apart as two
    # runs with different float summation orders do, so only learning is asserted for them.
    from vitlib import train as cli  # one process, no strategy: the same command in this test's own process

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cli.main([*args[:-4], "--strategy", "none", "--out", str(tmp_path / "one")]) == 0
    single = losses(tmp_path / "one" / "history.csv")
    assert history[0] == pytest.approx(single[0], rel=1e-2)
    assert history[1] < history[0] - 0.3 and single[1] < single[0] - 0.3


def test_workers_whose_backups_hold_different_epochs_refuse_to_resume(tmp_path):
    # As if worker 1 was lost after the chief's backup of epoch 2 but before its own: resumed, they would train out
    # of step. Both refuse before training, with one line that says what to do, and delete nothing.
    out = tmp_path / "run"
    for folder, epoch in ((out, 2), (out / "worker1", 1)):
        (folder / "backup").mkdir(parents=True)
        (folder / "backup" / "training_metadata.json").write_text(
            json.dumps({"epoch": epoch, "batch": 0, "weights": f"epoch{epoch}-batch0.weights.h5"}))
    processes, _ = start_workers([*SMALL, "--strategy", "multiworker", "--out", str(out)])
    for p in processes:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 2, err[-3000:]
        assert err.strip().splitlines()[-1].startswith("error: The workers' backups hold different numbers of finished "
                                                       "epochs"), err[-3000:]
    assert sorted(p.name for p in out.rglob("*")) == ["backup", "backup", "training_metadata.json",
                                                      "training_metadata.json", "worker1"]


@pytest.mark.parametrize("value, message", [
    (None, "needs TF_CONFIG, which is not set"),
    ("{not json", "TF_CONFIG is not valid (JSONDecodeError"),
    ('{"cluster": {}}', "TF_CONFIG is not valid (KeyError"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "an index from 0 to 1"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "must be a worker"),
])
def test_a_missing_or_wrong_tf_config_is_a_clear_error(monkeypatch, value, message):
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        multiworker.cluster()


def test_the_command_line_refuses_multiworker_without_tf_config(tmp_path, monkeypatch, capsys):
    from vitlib import train as cli

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cli.main([*SMALL, "--strategy", "multiworker", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip().startswith("error: strategy='multiworker' needs TF_CONFIG, which is not set")
    assert not (tmp_path / "run").exists()  # refused before it started: no empty folder left behind
