"""Command line: ``python -m vitlib.train --dataset digits --epochs 30 --out runs/digits``.

Starts from the data set's recipe (see ``vitlib.training.RECIPES``); options override it. Run the same
command again after an interruption to resume. Writes ``OUT/metrics.json``, ``OUT/best.keras`` (best
validation accuracy) and ``OUT/last.keras`` (last epoch); ``--keep`` says which one is tested. The digits
recipe trains its final run on the validation images too (``--no-train-on-validation`` holds them out).
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


HELP = {"distill": "weight of a small CNN teacher's soft labels in the loss, 0 to 1 (0: no teacher)",
        "translate": "random shifts of up to this fraction of the image size"}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m vitlib.train", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits",
                        help="digits (default, embedded), translated_digits (the digits at random places on a larger "
                             "canvas, embedded), position (generated), mnist, fashion_mnist, cifar10, cifar100")
    parser.add_argument("--canvas-size", type=int, help="translated_digits: the canvas' side in pixels (default 16)")
    parser.add_argument("--recipe", help="recipe to start from (default: the data set's own, else digits)")
    parser.add_argument("--out", default=None, help="output folder (default runs/DATASET)")
    for name, kind in [("epochs", int), ("batch-size", int), ("learning-rate", float), ("weight-decay", float),
                       ("warmup-epochs", int), ("label-smoothing", float), ("translate", float), ("seed", int),
                       ("distill", float), ("distill-temperature", float)]:
        parser.add_argument(f"--{name}", type=kind, help=HELP.get(name))
    parser.add_argument("--augment", choices=["none", "basic", "strong"])
    parser.add_argument("--mixed-precision", choices=["auto", "float32", "mixed_float16", "mixed_bfloat16"])
    parser.add_argument("--strategy", choices=["auto", "none", "mirrored"])
    parser.add_argument("--keep", choices=["best", "last"], help="the model tested: best by validation accuracy, or last epoch")
    parser.add_argument("--train-on-validation", action=argparse.BooleanOptionalAction,
                        help="train on the validation images too (the final run of a fixed recipe; tests the last epoch)")
    parser.add_argument("--variant", help="model variant such as Ti/4; default: the recipe's custom model")
    parser.add_argument("--stem", choices=["patch", "conv", "shifted"],
                        help="tokenizer: plain patches, a conv stem (hybrid) or shifted patch tokenization; "
                             "default: the recipe's, or patch with --variant")
    parser.add_argument("--verbose", type=int, default=2, help="Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch")
    args = parser.parse_args(argv)

    from vitlib import training

    name = args.recipe or (args.dataset if args.dataset in training.RECIPES else "digits")
    overrides = {k: v for k, v in vars(args).items()
                 if v is not None and k not in ("recipe", "out", "variant", "stem", "verbose", "canvas_size")}
    if args.canvas_size is not None:
        overrides["dataset_options"] = {"canvas_size": args.canvas_size}
    if args.variant:
        overrides["model"] = {"variant": args.variant, "patch_size": None, "hidden_size": None, "depth": None,
                              "num_heads": None, "mlp_dim": None, "stem": "patch"}
    if args.stem:
        overrides["model"] = {**overrides.get("model", {}), "stem": args.stem}
    try:
        config = training.recipe(name, **overrides)
        metrics = training.train(config, args.out or f"runs/{args.dataset}", verbose=args.verbose)
    except (ValueError, training.DatasetUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: metrics[k] for k in ("test_accuracy", "tested_model", "best_val_accuracy", "train_images", "train_seconds", "parameters",
                                                  "teacher_test_accuracy", "teacher_seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
