"""Update the notebooks' code cells to vitlib's layout of issue 37 (sources only; outputs, counts and cells kept).

Usage: python nbfix.py notebooks/*.ipynb   (idempotent: a notebook already updated is left as it is)
"""
import json
import re
import sys

HOME = {  # name -> its module now
    **dict.fromkeys(["sample_image", "position_task", "centred_on_canvas", "translated_digits_images"], "vitlib.data.images"),
    **dict.fromkeys(["load_dataset", "Dataset", "DATASETS", "register_dataset", "split_dataset"], "vitlib.data.datasets"),
    **dict.fromkeys(["make_pipeline", "AUGMENTATIONS"], "vitlib.data.pipeline"),
    **dict.fromkeys(["accuracy", "compile_for_training", "with_augmentation", "read_history", "SaveBest"],
                    "vitlib.training.fitting"),
    **dict.fromkeys(["fraction_of", "run_grid", "summarise", "train_run", "budget"], "vitlib.training.experiments"),
    **dict.fromkeys(["at_resolution"], "vitlib.training.resolution"),
    **dict.fromkeys(["small_cnn", "DistillationLoss"], "vitlib.training.distill"),
    **dict.fromkeys(["gpu_available", "resolve_precision", "resolve_jit"], "vitlib.training.devices"),
    **dict.fromkeys(["recipe", "RECIPES", "TrainConfig"], "vitlib.training.recipes"),
    **dict.fromkeys(["train"], "vitlib.training.loop"),
    **dict.fromkeys(["EpochLine", "Line"], "vitlib.training.progress"),
    **dict.fromkeys(["patch_figure", "bar_figure", "history_figure", "confusion_matrix_figure", "examples_figure",
                     "scaling_figure"], "vitlib.inspection.plotting"),
    **dict.fromkeys(["filters_figure", "attention_matrix_figure", "similarity_grid_figure", "attention_distance_figure",
                     "attention_on_image_figure", "distance_curve_figure", "filter_components_figure",
                     "similarity_mosaic", "similarity_snapshots_figure", "layout_emergence_figure"],
                    "vitlib.inspection.analysis_figures"),
    **dict.fromkeys(["load_weights"], "vitlib.weights.pretrained"),
    **dict.fromkeys(["from_keras", "copy_to_keras"], "vitlib.weights.torch_vit"),
}
OLD_MODULES = {"data", "training", "experiments", "recipes", "resolution", "analysis", "plotting", "widgets", "progress",
               "pretrained", "torch_vit", "schedule", "pipeline", "images", "distill", "devices"}
OLD_HOME = {"analysis": "vitlib.inspection.analysis", "widgets": "vitlib.inspection.widgets",
            "torch_vit": "vitlib.weights.torch_vit", "pretrained": "vitlib.weights.pretrained",
            "progress": "vitlib.training.progress", "experiments": "vitlib.training.experiments",
            "resolution": "vitlib.training.resolution", "recipes": "vitlib.training.recipes"}
FACADE = {"sample_image", "load_dataset"}
NEW_MODULES = set(HOME.values()) | set(OLD_HOME.values())
SPEED_WORKAROUNDS = [  # (old, new): notebooks 03, 06 and 08 without the speed layer's tricks
    ("    model.compile(vitlib.schedule.adamw(3e-3, weight_decay=1e-4),  # Keras' AdamW: the same numbers, traced faster\n",
     '    model.compile(keras.optimizers.AdamW(3e-3, weight_decay=1e-4),\n'),
    ('    model.optimizer.build(model.trainable_variables)  # its moment variables now: TensorFlow traces the step once, not twice\n', ''),
    ("by_hand.optimizer.build(by_hand.trainable_variables)   # AdamW's moment variables now: TensorFlow traces the step once, not twice\n", ""),
    ('depth=3, num_heads=4, mlp_dim=128, custom_gradients=True, **options)', 'depth=3, num_heads=4, mlp_dim=128, **options)'),
    ('source = inspect.getsource(experiments.train_run)  # one run, as vitlib/experiments.py writes it (docstring left out)\n'
     'body = source[source.index("    from vitlib.training"):]  # everything after the docstring\n'
     'print(source.splitlines()[0] + "\\n" + body)',
     'print(inspect.getsource(experiments.train_run))  # one run, as vitlib/training/experiments.py writes it'),
]


def home(old, name):
    if name in HOME:
        return HOME[name]
    if old in OLD_HOME:
        return OLD_HOME[old]
    raise KeyError(f"no home for {old}.{name}")


def update(path):
    nb = json.load(open(path))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    text = "\n".join("".join(c["source"]) for c in code)
    imported = set()
    for m in re.finditer(r"^from vitlib import ([\w, ]+)$", text, re.M):
        imported |= {n.strip() for n in m[1].split(",")} & OLD_MODULES
    uses = {(a, n) for a, n in re.findall(r"(?<![\w.])(\w+)\.(\w+)", text) if a in imported}
    new_alias = {}
    for old, name in uses:
        module = home(old, name)
        alias = module.rsplit(".", 1)[1]
        taken = alias not in imported and re.search(rf"(?<![\w.]){alias}\b", text)
        new_alias[old, name] = module if taken else alias
    modules = sorted({home(o, n) for o, n in uses if new_alias[o, n] != home(o, n)})

    def import_lines(_match):
        by_package = {}
        for module in modules:
            package, alias = module.rsplit(".", 1)
            by_package.setdefault(package, []).append(alias)
        return "\n".join(f"from {p} import {', '.join(sorted(a))}" for p, a in sorted(by_package.items()))

    changed = False
    for cell in code:
        src = "".join(cell["source"])
        new = src
        for old, replacement in SPEED_WORKAROUNDS:
            new = new.replace(old, replacement)
        new = re.sub(r"^from vitlib import ([\w, ]+)$",
                     lambda m: import_lines(m) if {n.strip() for n in m[1].split(",")} & OLD_MODULES else m[0],
                     new, flags=re.M)
        new = re.sub(r"(?<![\w.])(\w+)\.(\w+)",
                     lambda m: f"{new_alias[m[1], m[2]]}.{m[2]}" if (m[1], m[2]) in new_alias else m[0], new)

        def full(m):
            old, name = m[1], m[2]
            if old not in OLD_MODULES or f"vitlib.{old}.{name}" in NEW_MODULES:
                return m[0]
            return f"vitlib.{name}" if name in FACADE else f"{home(old, name)}.{name}"

        new = re.sub(r"(?<![\w.])vitlib\.(\w+)\.(\w+)", full, new)
        if new != src:
            lines = new.split("\n")
            cell["source"] = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
            changed = True
    if changed:
        with open(path, "w") as f:
            json.dump(nb, f, indent=1, ensure_ascii=False)
            f.write("\n")
    return changed


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(path, "updated" if update(path) else "unchanged")
