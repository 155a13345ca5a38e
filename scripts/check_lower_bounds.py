"""Do the lower bounds in pyproject.toml still work? Install the oldest allowed versions into a venv and use vitlib there.

    python scripts/check_lower_bounds.py [--venv DIR]     # default build/lower-bounds; tests/test_lower_bounds.py runs it
    python scripts/check_lower_bounds.py --python python3.13 --venv build/lower-bounds-3.13   # another Python

Reads `project.dependencies` (those whose marker applies to this Python: on 3.13, e.g., TensorFlow 2.20, the first with
wheels there) and holds every `>=X.Y` to the X.Y series (`>=X.Y,<X.Y+1`: the oldest release line vitlib
claims to support, at its last patch release, since some `.0` releases do not exist, e.g. TensorFlow 2.16.0), installs
them (and vitlib itself, without dependencies) into the venv with uv where the Makefile installed it (else pip), then
runs SMOKE there: import vitlib, build a ViT, train two steps, save and reload the `.keras` file, and compare the
predictions. Prints the installed versions.
"""
import argparse
import re
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
SMOKE = r"""
import importlib.metadata as md, os, tempfile
import numpy as np
import keras, vitlib
print({name: md.version(name) for name in NAMES})
digits = vitlib.load_dataset("digits")
model = vitlib.build_vit(None, image_size=8, channels=1, patch_size=4, hidden_size=16, depth=1, num_heads=2,
                         mlp_dim=32, num_classes=10)
model.compile(optimizer=keras.optimizers.AdamW(1e-3),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
history = model.fit(digits.x_train[:64], digits.y_train[:64], batch_size=32, epochs=1, verbose=0)
assert np.isfinite(history.history["loss"][-1])
path = os.path.join(tempfile.mkdtemp(), "model.keras")
model.save(path)
again = keras.saving.load_model(path)
np.testing.assert_allclose(again.predict(digits.x_test[:8], verbose=0), model.predict(digits.x_test[:8], verbose=0),
                           atol=1e-6)
assert vitlib.patch_grid(224, 16) == (14, 14) and model.count_params() > 0
print("lower bounds OK")
"""


def lower_bounds(environment=None):
    """``name>=X.Y,<X.Y+1`` for every ``name>=X.Y`` of the library's runtime dependencies that applies to this Python
    (``environment``: marker values to use instead, e.g. ``{"python_version": "3.13"}``); where several apply, as
    ``numpy>=2.1; python_version >= '3.13'`` beside ``numpy>=1.26``, the highest."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lows = {}
    for dep in deps:
        requirement = Requirement(dep)
        match = re.fullmatch(r">=([0-9.]+)", str(requirement.specifier))
        if not match:
            raise ValueError(f"pyproject.toml dependency {dep!r}: write it as name>=version so its lower bound can be tested.")
        if requirement.marker is None or requirement.marker.evaluate(environment):
            low = lows.setdefault(requirement.name, match[1])
            lows[requirement.name] = max(low, match[1], key=Version)
    pins = []
    for name, low in lows.items():
        parts = [int(p) for p in low.split(".")]
        parts[-1] += 1
        pins.append(f"{name}>={low},<{'.'.join(map(str, parts))}")
    return pins


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=ROOT / "build" / "lower-bounds")
    parser.add_argument("--python", help="the Python to make the venv with (default: this one), e.g. python3.13")
    args = parser.parse_args(argv)
    python = args.venv / "bin" / "python"
    if not python.exists():
        if args.python:
            subprocess.run([args.python, "-m", "venv", str(args.venv)], check=True)
        else:
            venv.create(args.venv, with_pip=True)
    version = subprocess.run([str(python), "-c", "import platform; print(platform.python_version())"], check=True,
                             capture_output=True, text=True).stdout.strip()
    pins = lower_bounds({"python_version": ".".join(version.split(".")[:2]), "python_full_version": version})
    # uv where the Makefile installed it next to this Python (about 10x faster than pip), else the venv's own pip.
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    pip = ([uv, "pip", "install", "--quiet", "--python", str(python)] if uv else
           [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
    subprocess.run(pip + pins, check=True)
    subprocess.run(pip + ["--no-deps", "-e", str(ROOT)], check=True)
    names = [pin.split(">=")[0] for pin in pins]
    smoke = f"NAMES = {names!r}\n" + SMOKE
    subprocess.run([str(python), "-c", smoke], check=True, cwd=args.venv, env={"KERAS_BACKEND": "tensorflow",
                                                                                "TF_CPP_MIN_LOG_LEVEL": "2",
                                                                                "PATH": "/usr/bin:/bin"})


if __name__ == "__main__":
    main()
