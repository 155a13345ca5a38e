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


def figure_png(fig, dpi=72):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


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
            self.view.value = figure_png(patch_figure(image, p))
        except Exception as exc:  # shown in the widget: JupyterLab hides exceptions raised in callbacks
            with self.error:
                print(f"{type(exc).__name__}: {exc}")
            raise


def patch_explorer(images=None, image_size=224, patch_size=16):
    """The interactive patch explorer of notebook 01 (see :class:`PatchExplorer`)."""
    return PatchExplorer(images, image_size, patch_size)


class SimilarityExplorer(widgets.VBox):
    """Pick a patch (row, column); see the cosine similarity of its position embedding with every patch's.

    ``similarity``: (rows, cols, rows, cols) from :func:`vitlib.analysis.position_similarity`.
    """

    def __init__(self, similarity, title="position embedding similarity"):
        self.similarity = np.asarray(similarity)
        if self.similarity.ndim != 4:
            raise ValueError(f"similarity must be (rows, cols, rows, cols), got shape {self.similarity.shape}.")
        rows, cols = self.similarity.shape[:2]
        self.title = title
        self.row = widgets.IntSlider(value=0, min=0, max=rows - 1, description="patch row", continuous_update=False)
        self.col = widgets.IntSlider(value=0, min=0, max=cols - 1, description="patch column", continuous_update=False)
        self.stats = widgets.HTML()
        self.view = widgets.Image(format="png")
        for control in (self.row, self.col):
            control.observe(self._update, names="value")
        super().__init__([widgets.HBox([self.row, self.col]), self.stats, self.view])
        self._update()

    def current_map(self):
        return self.similarity[self.row.value, self.col.value]

    def _update(self, change=None):
        m = self.current_map()
        peak = np.unravel_index(np.argmax(m), m.shape)
        self.stats.value = (f"patch ({self.row.value}, {self.col.value}): most similar to patch "
                            f"<b>({peak[0]}, {peak[1]})</b>; lowest similarity {m.min():.2f}")
        fig = Figure(figsize=(3.6, 3), layout="constrained")
        ax = fig.add_subplot()
        im = ax.imshow(m, vmin=float(self.similarity.min()), vmax=1, cmap="viridis")
        ax.scatter([self.col.value], [self.row.value], marker="x", color="red")
        ax.set_title(self.title, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
        self.view.value = figure_png(fig)


class AttentionExplorer(widgets.VBox):
    """Pick an image, a layer and a head; see where the class token (or, without one, the average patch)
    looks, over the image. Choose "rollout" to see attention rolled out through all layers."""

    def __init__(self, model, images):
        self.images = np.asarray(images, dtype="float32")
        self.maps = np.stack(attention_weights(model, self.images))  # (L, B, heads, T, T)
        self.grid = model.config.grid_size
        self.prefix = int(model.config.pool == "token")
        self._rollout = rollout_map(attention_rollout(self.maps), self.grid, self.prefix)
        depth, _, heads = self.maps.shape[:3]
        self.image_index = widgets.IntSlider(value=0, min=0, max=len(self.images) - 1, description="image",
                                             continuous_update=False)
        self.layer = widgets.Dropdown(options=["rollout"] + list(range(1, depth + 1)), value=depth, description="layer")
        self.head = widgets.Dropdown(options=["mean"] + list(range(1, heads + 1)), value="mean", description="head")
        self.stats = widgets.HTML()
        self.view = widgets.Image(format="png")
        for control in (self.image_index, self.layer, self.head):
            control.observe(self._update, names="value")
        super().__init__([widgets.HBox([self.image_index, self.layer, self.head]), self.stats, self.view])
        self._update()

    def current_map(self):
        """The (rows, cols) map on show; it sums to 1."""
        i = self.image_index.value
        if self.layer.value == "rollout":
            return self._rollout[i]
        maps = self.maps[self.layer.value - 1, i]  # (heads, T, T)
        weights = maps.mean(0) if self.head.value == "mean" else maps[self.head.value - 1]
        return rollout_map(weights[None], self.grid, self.prefix)[0]

    def _update(self, change=None):
        self.head.disabled = self.layer.value == "rollout"
        m = self.current_map()
        peak = np.unravel_index(np.argmax(m), m.shape)
        what = "rollout" if self.layer.value == "rollout" else f"layer {self.layer.value}, head {self.head.value}"
        self.stats.value = f"{what}: strongest on patch <b>({peak[0]}, {peak[1]})</b> with {m.max():.0%} of the attention"
        self.view.value = figure_png(attention_on_image_figure(self.images[self.image_index.value], m, title=what))
