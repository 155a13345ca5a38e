"""Figures for the notebooks. Each function returns a matplotlib ``Figure`` (not attached to pyplot, so a
notebook shows it once, as the cell's value). The figures of the analyses are in
:mod:`vitlib.inspection.analysis_figures`."""
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vitlib import _checks
from vitlib.patches import extract_patches, patch_grid


def _as_rgb(image):
    image = np.asarray(image, dtype="float32")
    return image[..., 0] if image.shape[-1] == 1 else image


def draw_patch_grid(ax, image, patch_size, numbers=True):
    """Show ``image`` (H, W, C) on ``ax`` with the patch grid and each patch's token index."""
    rows, cols = patch_grid(image.shape[:2], patch_size)
    ax.imshow(_as_rgb(image), cmap="gray")
    for r in range(1, rows):
        ax.axhline(r * patch_size - 0.5, color="white", lw=0.8)
    for c in range(1, cols):
        ax.axvline(c * patch_size - 0.5, color="white", lw=0.8)
    if numbers and rows * cols <= 64:
        for i in range(rows * cols):
            r, c = divmod(i, cols)
            ax.text((c + 0.5) * patch_size, (r + 0.5) * patch_size, str(i), color="yellow", ha="center",
                    va="center", fontsize=8, fontweight="bold")
    ax.set_title(f"{rows}x{cols} = {rows * cols} patches of {patch_size}x{patch_size}")
    ax.axis("off")


