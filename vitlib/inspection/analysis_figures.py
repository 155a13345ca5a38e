"""Figures of what a trained ViT learned (notebook 07 and :mod:`vitlib.inspection.analysis`): attention matrices and
rollout, mean attention distance, position-embedding similarity, patch-embedding filters."""
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from vitlib.inspection.plotting import _as_rgb, _image_grid


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
