"""k-fold cross-validation of a digits recipe on the training + validation images (the test split stays out).

    python benchmarks/digits_cv.py --folds 5 '{"model": {"patch_size": 4}}'

Each fold trains ``loop.train(recipes.recipe("digits", seed=k, **changes), data=fold)`` on the other folds
and scores the last epoch on its own. Prints one JSON line: the mean ("cv"), each fold, the mean training time.
benchmarks/RESULTS.md lists the search that chose the digits recipe this way.

``--nested`` also holds 10 % of the training folds out as a validation split, as ``train()`` has in real use, and
scores both models it keeps on the held-out fold: ``best.keras`` (picked by that validation split) and
``last.keras``. That measures what picking an epoch by validation accuracy is worth.
"""
import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from vitlib.data import datasets  # noqa: E402
from vitlib.training import fitting, loop, recipes  # noqa: E402


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
    parser.add_argument("--nested", action="store_true", help="hold out a validation split too; score best and last")
    args = parser.parse_args()
    changes = json.loads(args.changes)
    d = datasets.load_dataset("digits")
    x, y = np.concatenate([d.x_train, d.x_val]), np.concatenate([d.y_train, d.y_val])
    fold = folds_of(y, args.folds)
    scores, best_scores, seconds = [], [], []
    for k in range(args.folds):
        train, held = fold != k, fold == k
        if args.nested:  # validation: a random 10 % of the training folds
            xt, yt = x[train], y[train]
            order = np.random.default_rng(k).permutation(len(yt))
            val, fit = order[: len(yt) // 10], order[len(yt) // 10:]
            ds = datasets.Dataset("digits", xt[fit], yt[fit], xt[val], yt[val], x[held], y[held], d.class_names)
        else:
            ds = datasets.Dataset("digits", x[train], y[train], x[held], y[held], x[held], y[held], d.class_names)
        with tempfile.TemporaryDirectory() as out:
            # train_on_validation=False: the folds (and the validation split, if any) are set here
            r = loop.train(recipes.recipe("digits", seed=k, **{**changes, "train_on_validation": False}), out,
                               verbose=0, data=ds)
            if args.nested:
                scores.append(held_out_accuracy(f"{out}/last.keras", ds))
                best_scores.append(held_out_accuracy(f"{out}/best.keras", ds))
            else:
                scores.append(r["history"]["val_accuracy"][-1])
        seconds.append(r["train_seconds"] + r["teacher_seconds"])
    mean = lambda values: round(100 * float(np.mean(values)), 2)  # noqa: E731
    line = {"changes": changes, "cv": mean(scores), "folds": [round(100 * s, 1) for s in scores]}
    if args.nested:
        line = {"changes": changes, "nested_cv_last": mean(scores), "nested_cv_best": mean(best_scores),
                "folds_last": line["folds"], "folds_best": [round(100 * s, 1) for s in best_scores]}
    print(json.dumps({**line, "seconds_per_fold": round(float(np.mean(seconds)), 1)}))


def held_out_accuracy(path, ds):
    import keras

    return fitting.accuracy(keras.saving.load_model(path), ds.x_test, ds.y_test)


if __name__ == "__main__":
    main()
