"""Every `.keras` file the project writes loads after a plain `import vitlib`: the committed models of notebooks 07,
08 and 10 and a training run's checkpoints, each loaded in a fresh interpreter that imported nothing else (an
interpreter that had imported, say, vitlib.beyond.mae would hide a class missing from the facade)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "notebooks" / "models").rglob("*.keras"))

pytestmark = pytest.mark.tensorflow_only  # the committed files were written by TensorFlow runs

LOAD = """
import sys
import vitlib, keras
for path in sys.argv[1:]:
    model = keras.saving.load_model(path)  # safe mode, as a learner loads it
    print(type(model).__name__, path)
"""


def load_in_fresh_interpreter(paths):
    done = subprocess.run([sys.executable, "-c", LOAD, *map(str, paths)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    return [line.split(" ", 1) for line in done.stdout.splitlines()]


def test_every_committed_model_loads_after_a_plain_import_vitlib():
    assert len(COMMITTED) == 12 + 3 + 9  # notebook 07's twelve, 08's three, 10's nine
    loaded = load_in_fresh_interpreter(COMMITTED)
    assert [path for _, path in loaded] == list(map(str, COMMITTED))
    kinds = {Path(path).name: kind for kind, path in loaded}
    assert kinds["mae_0.keras"] == "MaskedAutoencoder" and kinds["last.keras"] == "VisionTransformer"


def test_a_training_runs_checkpoints_load_after_a_plain_import_vitlib(tmp_path):
    from vitlib import train as cli

    assert cli.main(["--dataset", "digits", "--epochs", "2", "--warmup-epochs", "0", "--keep", "best", "--verbose", "0",
                     "--out", str(tmp_path / "run")]) == 0
    written = sorted((tmp_path / "run").rglob("*.keras"))
    assert "best.keras" in {p.name for p in written}  # the best epoch's checkpoint, kept by validation
    assert [kind for kind, _ in load_in_fresh_interpreter(written)] == ["VisionTransformer"] * len(written)
