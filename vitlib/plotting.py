"""Figures for the notebooks. Each function returns a matplotlib ``Figure`` (not attached to pyplot, so a
notebook shows it once, as the cell's value)."""
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
    tokens = np.asarray(extract_patches(image[None], patch_size))[0]  # (N, P·P·C)
    n, dim = tokens.shape
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    grid = fig.add_gridspec(2, max_tokens, height_ratios=[3, 1])
    draw_patch_grid(fig.add_subplot(grid[0, : max_tokens // 2]), image, patch_size)
    ax = fig.add_subplot(grid[0, max_tokens // 2:])
    ax.imshow(tokens, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set(title=f"token matrix: {n} tokens x {dim} values", xlabel="value index (row, col, channel)",
           ylabel="token index")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # tokens are whole: no 0.5 steps with few of them
    channels = image.shape[-1]
    for i in range(min(max_tokens, n)):
        ax = fig.add_subplot(grid[1, i])
        ax.imshow(_as_rgb(tokens[i].reshape(patch_size, patch_size, channels)), cmap="gray")
        ax.set_title(str(i), fontsize=8)
        ax.axis("off")
    return fig


def attention_matrix_figure(weights, labels=None, title="attention weights"):
    """A (queries, keys) attention matrix as a heat map, each row summing to one."""
    weights = np.asarray(weights)
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

    similarity: (rows, cols, rows, cols) from :func:`vitlib.analysis.position_similarity`. ``step``
    shows every step-th patch only, for large grids. One colour scale for all maps, from ``vmin`` (default: the
    lowest similarity) to 1; give several figures the same ``vmin`` to compare them by eye.
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
                axes[a, b].set_ylabel(str(r + 1), fontsize=8)
            if a == len(shown_r) - 1:
                axes[a, b].set_xlabel(str(c + 1), fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.6, label="cosine similarity")
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
    """Loss and accuracy per epoch, training and validation. ``history``: a dict of lists (Keras' History.history)
    or the path of a CSVLogger file."""
    if not isinstance(history, dict):
        from vitlib.training import read_history

        history = read_history(history)
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


def confusion_matrix_figure(y_true, y_pred, class_names=None, title="confusion matrix (test split)"):
    """Counts of (true class, predicted class), with the counts written in the cells."""
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


def attention_on_image_figure(image, heat, title="attention rollout", alpha=0.45):
    """An image, its patch-level attention map (rows, cols) stretched over it, and the map alone."""
    image = np.asarray(image, dtype="float32")
    heat = np.asarray(heat, dtype="float32")
    if heat.ndim != 2:
        raise ValueError(f"heat must be a (rows, cols) map, got shape {heat.shape}; take one image: heat[0].")
    h, w = image.shape[:2]
    fig = Figure(figsize=(7, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.imshow(heat, cmap="inferno", extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="nearest")
    left.imshow(_as_rgb(image), cmap="gray", alpha=alpha)
    if image.shape[-1] == 1:  # outline the ink, so that a dark digit stays visible on a bright map
        left.contour(image[..., 0], levels=[0.5 * float(image.max())], colors="cyan", linewidths=1.0)
    left.set_title("over the image (ink outlined)" if image.shape[-1] == 1 else "over the image")
    im = right.imshow(heat, cmap="inferno", vmin=0)
    right.set_title(f"{heat.shape[0]}x{heat.shape[1]} patches")
    for ax in (left, right):
        ax.axis("off")
    fig.colorbar(im, ax=right, shrink=0.8, label="share of attention")
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
        for b in baseline:
            ax.scatter((layer + offset)[:, None].repeat(heads, 1), b, s=16, marker="x", color="grey",
                       label=labels[1] if b is baseline[0] else None)
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
    from :func:`vitlib.analysis.similarity_by_distance` for each seed. Lines show the mean over seeds, bands the
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
    labels = None if explained is None else [f"{e:.0%}" for e in explained]
    return _image_grid(list(np.asarray(components)), columns, title, labels, interpolation="nearest")
