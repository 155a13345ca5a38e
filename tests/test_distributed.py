"""Several devices, tested on one machine: JAX's keras.distribution.DataParallel over two host CPU devices.

(TensorFlow's MirroredStrategy over two logical CPUs is tested in test_loop.py, several machines with
MultiWorkerMirroredStrategy in test_multiworker.py. JAX's multi-process run was not reliable; see the README.)
"""
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent  # runs its own JAX process, once

ROOT = Path(__file__).resolve().parents[1]
DATA_PARALLEL_SCRIPT = """
import json, sys
import jax, keras
from vitlib.training import loop, recipes
out = {}
for mode in ("one device", "DataParallel"):
    if mode == "DataParallel":
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
    cfg = recipes.recipe("digits", epochs=2, warmup_epochs=1, train_on_validation=False, keep="last",
                          model={"depth": 1})
    m = loop.train(cfg, sys.argv[1] + "/" + mode.replace(" ", "_"), verbose=0)
    out[mode] = {"devices": m["devices"], "test": m["test_accuracy"], "train_images": m["train_images"],
                 "history": open(sys.argv[1] + "/" + mode.replace(" ", "_") + "/history.csv").read()}
print(json.dumps({"jax_devices": len(jax.devices()), **out}))
"""


JAX_ENV = {"KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """One process with two host devices: the one-device run, then the same run under DataParallel."""
    env = {**os.environ, **JAX_ENV, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    result = subprocess.run([sys.executable, "-c", DATA_PARALLEL_SCRIPT, str(tmp_path_factory.mktemp("dp"))],
                            capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_jax_data_parallel_over_two_host_devices_trains_as_one_device(one_process):
    runs = dict(one_process)
    assert runs.pop("jax_devices") == 2
    assert runs["one device"]["devices"] == 1 and runs["DataParallel"]["devices"] == 2
    history = {k: list(csv.DictReader(io.StringIO(v["history"]))) for k, v in runs.items()}
    one, two = history["one device"], history["DataParallel"]
    assert len(one) == len(two) == 2
    # The same batches, each split in two halves: the first epoch's loss agrees closely (a missing gradient
    # reduction would show here), and training learns.
    assert float(two[0]["loss"]) == pytest.approx(float(one[0]["loss"]), rel=5e-3)
    assert float(two[1]["loss"]) < float(two[0]["loss"]) - 0.3
    # The evaluation images are padded to split evenly (143 validation -> 144, 359 test -> 360; 359 is prime): the
    # blank carries zero weight, so the accuracies count the real images only and agree with the one-device run,
    # and the loss is the same sum divided by the padded count.
    for row_one, row_two in zip(one, two):
        assert float(row_two["val_loss"]) * 144 / 143 == pytest.approx(float(row_one["val_loss"]), rel=2e-3)
        assert round(float(row_two["val_accuracy"]) * 143) == pytest.approx(float(row_two["val_accuracy"]) * 143, abs=1e-3)
        assert float(row_two["val_accuracy"]) == pytest.approx(float(row_one["val_accuracy"]), abs=1.01 / 143)
    test_two = runs["DataParallel"]["test"]
    assert round(test_two * 359) == pytest.approx(test_two * 359, abs=1e-3)  # k of 359, not of a padded count
    assert test_two == pytest.approx(runs["one device"]["test"], abs=1.01 / 359)
    assert test_two > 0.5  # chance is 10 %


def test_a_batch_that_does_not_split_over_the_devices_is_refused(tmp_path):
    script = ("import jax, keras\nfrom vitlib.training import loop, recipes\n"
              "keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))\n"
              "loop.train(recipes.recipe('digits', epochs=2, warmup_epochs=1, batch_size=63), 'RUN', verbose=0)\n")
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", script.replace("RUN", str(tmp_path / "run"))], capture_output=True,
                            text=True, timeout=300, cwd=ROOT, env=env)
    assert result.returncode != 0
    assert "ValueError: batch_size=63 does not split evenly over 2 devices: use a multiple of 2." in result.stderr
    assert not (tmp_path / "run").exists()  # refused before it started: no empty output folder
