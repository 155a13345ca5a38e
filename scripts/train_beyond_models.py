"""Train the small models that notebook 10 loads, and the MAE fine-tuning grid, with one command; write the manifest.

    .venv/bin/python scripts/train_beyond_models.py                    # everything (times: benchmarks/RESULTS.md)
    .venv/bin/python scripts/train_beyond_models.py --parts mae --seeds 0

Data: scikit-learn's digits upsampled to 24x24 (``vitlib.beyond.upsampled_digits``); model: ``vitlib.beyond.small_vit``.
Parts (each over the seeds):

- ``fixed``: the ViT at 6x6 patches, ``STEPS`` steps of 64 images (``experiments.run_grid``) -> ``fixed_SEED.keras``;
- ``flexi``: the same ViT and budget, a patch size of ``PATCH_SIZES`` drawn for every batch
  (``flexivit.train_flexible``) -> ``flexi_SEED.keras``;
- ``mae``: the same ViT pre-trained as a masked autoencoder on the training images without their labels
  (``PRETRAIN_STEPS`` steps, ``MASK_RATIO`` of the patches hidden) -> ``mae_SEED.keras`` (encoder and decoder); then
  fine-tuned on 1 %, 10 % and 100 % of the labels against the ViT from scratch, ``FINE_TUNE_STEPS`` steps each, at
  every learning rate of ``FINE_TUNE_RATES`` (the notebook keeps, for each arm and fraction, the rate with the best
  validation accuracy) -> ``finetune.csv``.

The pre-training's settings were chosen on the validation digits' hidden-patch error against the mean training digit
(benchmarks/RESULTS.md, "Notebook 10's autoencoder").

Everything lands in ``notebooks/models/10/`` with ``MANIFEST.json`` (the command, accuracies, seconds, commit, CPU).
The notebook's ``RETRAIN = True`` runs the same functions in place.
"""
import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

from train_notebook_models import cpu_model  # the CPU's name for the manifest, as notebook 07's script writes it

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "notebooks/models/10"
SEEDS = (0, 1, 2)
STEPS = 400              # fixed and FlexiViT training: optimiser steps of 64 images
PRETRAIN_STEPS = 3000    # MAE pre-training, no labels
MASK_RATIO = 0.5         # of 16 patches; 0.75 leaves 4, too few to tell the digit (RESULTS.md)
FINE_TUNE_STEPS = 200    # each fine-tuning run and its from-scratch control
FINE_TUNE_RATES = (1e-3, 3e-3)  # each arm's rate is chosen on validation, as the paper and MAE do
FRACTIONS = (0.01, 0.1, 1.0)
PARTS = ("fixed", "flexi", "mae")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    args = parser.parse_args(argv)

    import keras

    from vitlib.beyond import PATCH_SIZES, flexivit, mae, small_vit, upsampled_digits
    from vitlib.training import experiments

    FOLDER.mkdir(parents=True, exist_ok=True)
    path = FOLDER / "MANIFEST.json"
    manifest = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    common = {"commit": commit.stdout.strip(), "cpu": cpu_model(), "command": "python scripts/train_beyond_models.py "
              + " ".join(argv if argv is not None else sys.argv[1:])}
    digits, seeds = upsampled_digits(), tuple(args.seeds)

    def save(name, model, row):
        model.save(FOLDER / f"{name}.keras")
        manifest["runs"][name] = {**{k: v for k, v in row.items() if k != "trained"}, **common}
        print(name, json.dumps(manifest["runs"][name]), flush=True)
        path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")

    if "fixed" in args.parts:
        rows = experiments.run_grid({"fixed": lambda seed: small_vit()}, digits, seeds=seeds, steps=STEPS,
                                    keep_models=True)
        for row in rows:
            save(f"fixed_{row['seed']}", row["trained"], {**row, "steps": STEPS})
    if "flexi" in args.parts:
        rows = flexivit.train_flexible(lambda seed: small_vit(), digits, PATCH_SIZES, seeds, steps=STEPS)
        for row in rows:
            save(f"flexi_{row['seed']}", row["trained"], {**row, "steps": STEPS,
                                                          "patch_steps": {str(k): v for k, v in row["patch_steps"].items()}})
    if "mae" in args.parts:
        encoders = {}
        for seed in seeds:
            keras.utils.set_random_seed(seed)
            model = mae.MaskedAutoencoder(small_vit(), mask_ratio=MASK_RATIO, seed=seed)
            start = time.perf_counter()
            losses = mae.pretrain(model, digits.x_train, steps=PRETRAIN_STEPS, seed=seed)
            # uncompiled: the file without optimiser state
            plain = mae.MaskedAutoencoder(small_vit(), mask_ratio=MASK_RATIO, seed=seed)
            plain.build()
            plain.set_weights(model.get_weights())
            save(f"mae_{seed}", plain, {"seed": seed, "steps": PRETRAIN_STEPS, "mask_ratio": MASK_RATIO,
                                        "loss_per_tenth": [round(x, 5) for x in losses],
                                        "seconds": round(time.perf_counter() - start, 1)})
            encoders[seed] = model.vit.get_weights()

        def pretrained(seed):
            vit = small_vit()
            vit.set_weights(encoders[seed])
            return vit

        arms = {"MAE pre-trained": pretrained, "from scratch": lambda seed: small_vit()}
        rows = [{**row, "learning_rate": rate} for rate in FINE_TUNE_RATES
                for row in experiments.run_grid(arms, digits, fractions=FRACTIONS, seeds=seeds,
                                                steps=FINE_TUNE_STEPS, learning_rate=rate)]
        table = FOLDER / "finetune.csv"
        old = [r for r in csv.DictReader(table.open())] if table.exists() else []
        old = [r for r in old if int(r["seed"]) not in seeds and "learning_rate" in r]
        fields = ["model", "fraction", "learning_rate", "seed", "train_images", "val_accuracy", "test_accuracy",
                  "seconds"]
        with table.open("w", newline="") as f:
            writer = csv.DictWriter(f, fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(sorted(old + rows, key=lambda r: (r["model"], float(r["fraction"]),
                                                               float(r["learning_rate"]), int(r["seed"]))))
        manifest["finetune"] = {"steps": FINE_TUNE_STEPS, "fractions": list(FRACTIONS),
                                "learning_rates": list(FINE_TUNE_RATES), **common}
        path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        for r in rows:
            print(r["model"], r["fraction"], r["learning_rate"], r["seed"], round(r["val_accuracy"], 4),
                  round(r["test_accuracy"], 4), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