def patch_figure(image, patch_size, max_tokens=12):
    """The image with its patch grid, the first tokens in sequence order, and the token matrix (N, P·P·C)."""
    image = np.asarray(image, dtype="float32")
    if image.ndim != 3:
        raise ValueError(f"image must be one (height, width, channels) image, got shape {image.shape}.")
    tokens = np.asarray(extract_patches(image[None], patch_size))[0]  # (N, P·P·C)
    n, dim = tokens.shape
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    grid = fig.add_gridspec(2, max_tokens, height_ratios=[3, 1])
    draw_patch_grid(fig.add_subplot(grid[0, : max_tokens // 2]), image, patch_size)
    ax = fig.add_subplot(grid[0, max_tokens // 2:])
    ax.imshow(tokens, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set(title=f"token matrix: {n} tokens x {dim} values", xlabel="value index (row, col, channel)",
           ylabel="token index (from 0)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # tokens are whole: no 0.5 steps with few of them
    channels = image.shape[-1]
    for i in range(min(max_tokens, n)):
        ax = fig.add_subplot(grid[1, i])
        ax.imshow(_as_rgb(tokens[i].reshape(patch_size, patch_size, channels)), cmap="gray")
        ax.set_title(str(i), fontsize=8)
        ax.axis("off")
    return fig


def _image_grid(images, columns, title, labels=None, size=(0.95, 1.05), interpolation=None):
    """Small images in [0, 1] on a grid of ``columns``, with optional labels above them."""
    rows = -(-len(images) // columns)
    fig = Figure(figsize=(columns * size[0], rows * size[1] + 0.4), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(_as_rgb(images[i]), cmap="gray", interpolation=interpolation)
            if labels is not None:
                ax.set_title(labels[i], fontsize=7)
    fig.suptitle(title)
    return fig


def examples_figure(rows, title=None, labels=None):
    """Rows of small images, one row per entry of ``rows`` (``{row label: images (n, H, W, C)}``), all on one grey
    scale from 0 to 1; ``labels`` (optional) titles the columns."""
    rows = {name: np.asarray(images) for name, images in rows.items()}
    columns = max(len(images) for images in rows.values())
    fig = Figure(figsize=(1.1 * columns + 1.2, 1.15 * len(rows) + 0.3), layout="constrained")
    axes = fig.subplots(len(rows), columns, squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([]), ax.set_yticks([])
            if c < len(images):
                ax.imshow(_as_rgb(images[c]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.axis("off")
            if r == 0 and labels is not None and c < len(labels):
                ax.set_title(labels[c], fontsize=8)
        axes[r, 0].set_ylabel(name, fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def bar_figure(names, values, ylabel, title, reference=None):
    """Bars for ``values``; ``reference`` (same length) draws a second series for comparison."""
    _checks.positive_int("number of bars", len(names))
    for label, series in (("values", values), ("reference", reference)):
        if series is not None and len(series) != len(names):
            raise ValueError(f"{len(names)} names but {len(series)} {label}: give one value per bar.")
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(names))
    width = 0.4 if reference is not None else 0.7
    ax.bar(x - (width / 2 if reference is not None else 0), values, width, label="measured")
    if reference is not None:
        ax.bar(x + width / 2, reference, width, label="reference")
        ax.legend()
    ax.set_xticks(x, names)
    ax.set(ylabel=ylabel, title=title)
    return fig


def history_figure(history, title="learning curves"):
    """Loss and accuracy per epoch, training and validation. ``history``: a dict of lists (Keras' History.history,
    ``train()``'s ``"history"``, or ``vitlib.training.fitting.read_history(path)`` of a CSVLogger file)."""
    if not isinstance(history, dict):
        raise ValueError(f"history must be a dict of lists such as {{'loss': [...]}}, got {type(history).__name__}. "
                         "For a CSVLogger file pass vitlib.training.fitting.read_history(path).")
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + metric in history:
                ax.plot(np.arange(1, len(history[prefix + metric]) + 1), history[prefix + metric], style,
                        label="validation" if prefix else "training")
        ax.set(xlabel="epoch", ylabel=metric)
        ax.legend()
    fig.suptitle(title)
    return fig


def scaling_figure(summary, x="fraction", value="test accuracy", title="test accuracy against training data",
                   xlabel="fraction of the training images"):
    """One line per model with error bars: ``summary`` is :func:`vitlib.training.experiments.summarise`'s list of dicts
    (keys ``model``, ``x``, ``mean``, ``std``, ``min``, ``max``); bars span each group's min..max, the dot its mean."""
    if not summary or any(k not in row for row in summary for k in ("model", x, "mean", "min", "max")):
        raise ValueError(f"summary must be vitlib.training.experiments.summarise(rows, by=('model', {x!r})): a non-empty list "
                         f"of dicts with the keys model, {x}, mean, min and max.")
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    for name in dict.fromkeys(row["model"] for row in summary):
        rows = sorted((row for row in summary if row["model"] == name), key=lambda row: row[x])
        xs, means = np.array([row[x] for row in rows]), np.array([row["mean"] for row in rows])
        spread = np.array([[m - row["min"] for m, row in zip(means, rows)], [row["max"] - m for m, row in zip(means, rows)]])
        spread = np.clip(spread, 0, None)  # equal values: mean - min may round to -1e-17
        ax.errorbar(xs, means, yerr=spread, marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ticks = sorted({row[x] for row in summary})
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set(xlabel=xlabel, ylabel=value, title=title)
    ax.legend()
    return fig


def confusion_matrix_figure(y_true, y_pred, class_names=None, title="confusion matrix (test split)"):
    """Counts of (true class, predicted class), with the counts written in the cells."""
    if np.shape(y_true) != np.shape(y_pred):
        raise ValueError(f"y_true and y_pred must be label arrays of one shape, got {np.shape(y_true)} and "
                         f"{np.shape(y_pred)}. Turn logits into labels first: argmax(logits, -1).")
    k = len(class_names) if class_names is not None else int(max(np.max(y_true), np.max(y_pred))) + 1
    counts = np.zeros((k, k), int)
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(counts, cmap="Blues")
    for (i, j), c in np.ndenumerate(counts):
        if c:
            ax.text(j, i, str(c), ha="center", va="center", fontsize=8,
                    color="white" if c > counts.max() / 2 else "black")
    names = class_names if class_names is not None else [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 2 else 0)
    ax.set_yticks(range(k), names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return fig
