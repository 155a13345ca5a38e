"""The mnist_5k recipe over five seeds, with the small CNN trained the same way beside it (same optimiser, schedule,
loss, augmentation, epochs and images: the 4,000 train + validation images), each tested once on the 1,000 test
images. The split is fixed (seed 0); the seed changes the initial weights, the batches and the augmentation.

    .venv/bin/python benchmarks/mnist_five_seeds.py          # seeds 0-4: ten runs of about a minute on 2 cores

Prints one row per seed (accuracies and training seconds), then mean and range; benchmarks/RESULTS.md records it.
"""
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
from digits_five_splits import cnn_run  # noqa: E402  (the same CNN run, from this folder)

import vitlib  # noqa: E402, F401
from vitlib.data import datasets  # noqa: E402
from vitlib.training import loop, recipes  # noqa: E402


def main(seeds):
    rows = []
    data = datasets.load_dataset("mnist_5k")
    with tempfile.TemporaryDirectory() as out:
        for seed in seeds:
            config = recipes.recipe("mnist_5k", seed=seed)
            vit = loop.train(config, f"{out}/vit_{seed}", verbose=0)
            cnn, cnn_seconds = cnn_run(config, data, seed)
            rows.append({"seed": seed, "vit": vit["test_accuracy"], "vit_s": round(vit["train_seconds"], 1),
                         "cnn": cnn, "cnn_s": round(cnn_seconds, 1)})
            print(json.dumps(rows[-1]), flush=True)
    for key in ("vit", "cnn", "vit_s", "cnn_s"):
        values = np.array([r[key] for r in rows])
        print(f"{key:6s} mean {values.mean():.4g}  std {values.std(ddof=1) if len(values) > 1 else 0:.3g}  "
              f"range {values.min():.4g} to {values.max():.4g}")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or range(5))
