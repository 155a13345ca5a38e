"""Notebook 06's comparison over five splits: the digits recipe's ViT (shifted patches), the same ViT with plain
patches, and the small CNN trained the notebook's way (same optimiser, schedule, loss, augmentation, epochs and
images), each on the train + validation images of split SEED and tested once on its test split.

    .venv/bin/python benchmarks/digits_five_splits.py            # seeds 0-4, about 15 runs of 10-30 s on 2 cores

Prints one row per seed and the mean and range; benchmarks/RESULTS.md records the output.
"""
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import numpy as np  # noqa: E402

import vitlib  # noqa: E402, F401
from vitlib.data import datasets, pipeline  # noqa: E402
from vitlib.training import distill, fitting, loop, recipes  # noqa: E402


def cnn_run(config, data, seed):
    """The small CNN under ``config``'s budget, on ``data``'s train + validation images: its test accuracy and training
    seconds (``benchmarks/mnist_five_seeds.py`` uses it too)."""
    keras.utils.set_random_seed(seed)
    cnn = distill.small_cnn(data.image_shape, data.num_classes)
    cnn_training = fitting.with_augmentation(cnn, config)
    fit = data.with_validation_in_training()
    fitting.compile_for_training(cnn_training, config, len(fit.y_train) // config.batch_size)
    pipe = pipeline.make_pipeline(fit.x_train, fit.y_train, config.batch_size, data.num_classes, shuffle=True,
                                  seed=seed, drop_remainder=True)
    start = time.perf_counter()
    cnn_training.fit(pipe, epochs=config.epochs, verbose=0, shuffle=False)
    seconds = time.perf_counter() - start
    return float(np.mean(np.argmax(cnn.predict(data.x_test, verbose=0), -1) == data.y_test)), seconds


def main(seeds):
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for seed in seeds:
            config = recipes.recipe("digits", seed=seed)
            data = datasets.load_dataset("digits", seed=seed)
            shifted = loop.train(config, f"{out}/shifted_{seed}", verbose=0)["test_accuracy"]
            plain = loop.train(recipes.recipe("digits", seed=seed, model={"stem": "patch"}), f"{out}/plain_{seed}",
                                   verbose=0)["test_accuracy"]
            rows.append({"seed": seed, "vit_shifted": shifted, "vit_plain": plain, "cnn": cnn_run(config, data, seed)[0]})
            print(json.dumps(rows[-1]), flush=True)
    for key in ("vit_shifted", "vit_plain", "cnn"):
        values = np.array([r[key] for r in rows])
        print(f"{key:12s} mean {values.mean():.2%}  range {values.min():.2%} to {values.max():.2%}")
    gaps = np.array([r["cnn"] - r["vit_shifted"] for r in rows])
    print(f"CNN minus ViT (shifted), per seed: {', '.join(f'{g:+.1%}' for g in gaps)}")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or range(5))
