"""Train the small models that notebook 07 loads, with one documented command each, and write their manifest.

    .venv/bin/python scripts/train_notebook_models.py            # every arm and seed (about 12 runs of 2-3 min on 2 cores)
    .venv/bin/python scripts/train_notebook_models.py --arms translated --seeds 0

Each run is `python -m vitlib.train --recipe translated_digits_patches ... --out notebooks/models/07/ARM_SEED`, as
listed in `notebooks/models/07/MANIFEST.json` beside its test accuracy and locality gap, the commit and the CPU.
`tests/test_notebook_models.py` retrains one of them from its command and checks it against the manifest, so the
committed models cannot drift from the code. The notebook's `RETRAIN = True` runs the same commands in place.
"""
import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = "notebooks/models/07"
RECIPE = ["--recipe", "translated_digits_patches"]
ARMS = {  # notebook 07's arms: the options each adds to the recipe's command
    "translated": [],                             # plain patches, digits anywhere on the canvas: the experiment
    "centred": ["--dataset", "centred_digits"],   # the same digits always in the middle: the data control
    "shifted": ["--stem", "shifted"],             # tokens that see their neighbours' pixels: the stem control
    "shuffled": ["--shuffle-labels"],             # the training labels permuted: nothing to learn (rollout's control)
}
SEEDS = (0, 1, 2)
KEEP = ("last.keras", "history.csv", "metrics.json", "layout.npz")  # what the notebook reads


def command(arm, seed, out=None):
    """The command line (after `python -m vitlib.train`) that trains one arm and seed."""
    return [*RECIPE, *ARMS[arm], "--seed", str(seed), "--out", out or f"{FOLDER}/{arm}_{seed}"]


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    args = parser.parse_args(argv)

    import numpy as np

    manifest_path = ROOT / FOLDER / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"runs": []}
    runs = {(r["arm"], r["seed"]): r for r in manifest["runs"]}
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True).stdout
    for arm in args.arms:
        for seed in args.seeds:
            line = command(arm, seed)
            print("python -m vitlib.train " + " ".join(line), flush=True)
            subprocess.run([sys.executable, "-m", "vitlib.train", *line, "--verbose", "0"], cwd=ROOT, check=True)
            out = ROOT / FOLDER / f"{arm}_{seed}"
            for extra in out.iterdir():
                if extra.name not in KEEP:
                    extra.unlink()  # best.keras: the recipe tests the last epoch
            metrics = json.loads((out / "metrics.json").read_text())
            history = np.genfromtxt(out / "history.csv", delimiter=",", names=True)
            runs[arm, seed] = {
                "arm": arm, "seed": seed, "folder": f"{arm}_{seed}",
                "command": "python -m vitlib.train " + " ".join(line),
                "test_accuracy": round(metrics["test_accuracy"], 4),
                "final_val_accuracy": round(float(history["val_accuracy"][-1]), 4),
                "locality_gap": round(float(history["locality_gap"][-1]), 4),
                "train_seconds": metrics["train_seconds"],
                "commit": commit.strip(), "cpu": cpu_model(),
            }
            print(json.dumps(runs[arm, seed]), flush=True)
            manifest["runs"] = [runs[key] for key in sorted(runs, key=lambda k: (list(ARMS).index(k[0]), k[1]))]
            manifest["how"] = ("Each folder: one run of its command from the repository root (last.keras, history.csv "
                               "with the locality gap per epoch, metrics.json, layout.npz). Written by "
                               "scripts/train_notebook_models.py; tests/test_notebook_models.py retrains one and "
                               "compares it with this file.")
            manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
