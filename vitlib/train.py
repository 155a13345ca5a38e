"""The command line, ``python -m vitlib.train --dataset digits --epochs 30 --out runs/digits``: options in, a run
out. The training loop it runs is :func:`vitlib.training.loop.train`.

Starts from the data set's recipe (see ``vitlib.training.recipes.RECIPES``), or the generic recipe for a data set
without one (``recipes.recipe_for``); options override it. Run the same
command again after an interruption to resume. ``--resume-from runs/digits/last.keras --image-size 16`` fine-tunes
a saved model at a new resolution, its position embeddings interpolated (Sec. 3.2 of the paper).
Writes ``OUT/metrics.json``, ``OUT/best.keras`` (best validation accuracy) and ``OUT/last.keras`` (last epoch);
``--keep`` says which one is tested. The digits recipe trains its final run on the validation images too
(``--no-train-on-validation`` holds them out).
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


MODEL_OPTIONS = ("stem", "pool", "pos_embedding", "attention", "attention_position")  # build_vit keywords
HELP = {"distill": "weight of a small CNN teacher's soft labels in the loss, 0 to 1 (0: no teacher)",
        "translate": "random shifts of up to this fraction of the image size"}


def build_parser():
    """The command line's options: the recipe's fields, and the registries' names as the choices of their options."""
    from vitlib import attention, model, patch_embedding, position_embedding  # the registries
    from vitlib.data import datasets, pipeline
    from vitlib.training import devices, recipes

    parser = argparse.ArgumentParser(prog="python -m vitlib.train", description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--dataset", choices=list(datasets.DATASETS), metavar="DATASET", help=_dataset_help())
    canvas = {name: entry.options["canvas_size"] for name, entry in datasets.DATASETS.items()
              if "canvas_size" in entry.options}
    parser.add_argument("--canvas-size", type=int, help=f"{', '.join(canvas)}: the canvas' side in pixels (default "
                                                        f"{', '.join(sorted(set(map(str, canvas.values()))))})")
    parser.add_argument("--recipe", choices=list(recipes.RECIPES),
                        help="recipe to start from (default: the data set's own, else the generic recipe: the digits "
                             "recipes' optimiser and model size, plain patches of the largest size that leaves a grid "
                             "of at least 4x4, no augmentation)")
    parser.add_argument("--out", default=None, help="output folder (default runs/DATASET)")
    for name, kind in [("epochs", int), ("batch-size", int), ("learning-rate", float), ("weight-decay", float),
                       ("warmup-epochs", int), ("label-smoothing", float), ("translate", float), ("seed", int),
                       ("distill", float), ("distill-temperature", float)]:
        parser.add_argument(f"--{name}", type=kind, help=HELP.get(name))
    parser.add_argument("--augment", choices=list(pipeline.AUGMENTATIONS))
    parser.add_argument("--mixed-precision", choices=list(devices.PRECISIONS))
    parser.add_argument("--strategy", choices=list(devices.STRATEGIES))
    parser.add_argument("--keep", choices=["best", "last"], help="the model tested: best by validation accuracy, or last epoch")
    parser.add_argument("--train-on-validation", action=argparse.BooleanOptionalAction,
                        help="train on the validation images too (the final run of a fixed recipe; tests the last epoch)")
    parser.add_argument("--shuffle-labels", action="store_true", default=None,
                        help="a control: permute the training labels at random, so that there is nothing to learn")
    parser.add_argument("--track-layout", action=argparse.BooleanOptionalAction,
                        help="write the position embeddings' locality gap after every epoch into history.csv, and "
                             "their tables at a few epochs into OUT/layout.npz")
    parser.add_argument("--variant", type=_variant,
                        help=f"model variant such as Ti/4: a size of {', '.join(model.VARIANTS)} and a patch size; "
                             "default: the recipe's custom model")
    parser.add_argument("--stem", choices=list(patch_embedding.STEMS),
                        help="tokenizer: plain patches, a conv stem (hybrid) or shifted patch tokenization; "
                             "default: the recipe's, or patch with --variant")
    parser.add_argument("--pool", choices=list(model.POOLS), help="class token or global average pooling")
    parser.add_argument("--pos-embedding", choices=list(position_embedding.POSITION_EMBEDDINGS))
    parser.add_argument("--attention", choices=list(attention.ATTENTIONS), help="the encoder blocks' attention layer")
    parser.add_argument("--attention-position", choices=list(attention.ATTENTION_POSITIONS),
                        help="a position scheme that acts inside attention (such as RoPE)")
    parser.add_argument("--speed", action=argparse.BooleanOptionalAction,
                        help="the speed layer (vitlib.speed; the recipes turn it on): --no-speed trains on plain Keras")
    parser.add_argument("--image-size", type=int,
                        help="resize every image to N x N first (e.g. 16: the 8x8 digits at twice their resolution)")
    parser.add_argument("--resume-from", metavar="MODEL.keras",
                        help="fine-tune this saved vitlib ViT (its architecture replaces the recipe's); with "
                             "--image-size at a new resolution, its position embeddings resized (Sec. 3.2)")
    parser.add_argument("--pos-resize", choices=list(position_embedding.POSITION_RESIZES),
                        help="--resume-from at a new size: interpolate the position embeddings, or start them anew")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                        help="Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch (default: 1 in a "
                             "terminal, 2 when the output goes to a file or a log)")
    parser.add_argument("--quiet", action="store_true", help="print nothing while training (same as --verbose 0)")
    return parser


