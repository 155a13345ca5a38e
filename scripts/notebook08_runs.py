"""Notebook 08's experiments, every run of them, on 5,000 handwritten MNIST digits (``load_dataset("mnist_5k")``):

- ``resolution``: the paper's Sec. 3.2. A ViT (the mnist_5k recipe's sizes, the paper's plain 7x7 patches) trained
  at 14x14 (a 2x2 grid) for 20 epochs, then fine-tuned for 10 epochs at 28x28 (the original images: a 4x4 grid, real
  extra detail) with its position table resized bilinearly, bicubically or drawn anew; the controls: the same 10
  epochs on 28x28 images upsampled from the 14x14 ones (more pixels, no detail), 10 more epochs at 14x14, and the ViT
  trained at 28x28 from scratch for 30 epochs (the same number of passes over the images). The fine-tuning's
  learning rate (3e-3, one epoch of warm-up) was chosen on the validation split, seed 0: after 10 epochs 1e-3 reached
  87.5 % and 3e-4 77.7 %, against 93.8 %. The 14x14 models are
  saved (``base14_SEED.keras``) for the notebook's live parts.
- ``data_size``: the small CNN, the plain ViT, the ViT with shifted patches and the hybrid ViT (the paper's Sec. 3.1:
  a convolutional stem, ``stem="conv"``, whose stride-2 convolutions need a power-of-2 patch, so the images are
  resized to 32x32 and cut into 8x8 patches: the plain ViT's 16 tokens) on 250 to 3,600 training images, each for 20
  epochs (equal passes per image), the validation and test accuracy recorded after every epoch.
- ``pooling``: class token against mean pooling (GAP), each at four learning rates, on 1,000 training images.

Every run is :func:`vitlib.training.experiments.epoch_run` (the mnist_5k recipe's optimiser, schedule, loss and
augmentation), seeds 0-2. Writes ``notebooks/models/08/runs.json`` (one row per run) and the three 14x14 models:

    .venv/bin/python scripts/notebook08_runs.py                    # all three, about two hours on 2 cores, one process
    .venv/bin/python scripts/notebook08_runs.py pooling            # one experiment (replaces its rows)
    .venv/bin/python scripts/notebook08_runs.py data_size --models "hybrid ViT"   # one model's rows of it
"""
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import vitlib  # noqa: E402
from vitlib.data import datasets  # noqa: E402
from vitlib.training import distill, experiments, fitting, recipes, resolution  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "notebooks" / "models" / "08"
SEEDS = (0, 1, 2)
SIZES = (250, 500, 1000, 3600)
RATES = (3e-4, 1e-3, 3e-3, 1e-2)
PRE_EPOCHS, FINE_EPOCHS, FINE_RATE = 20, 10, 3e-3


def vit(image_size=28, **options):
    """The mnist_5k recipe's ViT (its sizes: 7x7 patches, width 64, 3 layers of 4 heads, MLP 128), with the paper's
    plain patches unless ``options`` say otherwise."""
    return vitlib.build_vit(**{**recipes.recipe("mnist_5k").model, "stem": "patch", "image_size": image_size,
                               "channels": 1, "num_classes": 10, **options})


def _strip(row, **keys):
    return {**keys, **row}


