"""k-fold cross-validation of a digits recipe on the training + validation images (the test split stays out).

    python benchmarks/digits_cv.py --folds 5 '{"model": {"patch_size": 4}}'

Each fold trains ``training.train(training.recipe("digits", seed=k, **changes), data=fold)`` on the other folds
and scores the last epoch on its own. Prints one JSON line: the mean ("cv"), each fold, the mean training time.
benchmarks/RESULTS.md lists the search that chose the digits recipe this way.
"""
import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from vitlib import data as vdata  # noqa: E402
from vitlib import training  # noqa: E402


def folds_of(labels, k, seed=123):
    """Stratified fold index per image: each class spread evenly over the k folds."""
    rng, fold = np.random.default_rng(seed), np.empty(len(labels), int)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        fold[idx] = np.arange(len(idx)) % k
    return fold


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("changes", nargs="?", default="{}", help='recipe overrides as JSON, e.g. \'{"epochs": 30}\'')
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    changes = json.loads(args.changes)
    d = vdata.load_dataset("digits")
    x, y = np.concatenate([d.x_train, d.x_val]), np.concatenate([d.y_train, d.y_val])
    fold = folds_of(y, args.folds)
    scores, seconds = [], []
    for k in range(args.folds):
        train, held = fold != k, fold == k
        ds = vdata.Dataset("digits", x[train], y[train], x[held], y[held], x[held], y[held], d.class_names)
        with tempfile.TemporaryDirectory() as out:
            r = training.train(training.recipe("digits", seed=k, **changes), out, verbose=0, data=ds)
        scores.append(r["history"]["val_accuracy"][-1])
        seconds.append(r["train_seconds"] + r["teacher_seconds"])
    print(json.dumps({"changes": changes, "cv": round(100 * float(np.mean(scores)), 2),
                      "folds": [round(100 * s, 1) for s in scores], "seconds_per_fold": round(float(np.mean(seconds)), 1)}))


if __name__ == "__main__":
    main()
