"""Interactive views for JupyterLab. Each function returns the widget; its parts are attributes so that
tests (and curious learners) can drive it from Python: ``w.patch_size.value = 32``."""
import io

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from vitlib.analysis import attention_rollout, rollout_map
from vitlib.data import SAMPLE_IMAGES, sample_image
from vitlib.model import attention_weights
from vitlib.patches import num_patches
from vitlib.plotting import attention_on_image_figure, patch_figure


def divisors(n, smallest=2, largest=None):
    """Patch sizes that tile an n-pixel side exactly."""
    largest = largest or n // 2
    return [d for d in range(smallest, largest + 1) if n % d == 0]


def figure_png(fig, dpi=80):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def png_size(png):
    """(width, height) in pixels of a PNG, read from its header."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def show_png(view, png):
    """Put a PNG into an ``Image`` widget at its own size: JupyterLab would otherwise stretch it to the output's
    width (blurry, and taller than the screen)."""
    width, height = png_size(png)
    view.value = png
    view.layout.width, view.layout.height = f"{width}px", f"{height}px"
    view.layout.object_fit = "contain"


def _choices(items, what):
    """``{name: item}`` from a dict, or from one item (named ``""``: no toggle is shown)."""
    if isinstance(items, dict):
        if not items:
            raise ValueError(f"Give at least one {what}.")
        return dict(items)
    return {"": items}


def token_stats(image_size, patch_size, channels=3):
    """Numbers shown by the explorer: tokens N, values per token, attention entries N² per head."""
    n = num_patches(image_size, patch_size)
    return {"tokens": n, "values_per_token": patch_size * patch_size * channels, "attention_entries": n * n}


class PatchExplorer(widgets.VBox):
    """Pick an image and a patch size; see the grid, the token sequence and what attention costs."""

    def __init__(self, images=None, image_size=224, patch_size=16):
        self.images = images or {name: sample_image(name, image_size) for name in SAMPLE_IMAGES}
        sizes = {img.shape[:2] for img in self.images.values()}
        if len(sizes) != 1 or next(iter(sizes))[0] != next(iter(sizes))[1]:
            raise ValueError(f"PatchExplorer needs square images of one size, got sizes {sorted(sizes)}.")
        self.image_size = next(iter(sizes))[0]
        options = divisors(self.image_size, smallest=4)
        if patch_size not in options:
            raise ValueError(f"patch_size {patch_size} does not divide {self.image_size}; choose one of {options}.")
        self.image_name = widgets.Dropdown(options=list(self.images), description="image")
        self.patch_size = widgets.SelectionSlider(options=options, value=patch_size, description="patch size",
                                                  continuous_update=False)
        self.stats = widgets.HTML()
        self.view = widgets.Image(format="png")
        self.error = widgets.Output()
        for control in (self.image_name, self.patch_size):
            control.observe(self._update, names="value")
        super().__init__([widgets.HBox([self.image_name, self.patch_size]), self.stats, self.view, self.error])
        self._update()

    def _update(self, change=None):
        try:
            p = self.patch_size.value
            image = self.images[self.image_name.value]
            s = token_stats(self.image_size, p, image.shape[-1])
            self.stats.value = (
                f"<b>{self.image_size}x{self.image_size}</b> image, <b>{p}x{p}</b> patches: "
                f"<b>N = {s['tokens']:,}</b> tokens of {s['values_per_token']:,} values; "
                f"self-attention compares every pair: <b>N² = {s['attention_entries']:,}</b> scores per head"
            )
            show_png(self.view, figure_png(patch_figure(image, p)))
        except Exception as exc:  # shown in the widget: JupyterLab hides exceptions raised in callbacks
            with self.error:
                print(f"{type(exc).__name__}: {exc}")
            raise


def patch_explorer(images=None, image_size=224, patch_size=16):
    """The interactive patch explorer of notebook 01 (see :class:`PatchExplorer`)."""
    return PatchExplorer(images, image_size, patch_size)


class SimilarityExplorer(widgets.VBox):
    """Pick a patch (row, column, counted from 1 as in the grid figures); see the cosine similarity of its position
    embedding with every patch's.

    ``similarity``: (rows, cols, rows, cols) from :func:`vitlib.analysis.position_similarity`, or a dict of them,
    e.g. ``{"trained": ..., "untrained": ...}``: toggle buttons then switch between them (one colour scale for all).
    """

    def __init__(self, similarity, title="position embedding similarity"):
        self.maps = {name: np.asarray(m) for name, m in _choices(similarity, "similarity array").items()}
        shapes = {m.shape for m in self.maps.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 4:
            raise ValueError(f"similarity must be (rows, cols, rows, cols) arrays of one shape, got shapes {sorted(shapes)}.")
        rows, cols = next(iter(shapes))[:2]
        self.low = float(min(m.min() for m in self.maps.values()))
        self.title = title
        wide = {"description_width": "initial"}
        self.which = widgets.ToggleButtons(options=list(self.maps), description="model", style=wide)
        self.row = widgets.IntSlider(value=1, min=1, max=rows, description="row", continuous_update=False, style=wide)
        self.col = widgets.IntSlider(value=1, min=1, max=cols, description="column", continuous_update=False, style=wide)
        self.stats = widgets.HTML()
        self.view = widgets.Image(format="png")
        for control in (self.which, self.row, self.col):
            control.observe(self._update, names="value")
        controls = [self.row, self.col] if len(self.maps) == 1 else [self.which, self.row, self.col]
        super().__init__([widgets.HBox(controls), self.stats, self.view])
        self._update()

    @property
    def similarity(self):
        return self.maps[self.which.value]

    def current_map(self):
        return self.similarity[self.row.value - 1, self.col.value - 1]

    def _update(self, change=None):
        m = self.current_map()
        others = m.copy()
        others[self.row.value - 1, self.col.value - 1] = -np.inf  # the chosen patch itself is always 1
        peak = np.unravel_index(np.argmax(others), m.shape)
        self.stats.value = (f"patch ({self.row.value}, {self.col.value}): most similar other patch "
                            f"<b>({peak[0] + 1}, {peak[1] + 1})</b> ({others.max():.2f}); lowest similarity {m.min():.2f}")
        rows, cols = m.shape
        fig = Figure(figsize=(3.8, 3.1), layout="constrained")
        ax = fig.add_subplot()
        im = ax.imshow(m, vmin=self.low, vmax=1, cmap="viridis", extent=(0.5, cols + 0.5, rows + 0.5, 0.5))
        ax.scatter([self.col.value], [self.row.value], marker="x", color="red")
        ax.set(xticks=range(1, cols + 1), yticks=range(1, rows + 1), xlabel="column", ylabel="row")
        ax.tick_params(labelsize=7)
        ax.set_title(" ".join(filter(None, [self.which.value, self.title])), fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
        show_png(self.view, figure_png(fig))


class AttentionExplorer(widgets.VBox):
    """Pick an image, a layer and a head; see where the class token (or, without one, the average patch)
    looks, over the image. Choose "rollout" to see attention rolled out through all layers.

    ``model``: a ViT, or a dict of them with one configuration, e.g. ``{"trained": ..., "untrained": ...}``:
    toggle buttons then switch between them. Layers and heads are counted from 1.
    """

    def __init__(self, model, images):
        models = _choices(model, "model")
        self.images = np.asarray(images, dtype="float32")
        self.maps = {name: np.stack(attention_weights(m, self.images)) for name, m in models.items()}  # (L, B, heads, T, T)
        configs = {m.config for m in models.values()}
        if len(configs) != 1:
            raise ValueError("The models to compare must share one configuration (grid, depth, heads); "
                             "build the control with vitlib.analysis.untrained_copy(model).")
        config = configs.pop()
        self.grid = config.grid_size
        self.prefix = int(config.pool == "token")
        self._rollout = {name: rollout_map(attention_rollout(m), self.grid, self.prefix) for name, m in self.maps.items()}
        depth, heads = config.depth, config.num_heads
        self.which = widgets.ToggleButtons(options=list(models), description="model")
        self.image_index = widgets.IntSlider(value=1, min=1, max=len(self.images), description="image",
                                             continuous_update=False)
        self.layer = widgets.ToggleButtons(options=["rollout"] + list(range(1, depth + 1)), value=depth,
                                           description="layer", style={"button_width": "auto"})
        self.head = widgets.ToggleButtons(options=["mean"] + list(range(1, heads + 1)), value="mean",
                                          description="head", style={"button_width": "auto"})
        self.stats = widgets.HTML()
        self.view = widgets.Image(format="png")
        for control in (self.which, self.image_index, self.layer, self.head):
            control.observe(self._update, names="value")
        controls = ([] if len(models) == 1 else [self.which]) + [self.image_index, self.layer, self.head]
        super().__init__([*controls, self.stats, self.view])
        self._update()

    def current_map(self):
        """The (rows, cols) map on show; it sums to 1."""
        i = self.image_index.value - 1
        if self.layer.value == "rollout":
            return self._rollout[self.which.value][i]
        maps = self.maps[self.which.value][self.layer.value - 1, i]  # (heads, T, T)
        weights = maps.mean(0) if self.head.value == "mean" else maps[self.head.value - 1]
        return rollout_map(weights[None], self.grid, self.prefix)[0]

    def _update(self, change=None):
        self.head.disabled = self.layer.value == "rollout"
        m = self.current_map()
        peak = np.unravel_index(np.argmax(m), m.shape)
        what = "rollout" if self.layer.value == "rollout" else f"layer {self.layer.value}, head {self.head.value}"
        what = ", ".join(filter(None, [self.which.value, what]))
        self.stats.value = (f"{what}: strongest on patch <b>({peak[0] + 1}, {peak[1] + 1})</b> with {m.max():.0%} of "
                            f"the attention (spread evenly, each patch would get {1 / m.size:.0%})")
        image = self.images[self.image_index.value - 1]
        show_png(self.view, figure_png(attention_on_image_figure(image, m, title=what)))