def resolution_rows(seed):
    small, big = datasets.load_dataset("mnist_5k", image_size=14), datasets.load_dataset("mnist_5k")
    blown_up = small.resized(28)  # 28x28 pixels made from the 14x14 ones: no detail the small images lack
    row, base = experiments.epoch_run(lambda s: vit(14), small, seed, PRE_EPOCHS)
    base.save(OUT / f"base14_{seed}.keras")
    rows = [_strip(row, experiment="resolution", arm="at 14x14", epochs_total=PRE_EPOCHS)]
    fine = dict(learning_rate=FINE_RATE, warmup_epochs=1)
    arms = {"bilinear": (big, "bilinear"), "bicubic": (big, "bicubic"), "reinit": (big, "reinit"),
            "upsampled 14x14 (control)": (blown_up, "bilinear")}
    for arm, (data, method) in arms.items():
        moved = resolution.at_resolution(base, 28, method, seed=seed)
        before = fitting.accuracy(moved, data.x_test, data.y_test)
        row, _ = experiments.epoch_run(lambda s, m=moved: m, data, seed, FINE_EPOCHS, **fine)
        rows.append(_strip(row, experiment="resolution", arm=arm, before_fine_tuning=before,
                           epochs_total=PRE_EPOCHS + FINE_EPOCHS))
    row, _ = experiments.epoch_run(lambda s: base, small, seed, FINE_EPOCHS, **fine)  # continues training `base`
    rows.append(_strip(row, experiment="resolution", arm=f"{FINE_EPOCHS} more epochs at 14x14 (control)",
                       epochs_total=PRE_EPOCHS + FINE_EPOCHS))
    row, _ = experiments.epoch_run(lambda s: vit(28), big, seed, PRE_EPOCHS + FINE_EPOCHS)
    rows.append(_strip(row, experiment="resolution", arm="from scratch at 28x28 (control)",
                       epochs_total=PRE_EPOCHS + FINE_EPOCHS))
    return rows


DATA_MODELS = {  # name -> (build(seed), the image size it is fed)
    "CNN": (lambda seed: distill.small_cnn((28, 28, 1), 10), 28),
    "ViT": (lambda seed: vit(), 28),
    "ViT, shifted patches": (lambda seed: vit(stem="shifted"), 28),
    "hybrid ViT": (lambda seed: vit(32, patch_size=8, stem="conv"), 32),
}


def data_size_rows(seed, models=tuple(DATA_MODELS)):
    data, rows = datasets.load_dataset("mnist_5k"), []
    for size in SIZES:
        part = experiments.fraction_of(data, size / len(data.y_train), seed)
        for name in models:
            build, image_size = DATA_MODELS[name]
            fed = part if image_size == 28 else part.resized(image_size)
            row, _ = experiments.epoch_run(build, fed, seed, 20)
            rows.append(_strip(row, experiment="data_size", model=name, size=size))
    return rows


def pooling_rows(seed):
    data = datasets.load_dataset("mnist_5k")
    part, rows = experiments.fraction_of(data, 1000 / len(data.y_train), seed), []
    for pool in ("token", "gap"):
        for rate in RATES:
            row, _ = experiments.epoch_run(lambda s, p=pool: vit(pool=p), part, seed, 20, learning_rate=rate)
            rows.append(_strip(row, experiment="pooling", pool=pool, learning_rate=rate))
    return rows


EXPERIMENTS = {"resolution": resolution_rows, "data_size": data_size_rows, "pooling": pooling_rows}


def main(names, models=None):
    """Run the experiments ``names`` and replace their rows; with ``models`` (data_size only), just those models'."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "runs.json"
    replaced = (lambda r: r["experiment"] in names) if models is None else (
        lambda r: r["experiment"] in names and r.get("model") in models)
    rows = [r for r in (json.loads(path.read_text()) if path.exists() else []) if not replaced(r)]
    for name in names:
        for seed in SEEDS:
            new = EXPERIMENTS[name](seed) if models is None else EXPERIMENTS[name](seed, models)
            rows += new
            for r in new:
                print(json.dumps({k: v for k, v in r.items() if not k.endswith("_curve")}), flush=True)
            path.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    models = None
    if "--models" in args:
        at = args.index("--models")
        args, models = args[:at], args[at + 1:]
        if args != ["data_size"] or not models or set(models) - set(DATA_MODELS):
            sys.exit(f'--models goes with data_size alone and names models of {list(DATA_MODELS)}, e.g. '
                     f'data_size --models "hybrid ViT"; got {sys.argv[1:]}')
    unknown = set(args) - set(EXPERIMENTS)
    if unknown:
        sys.exit(f"unknown experiment(s) {sorted(unknown)}: choose from {list(EXPERIMENTS)}")
    main(args or list(EXPERIMENTS), models)