def _dataset_help():
    """``--dataset``'s help: every registered data set with its description (``DATASETS``)."""
    from vitlib.data import datasets

    described = "; ".join(f"{name}: {entry.description}" for name, entry in datasets.DATASETS.items())
    return "default: the --recipe's, else digits. " + described.replace("%", "%%")  # argparse formats with %


def main(argv=None):
    from vitlib.data import datasets
    from vitlib.training import loop, multiworker, recipes

    options = build_parser()
    args = options.parse_args(argv)
    if args.quiet and args.verbose not in (None, 0):
        options.error(f"--quiet and --verbose {args.verbose} contradict each other: give one of them.")
    verbose = 0 if args.quiet else args.verbose if args.verbose is not None else 1 if sys.stdout.isatty() else 2
    overrides, model_options = recipe_overrides(args)
    if args.resume_from is not None and (args.variant or model_options):
        given = ", ".join(f"--{k.replace('_', '-')}" for k in ("variant", *MODEL_OPTIONS) if getattr(args, k) is not None)
        print(f"error: {given} cannot change the architecture of --resume-from {args.resume_from}: leave "
              f"{'it' if ',' not in given else 'them'} out (the saved model's architecture is used).", file=sys.stderr)
        return 2
    try:
        config = (recipes.recipe(args.recipe, **overrides) if args.recipe
                  else recipes.recipe_for(args.dataset or "digits", **overrides))
        metrics = loop.train(config, args.out or f"runs/{config.dataset}", verbose=verbose)
    except (ValueError, datasets.DatasetUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except multiworker.WorkerLost as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({k: metrics[k] for k in ("test_accuracy", "tested_model", "best_val_accuracy", "train_images",
                                              "train_seconds", "parameters", "teacher_test_accuracy", "teacher_seconds")}))
    return 0


def recipe_overrides(args):
    """The recipe's fields the command line sets, and among them the model's options."""
    overrides = {k: v for k, v in vars(args).items()
                 if v is not None and k not in ("recipe", "out", "variant", "verbose", "quiet", "canvas_size",
                                                     *MODEL_OPTIONS)}
    if args.resume_from is not None:
        overrides["init_from"] = overrides.pop("resume_from")
    if args.canvas_size is not None:
        overrides["dataset_options"] = {"canvas_size": args.canvas_size}
    if args.variant:
        overrides["model"] = {"variant": args.variant, "patch_size": None, "hidden_size": None, "depth": None,
                              "num_heads": None, "mlp_dim": None, "stem": "patch"}
    model_options = {k: getattr(args, k) for k in MODEL_OPTIONS if getattr(args, k) is not None}
    if model_options:
        overrides["model"] = {**overrides.get("model", {}), **model_options}
    return overrides, model_options


def _variant(text):
    """``--variant``'s check: a size of ``VARIANTS`` and a patch size, as ``build_vit`` reads it."""
    from vitlib.model import parse_variant

    try:
        parse_variant(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


if __name__ == "__main__":
    code = main()
    if code == 1:  # a lost worker: TensorFlow's cluster threads fail noisily at exit ("Bad file descriptor"), so
        sys.stdout.flush()  # leave without that clean-up: the error stays the last line
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
