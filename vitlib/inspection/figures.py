"""Every figure of the collection, in one place (each function returns a matplotlib ``Figure``, not attached to
pyplot, so a notebook shows it once, as the cell's value). The numbers they draw come from elsewhere:
:mod:`vitlib.inspection.analysis` computes what a ViT learned, this module only draws.

- the notebooks' figures: patches on an image, example images, bars, learning curves, scaling curves, confusion
  matrices;
- the analyses' figures (notebook 07): attention matrices and rollout, mean attention distance, position-embedding
  similarity, patch-embedding filters.
"""
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

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


# The analyses' figures (notebook 07, vitlib.inspection.analysis).


def attention_matrix_figure(weights, labels=None, title="attention weights"):
    """A (queries, keys) attention matrix as a heat map, each row summing to one."""
    weights = np.asarray(weights)
    if weights.ndim != 2:
        raise ValueError(f"weights must be one (queries, keys) matrix, got shape {weights.shape}: "
                         "pick an image and a head, e.g. weights[0, 0].")
    if labels is not None and len(labels) != weights.shape[1]:
        raise ValueError(f"{len(labels)} labels for {weights.shape[1]} tokens: give one label per token.")
    fig = Figure(figsize=(4.5, 4), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(weights, cmap="Blues", vmin=0)
    ax.set(title=title, xlabel="key", ylabel="query")
    if labels is not None:
        ax.set_xticks(range(len(labels)), labels, rotation=90)
        ax.set_yticks(range(len(labels)), labels)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def similarity_grid_figure(similarity, title="position embedding similarity", step=1, vmin=None):
    """Fig. 7 (centre) of the paper: for each patch, its cosine similarity with every other patch.

    similarity: (rows, cols, rows, cols) from :func:`vitlib.inspection.analysis.position_similarity`; the map in row r, column c
    (counted from 0, as ``similarity[r, c]``) is patch (r, c)'s. ``step`` shows every step-th patch only, for large
    grids. One colour scale for all maps, from ``vmin`` (default: the lowest similarity) to 1; give several figures the
    same ``vmin`` to compare them by eye.
    """
    similarity = np.asarray(similarity)
    if similarity.ndim != 4:
        raise ValueError(f"similarity must be (rows, cols, rows, cols), got shape {similarity.shape}.")
    rows, cols = similarity.shape[:2]
    low = float(np.min(similarity)) if vmin is None else float(vmin)
    shown_r, shown_c = range(0, rows, step), range(0, cols, step)
    fig = Figure(figsize=(1.0 * len(shown_c) + 1, 1.0 * len(shown_r)), layout="constrained")
    axes = fig.subplots(len(shown_r), len(shown_c), squeeze=False)
    for a, r in enumerate(shown_r):
        for b, c in enumerate(shown_c):
            im = axes[a, b].imshow(similarity[r, c], vmin=low, vmax=1, cmap="viridis")
            axes[a, b].set_xticks([]), axes[a, b].set_yticks([])
            if b == 0:
                axes[a, b].set_ylabel(str(r), fontsize=8)
            if a == len(shown_r) - 1:
                axes[a, b].set_xlabel(str(c), fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.6, label="cosine similarity")
    fig.supylabel("row of the patch (from 0)", fontsize=9)
    fig.supxlabel("column of the patch (from 0)", fontsize=9)
    fig.suptitle(title)
    return fig


def filters_figure(kernel, max_filters=32, columns=8):
    """The first filters of a patch-embedding kernel (P, P, C, D) as small images, each scaled to [0, 1]."""
    kernel = np.asarray(kernel)
    if kernel.ndim != 4:
        raise ValueError(f"kernel must have shape (P, P, C, D), got {kernel.shape}. Reshape a Dense kernel first.")
    count = min(max_filters, kernel.shape[-1])
    filters = [kernel[..., i] for i in range(count)]
    return _image_grid([(f - f.min()) / max(f.max() - f.min(), 1e-12) for f in filters], columns,
                       f"{count} of {kernel.shape[-1]} embedding filters", size=(0.9, 0.9))


def attention_on_image_figure(image, heat, title="attention rollout", alpha=0.45, vmax=None):
    """An image, its patch-level attention map (rows, cols) stretched over it, and the map alone with its rows and
    columns numbered from 0. Colours run from 0 to ``vmax`` (default: the map's maximum); give several figures one
    ``vmax`` to compare them by eye. The white line on the colour bar is the share of attention spread evenly."""
    image = np.asarray(image, dtype="float32")
    heat = np.asarray(heat, dtype="float32")
    if heat.ndim != 2:
        raise ValueError(f"heat must be a (rows, cols) map, got shape {heat.shape}; take one image: heat[0].")
    h, w = image.shape[:2]
    rows, cols = heat.shape
    vmax = float(heat.max()) if vmax is None else float(vmax)
    fig = Figure(figsize=(7, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.imshow(heat, cmap="inferno", vmin=0, vmax=vmax, extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="nearest")
    left.imshow(_as_rgb(image), cmap="gray", alpha=alpha)
    if image.shape[-1] == 1:  # outline the ink, so that a dark digit stays visible on a bright map
        left.contour(image[..., 0], levels=[0.5 * float(image.max())], colors="cyan", linewidths=1.0)
    left.set_title("over the image (ink outlined)" if image.shape[-1] == 1 else "over the image")
    left.axis("off")
    im = right.imshow(heat, cmap="inferno", vmin=0, vmax=vmax)
    step = 1 if max(rows, cols) <= 16 else 2
    right.set_xticks(range(0, cols, step)), right.set_yticks(range(0, rows, step))
    right.tick_params(labelsize=8, length=2)
    right.set_xlabel("column", fontsize=8), right.set_ylabel("row", fontsize=8)
    right.set_title(f"{rows}x{cols} patches")
    colour_bar = fig.colorbar(im, ax=right, shrink=0.8, label="share of attention (line: spread evenly)",
                              format=PercentFormatter(xmax=1, decimals=0 if vmax >= 0.1 else 1))  # as the readouts
    colour_bar.ax.axhline(1 / heat.size, color="white", lw=2)
    fig.suptitle(title)
    return fig


def attention_distance_figure(distances, image_size=None, title="mean attention distance", baseline=None,
                              uniform=None, labels=("trained", "untrained")):
    """Fig. 7 (right): mean attention distance against depth, one dot per head. ``distances`` (L, heads), or
    (seeds, L, heads) for several trained models (all dots drawn). ``baseline``: the same for a control (such as
    the untrained model), drawn as grey crosses beside; ``uniform``: the distance of uniform attention, a line."""
    distances = np.asarray(distances)
    if distances.ndim == 2:
        distances = distances[None]
    if distances.ndim != 3:
        raise ValueError(f"distances must be (layers, heads) or (seeds, layers, heads), got shape {distances.shape}.")
    _, depth, heads = distances.shape
    fig = Figure(figsize=(5.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    layer = np.arange(1, depth + 1)
    offset = 0.12 if baseline is not None else 0.0
    colours = [f"C{h % 10}" for h in range(heads)]
    for h in range(heads):
        for s, seed_distances in enumerate(distances):
            ax.scatter(layer - offset, seed_distances[:, h], s=16, color=colours[h],
                       label=f"head {h + 1}" if s == 0 and heads <= 8 else None)
    if baseline is not None:
        baseline = np.asarray(baseline).reshape(-1, depth, heads)
        for i, b in enumerate(baseline):  # one legend entry for the control, however many seeds
            ax.scatter((layer + offset)[:, None].repeat(heads, 1), b, s=16, marker="x", color="grey",
                       label=labels[1] if i == 0 else None)
    if uniform is not None:
        ax.axhline(uniform, color="black", lw=0.8, ls=":", label="uniform attention")
    ax.set(xlabel="network depth (layer)", ylabel="mean attention distance (pixels)", title=title, xticks=layer)
    if image_size is not None:
        ax.set_ylim(0, None)
        if uniform is None:  # the uniform line is the better reference; both would crowd each other
            ax.axhline(image_size / 2, color="grey", lw=0.8, ls="--")
            ax.text(1, image_size / 2, " half the image width", va="bottom", fontsize=8, color="grey")
    if heads <= 8 or baseline is not None or uniform is not None:
        ax.legend(fontsize=7, ncol=2)
    return fig


def distance_curve_figure(curves, title="position embedding similarity against distance"):
    """Mean similarity against the distance between patches, one line per model with its spread over seeds.

    ``curves``: ``{label: (distances, values)}`` with values (seeds, len(distances)) or (len(distances),), e.g.
    from :func:`vitlib.inspection.analysis.similarity_by_distance` for each seed. Lines show the mean over seeds, bands the
    lowest to highest seed."""
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for label, (distances, values) in curves.items():
        values = np.atleast_2d(np.asarray(values, dtype="float64"))
        if values.shape[1] != len(distances):
            raise ValueError(f"{label!r}: {values.shape[1]} values per seed for {len(distances)} distances.")
        seeds = f" ({len(values)} seeds)" if len(values) > 1 else ""
        line, = ax.plot(distances, values.mean(0), marker="o", ms=3, label=label + seeds)
        if len(values) > 1:
            ax.fill_between(distances, values.min(0), values.max(0), color=line.get_color(), alpha=0.2, lw=0)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set(xlabel="distance between the two patches (patches, rounded)", ylabel="mean cosine similarity", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    return fig


def filter_components_figure(components, explained=None, columns=7, title="principal components of the embedding filters"):
    """Fig. 7 (left): the principal components (k, P, P, C) of the patch-embedding filters as images."""
    components = np.asarray(components)
    if components.ndim != 4:
        raise ValueError(f"components must be (k, P, P, C) images, got shape {components.shape}.")
    labels = None if explained is None else [f"{e:.0%}" for e in explained]
    fig = _image_grid(list(np.asarray(components)), columns, title, labels, interpolation="nearest")
    for ax in fig.axes:  # a frame and a gap around each component: its white pixels stay apart from the page's
        if ax.get_images():
            ax.axis("on")
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set(edgecolor="0.35", linewidth=1.0)
    fig.get_layout_engine().set(w_pad=0.06, h_pad=0.06, wspace=0.08, hspace=0.08)
    return fig


def similarity_mosaic(similarity):
    """All the maps of a (rows, cols, rows, cols) similarity array tiled into one image, patch (r, c)'s map at
    block (r, c), one blank (NaN) pixel between blocks: the whole of :func:`similarity_grid_figure` in one picture."""
    similarity = np.asarray(similarity, dtype="float64")
    if similarity.ndim != 4:
        raise ValueError(f"similarity must be (rows, cols, rows, cols), got shape {similarity.shape}.")
    rows, cols = similarity.shape[:2]
    mosaic = np.full((rows * (rows + 1) - 1, cols * (cols + 1) - 1), np.nan)
    for r in range(rows):
        for c in range(cols):
            mosaic[r * (rows + 1):r * (rows + 1) + rows, c * (cols + 1):c * (cols + 1) + cols] = similarity[r, c]
    return mosaic


def similarity_snapshots_figure(snapshots, title="position embedding similarity as training goes on", vmin=None):
    """Several similarity arrays side by side on one colour scale, e.g. one model after 0, 5, 20 and 120 epochs.
    ``snapshots``: ``{panel title: (rows, cols, rows, cols) similarity}``; each panel tiles every patch's map at
    the patch's place (:func:`similarity_mosaic`)."""
    if not snapshots:
        raise ValueError("Give at least one similarity array, as {title: array}.")
    mosaics = {name: similarity_mosaic(s) for name, s in snapshots.items()}
    low = min(float(np.nanmin(m)) for m in mosaics.values()) if vmin is None else float(vmin)
    fig = Figure(figsize=(2.6 * len(mosaics) + 0.8, 3.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(mosaics)))
    for ax, (name, mosaic) in zip(axes, mosaics.items()):
        im = ax.imshow(mosaic, vmin=low, vmax=1, cmap="viridis", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, ax=axes, shrink=0.8, label="cosine similarity")
    fig.suptitle(title)
    return fig


def layout_emergence_figure(curves, accuracy=None, untrained=None, title="the layout forms as the model learns"):
    """The locality gap while training goes on. Left: against epochs, one line per model (the mean over seeds, a
    band from the lowest to the highest seed). Right (with ``accuracy``): against the validation accuracy of the
    same epochs, one line per seed of the first model.

    ``curves``: ``{label: gaps}`` with gaps (seeds, epochs), the gap after epochs 1, 2, ... (``history.csv``'s
    ``locality_gap``); ``accuracy``: (seeds, epochs) validation accuracy of the first model; ``untrained``: the
    gaps of untrained models, drawn as a grey band from their lowest to their highest."""
    fig = Figure(figsize=(10 if accuracy is not None else 5.6, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, 2 if accuracy is not None else 1))
    for label, gaps in curves.items():
        gaps = np.atleast_2d(np.asarray(gaps, dtype="float64"))
        epochs = np.arange(1, gaps.shape[1] + 1)
        seeds = f" ({len(gaps)} seeds)" if len(gaps) > 1 else ""
        line, = axes[0].plot(epochs, gaps.mean(0), label=label + seeds)
        if len(gaps) > 1:
            axes[0].fill_between(epochs, gaps.min(0), gaps.max(0), color=line.get_color(), alpha=0.2, lw=0)
    axes[0].set(xlabel="epoch", ylabel="locality gap", title="against training time")
    if accuracy is not None:
        first = np.atleast_2d(np.asarray(next(iter(curves.values())), dtype="float64"))
        accuracy = np.atleast_2d(np.asarray(accuracy, dtype="float64"))
        if accuracy.shape != first.shape:
            raise ValueError(f"accuracy has shape {accuracy.shape}, the first model's gaps {first.shape}: give the "
                             "validation accuracy of the same seeds and epochs.")
        for s, (acc, gap) in enumerate(zip(accuracy, first)):
            axes[1].plot(100 * acc, gap, marker="o", ms=2, lw=0.8, alpha=0.8, label=f"seed {s}" if len(first) > 1 else None)
        axes[1].set(xlabel="validation accuracy (%)", ylabel="locality gap", title=f"{next(iter(curves))}: against accuracy")
    for ax in axes:
        if untrained is not None:
            low, high = float(np.min(untrained)), float(np.max(untrained))
            ax.axhspan(min(low, -0.005), max(high, 0.005), color="grey", alpha=0.35, lw=0, label="untrained")
        ax.axhline(0, color="grey", lw=0.6)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig
