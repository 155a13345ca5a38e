"""Notebook 06's comparison over five splits: the digits recipe's ViT (shifted patches), the same ViT with plain
patches, and the small CNN trained the notebook's way (same optimiser, schedule, loss, augmentation, epochs and
images), each on the train + validation images of split SEED and tested once on its test split.

    .venv/bin/python benchmarks/digits_five_splits.py            # seeds 0-4: 15 trainings, minutes on a CPU
    .venv/bin/python benchmarks/digits_five_splits.py 0 1 --out /tmp/two.json   # some seeds, results elsewhere

Prints one row per seed and the mean and range, and writes them to benchmarks/digits_five_splits.json (per split and
model: test accuracy and training seconds; plus the command, the git commit and the CPU), which notebook 06 reads;
benchmarks/RESULTS.md records the runs.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import numpy as np  # noqa: E402

import vitlib  # noqa: E402, F401
from vitlib.data import datasets  # noqa: E402
from vitlib.training import distill, fitting, loop, recipes  # noqa: E402


def cnn_run(config, data, seed):
    """The small CNN under ``config``'s budget, on ``data``'s train + validation images: its test accuracy and training
    seconds (``benchmarks/mnist_five_seeds.py`` uses it too)."""
    keras.utils.set_random_seed(seed)
    cnn = distill.small_cnn(data.image_shape, data.num_classes)
    seconds = fitting.train_budget(fitting.with_augmentation(cnn, config), data.with_validation_in_training(), config,
                                   seed)
    return fitting.accuracy(cnn, data.x_test, data.y_test), seconds


MODELS = ("vit_shifted", "vit_plain", "cnn")
RESULTS = Path(__file__).with_suffix(".json")


def cpu_name():
    """The CPU's model name as /proc/cpuinfo gives it (platform's answer elsewhere), with the core count."""
    name = platform.processor() or platform.machine()
    try:
        name = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} cores"


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(seeds, out_path=RESULTS):
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        for seed in seeds:
            config = recipes.recipe("digits", seed=seed)
            data = datasets.load_dataset("digits", seed=seed)
            shifted = loop.train(config, f"{out}/shifted_{seed}", verbose=0)
            plain = loop.train(recipes.recipe("digits", seed=seed, model={"stem": "patch"}), f"{out}/plain_{seed}",
                               verbose=0)
            cnn, cnn_seconds = cnn_run(config, data, seed)
            rows.append({"seed": seed,
                         "vit_shifted": shifted["test_accuracy"], "vit_shifted_s": round(shifted["train_seconds"], 1),
                         "vit_plain": plain["test_accuracy"], "vit_plain_s": round(plain["train_seconds"], 1),
                         "cnn": cnn, "cnn_s": round(cnn_seconds, 1)})
            print(json.dumps(rows[-1]), flush=True)
    for key in MODELS:
        values = np.array([r[key] for r in rows])
        print(f"{key:12s} mean {values.mean():.2%}  range {values.min():.2%} to {values.max():.2%}")
    gaps = np.array([r["cnn"] - r["vit_shifted"] for r in rows])
    print(f"CNN minus ViT (shifted), per seed: {', '.join(f'{g:+.1%}' for g in gaps)}")
    results = {"command": " ".join(["python", *sys.argv]), "commit": git_commit(), "cpu": cpu_name(),
               "backend": keras.backend.backend(), "seconds": round(time.perf_counter() - start), "rows": rows}
    Path(out_path).write_text(json.dumps(results, indent=1) + "\n")
    print(f"written to {out_path} ({results['seconds']} s in all)")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seeds", nargs="*", type=int, default=list(range(5)), help="splits to run (default 0-4)")
    parser.add_argument("--out", default=RESULTS, help=f"where to write the results (default {RESULTS.name})")
    args = parser.parse_args()
    main(args.seeds, args.out)
