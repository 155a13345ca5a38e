"""Interactive views for JupyterLab. Each function returns the widget; its parts are attributes so that
tests (and curious learners) can drive it from Python: ``w.patch_size.value = 32``.

Counting: rows, columns, patches, tokens and images count from 0, as NumPy indexes them (``similarity[r, c]``,
``images[i]``); where there is a class token it is token 0, so patch p is token p + 1. Layers and heads are named from
1 ("layer 1" is the first), as in the paper's Figure 7.

Keys: JupyterLab takes the arrow keys from buttons and drop-downs to move between cells, so every control that steps
through values is a slider (a clicked handle keeps the arrow keys); buttons only choose between named things.

Where the live widget cannot show (GitHub, the static site, a notebook opened before it runs), its output shows a
still picture instead: ``_repr_mimebundle_`` adds an ``image/png`` of the widget's view beside the widget itself.
"""
import base64
import html
import io
import re
import textwrap

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from vitlib.data.images import SAMPLE_IMAGES, sample_image
from vitlib.inspection.analysis import attention_rollout, rollout_map
from vitlib.inspection.figures import attention_on_image_figure, patch_figure
from vitlib.model import attention_weights
from vitlib.patches import num_patches

KEYS = "Keys: click a slider's handle, then ← → (or ↑ ↓) step it. Buttons take a click."
STILL_NOTE = "A still picture of this widget: run the notebook in JupyterLab to move it."


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


def plain_text(markup):
    """The text of a readout's HTML, tags dropped."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def _choices(items, what):
    """``{name: item}`` from a dict, or from one item (named ``""``: no toggle is shown)."""
    if isinstance(items, dict):
        if not items:
            raise ValueError(f"Give at least one {what}.")
        return dict(items)
    return {"": items}


def _buttons(options, description):
    """Toggle buttons as wide as their labels (fixed widths wrap them onto two rows), their description beside them
    (ipywidgets puts it above)."""
    return widgets.ToggleButtons(options=options, description=description,
                                 style={"button_width": "auto", "description_width": "initial"},
                                 layout=widgets.Layout(display="flex", align_items="center", width="auto"))


def _row(controls):
    """Controls side by side, wrapping onto the next line when the notebook is narrow."""
    return widgets.HBox(controls, layout=widgets.Layout(flex_flow="row wrap", align_items="center"))


def token_stats(image_size, patch_size, channels=3):
    """Numbers shown by the explorer: tokens N, values per token, attention entries N² per head."""
    n = num_patches(image_size, patch_size)
    return {"tokens": n, "values_per_token": patch_size * patch_size * channels, "attention_entries": n * n}


class Explorer(widgets.VBox):
    """What the explorers share: controls, a readout, a picture at its own size, the keys that work, errors shown in
    the widget (JupyterLab hides exceptions raised in callbacks), and a still picture for wherever the live widget
    cannot show. A subclass makes its controls, then calls ``_start(rows of controls)``, and defines ``figure()``
    (the view's Figure) and ``readout()`` (its HTML)."""

    dpi = 100

    def _start(self, rows):
        self.stats = widgets.HTML()
        self.view = widgets.Image(format="png")
        self.key_help = widgets.HTML(f"<small>{KEYS}</small>")
        self.error = widgets.Output()
        super().__init__([*rows, self.stats, self.view, self.key_help, self.error])
        for row in rows:
            for control in getattr(row, "children", [row]):
                control.observe(self._update, names="value")
        self._update()

    def figure(self):
        raise NotImplementedError

    def readout(self):
        raise NotImplementedError

    def _update(self, change=None):
        try:
            self.stats.value = self.readout()
            show_png(self.view, figure_png(self.figure(), self.dpi))
        except Exception as exc:
            with self.error:
                print(f"{type(exc).__name__}: {exc}")
            raise

    def still_figure(self):
        """The view on show, with its readout and a note that it is a still written under it."""
        fig = self.figure()
        width = int(fig.get_figwidth() * 72 / 8 * 1.9)  # characters of 8 pt that fit across the figure
        caption = "\n".join(textwrap.wrap(plain_text(self.stats.value), width) + [STILL_NOTE])
        fig.supxlabel(caption, fontsize=8, color="0.25")
        return fig

    def still_png(self):
        return figure_png(self.still_figure(), self.dpi)

    def _repr_mimebundle_(self, **kwargs):
        """The widget view, plus a still picture (``image/png``) and a line of text for front ends without widgets:
        JupyterLab shows the live widget, GitHub and the static site the picture, a terminal the text."""
        data = super()._repr_mimebundle_(**kwargs)
        if data is None:
            return None
        data["text/plain"] = (f"{type(self).__name__}: an interactive widget. Run the notebook in JupyterLab to move "
                              "it; elsewhere its picture is a still of the view it opened with.")
        data["image/png"] = base64.b64encode(self.still_png()).decode("ascii")
        return data


class PatchExplorer(Explorer):
    """Pick an image and a patch size; see the grid, the token sequence (tokens counted from 0) and what attention
    costs."""

    dpi = 80  # the patch figure is 10 inches wide: 800 px fit beside JupyterLab's file browser

    def __init__(self, images=None, image_size=224, patch_size=16):
        self.images = images or {name: sample_image(name, image_size) for name in SAMPLE_IMAGES}
        sizes = {img.shape[:2] for img in self.images.values()}
        if len(sizes) != 1 or next(iter(sizes))[0] != next(iter(sizes))[1]:
            raise ValueError(f"PatchExplorer needs square images of one size, got sizes {sorted(sizes)}.")
        self.image_size = next(iter(sizes))[0]
        options = divisors(self.image_size, smallest=4)
        if patch_size not in options:
            raise ValueError(f"patch_size {patch_size} does not divide {self.image_size}; choose one of {options}.")
        self.image_name = _buttons(list(self.images), "image")
        self.patch_size = widgets.SelectionSlider(options=options, value=patch_size, description="patch size",
                                                  continuous_update=False, style={"description_width": "initial"})
        self._start([_row([self.image_name, self.patch_size])])

    def readout(self):
        p = self.patch_size.value
        s = token_stats(self.image_size, p, self.images[self.image_name.value].shape[-1])
        return (f"<b>{self.image_size}x{self.image_size}</b> image, <b>{p}x{p}</b> patches: "
                f"<b>N = {s['tokens']:,}</b> tokens of {s['values_per_token']:,} values; "
                f"self-attention compares every pair: <b>N² = {s['attention_entries']:,}</b> scores per head")

    def figure(self):
        return patch_figure(self.images[self.image_name.value], self.patch_size.value)


def patch_explorer(images=None, image_size=224, patch_size=16):
    """The interactive patch explorer of notebook 01 (see :class:`PatchExplorer`)."""
    return PatchExplorer(images, image_size, patch_size)


class SimilarityExplorer(Explorer):
    """Pick a patch (row, column, counted from 0 as in ``similarity[row, col]``); see the cosine similarity of its
    position embedding with every patch's. It opens on the central patch (or ``start=(row, col)``).

    ``similarity``: (rows, cols, rows, cols) from :func:`vitlib.inspection.analysis.position_similarity`, or a dict of them,
    e.g. ``{"trained": ..., "untrained": ...}``: buttons then switch between them, on one colour scale for all.
    """

    def __init__(self, similarity, title="position embedding similarity", start=None):
        self.maps = {name: np.asarray(m) for name, m in _choices(similarity, "similarity array").items()}
        shapes = {m.shape for m in self.maps.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 4:
            raise ValueError(f"similarity must be (rows, cols, rows, cols) arrays of one shape, got shapes {sorted(shapes)}.")
        rows, cols = next(iter(shapes))[:2]
        row, col = (rows // 2, cols // 2) if start is None else start
        if not (0 <= row < rows and 0 <= col < cols):
            raise ValueError(f"start {start} is outside the {rows}x{cols} grid: rows 0..{rows - 1}, columns 0..{cols - 1}.")
        self.low = float(min(m.min() for m in self.maps.values()))
        self.title = title
        wide = {"description_width": "initial"}
        self.which = _buttons(list(self.maps), "model")
        self.row = widgets.IntSlider(value=row, min=0, max=rows - 1, description="row", continuous_update=False, style=wide)
        self.col = widgets.IntSlider(value=col, min=0, max=cols - 1, description="column", continuous_update=False,
                                     style=wide)
        sliders = _row([self.row, self.col])
        self._start([sliders] if len(self.maps) == 1 else [self.which, sliders])

    @property
    def similarity(self):
        return self.maps[self.which.value]

    def current_map(self):
        return self.similarity[self.row.value, self.col.value]

    def readout(self):
        m = self.current_map()
        others = m.copy()
        others[self.row.value, self.col.value] = -np.inf  # the chosen patch itself is always 1
        peak = np.unravel_index(np.argmax(others), m.shape)
        return (f"patch ({self.row.value}, {self.col.value}): most similar other patch "
                f"<b>({peak[0]}, {peak[1]})</b> ({others.max():.2f}); lowest similarity {m.min():.2f}")

    def figure(self):
        m = self.current_map()
        rows, cols = m.shape
        fig = Figure(figsize=(5.0, 4.3), layout="constrained")
        ax = fig.add_subplot()
        im = ax.imshow(m, vmin=self.low, vmax=1, cmap="viridis")
        ax.scatter([self.col.value], [self.row.value], marker="x", s=60, color="red", label="chosen patch")
        step = 1 if max(rows, cols) <= 16 else 2
        ax.set(xticks=range(0, cols, step), yticks=range(0, rows, step), xlabel="column", ylabel="row")
        ax.tick_params(labelsize=10)
        ax.set_title(" ".join(filter(None, [self.which.value, self.title])), fontsize=11)
        fig.colorbar(im, ax=ax, shrink=0.85).set_label("cosine similarity", fontsize=10)
        return fig


class AttentionExplorer(Explorer):
    """Pick a test image, a layer and a head; see where the class token (or, without one, the average patch)
    looks, over the image. The last stop of the layer slider, "rollout", is attention rolled out through all layers.

    ``model``: a ViT, or a dict of them with one configuration, e.g. ``{"trained": ..., "untrained": ...}``: buttons
    then switch between them. Each view (a layer and head, or the rollout) has one colour scale for every model and
    image, so that switching models compares like with like. Images, rows and columns count from 0, layers and heads
    from 1. It opens on ``start``: the rollout, the view that finds the object in a trained model (a single head of
    the last layer often looks at one empty corner), or a layer number.
    """

    def __init__(self, model, images, start="rollout"):
        models = _choices(model, "model")
        self.images = np.asarray(images, dtype="float32")
        configs = {m.config for m in models.values()}
        if len(configs) != 1:
            raise ValueError("The models to compare must share one configuration (grid, depth, heads); "
                             "build the control with vitlib.inspection.analysis.untrained_copy(model).")
        config = configs.pop()
        self.grid = config.grid_size
        self.prefix = config.num_prefix_tokens
        self.maps = {name: np.stack(attention_weights(m, self.images)) for name, m in models.items()}  # (L, B, heads, T, T)
        self._views = {name: self._token_maps(m) for name, m in self.maps.items()}  # (L, 1 + heads, B, rows, cols)
        self._rollout = {name: rollout_map(attention_rollout(m), self.grid, self.prefix) for name, m in self.maps.items()}
        depth, heads = config.depth, config.num_heads
        wide = {"description_width": "initial"}
        self.which = _buttons(list(models), "model")
        self.image_index = widgets.IntSlider(value=0, min=0, max=len(self.images) - 1, description="test image",
                                             continuous_update=False, style=wide)
        layers = list(range(1, depth + 1)) + ["rollout"]
        if start not in layers:
            raise ValueError(f"start must be a layer from 1 to {depth} or 'rollout', got {start!r}.")
        self.layer = widgets.SelectionSlider(options=layers, value=start,
                                             description="layer", continuous_update=False, style=wide)
        self.head = widgets.SelectionSlider(options=["mean"] + list(range(1, heads + 1)), value="mean",
                                            description="head", continuous_update=False, style=wide)
        sliders = _row([self.image_index, self.layer, self.head])
        self._start([sliders] if len(models) == 1 else [self.which, sliders])

    def _token_maps(self, maps):
        """(L, B, heads, T, T) -> (L, 1 + heads, B, rows, cols): the class token's (or the mean patch's) weights over
        the patches, for the mean of the heads and for each head, each map summing to 1."""
        depth, batch, heads, tokens, _ = maps.shape
        out = np.empty((depth, 1 + heads, batch, *self.grid), dtype="float32")
        for layer, weights in enumerate(maps):  # (B, heads, T, T)
            fused = np.concatenate([weights.mean(1, keepdims=True), weights], axis=1)  # (B, 1 + heads, T, T)
            flat = fused.transpose(1, 0, 2, 3).reshape(-1, tokens, tokens)
            out[layer] = rollout_map(flat, self.grid, self.prefix).reshape(1 + heads, batch, *self.grid)
        return out

    def _view_maps(self, name):
        """Every image's map for the layer and head on show: (B, rows, cols)."""
        if self.layer.value == "rollout":
            return self._rollout[name]
        return self._views[name][self.layer.value - 1, 0 if self.head.value == "mean" else self.head.value]

    def current_map(self):
        """The (rows, cols) map on show; it sums to 1."""
        return self._view_maps(self.which.value)[self.image_index.value]

    @property
    def colour_limits(self):
        """(0, highest share) of the view on show, over every model and image: the same whichever model is shown."""
        return 0.0, float(max(self._view_maps(name).max() for name in self.maps))

    def _what(self):
        what = "rollout" if self.layer.value == "rollout" else f"layer {self.layer.value}, head {self.head.value}"
        return ", ".join(filter(None, [self.which.value, what]))

    def _update(self, change=None):
        self.head.disabled = self.layer.value == "rollout"  # the rollout fuses the heads
        super()._update(change)

    def readout(self):
        m = self.current_map()
        r, c = np.unravel_index(np.argmax(m), m.shape)
        who = "the class token (token 0)" if self.prefix else "the average patch"
        token = f" = token {self.prefix + r * m.shape[1] + c}" if self.prefix else ""
        return (f"{self._what()}: {who} looks most at patch <b>({r}, {c})</b>{token}, with {m.max():.1%} of its "
                f"attention (spread evenly, each patch would get {1 / m.size:.1%}). Colour scale 0 to "
                f"{self.colour_limits[1]:.1%}, the same for every model and test image.")

    def figure(self):
        image = self.images[self.image_index.value]
        title = f"{self._what()}, test image {self.image_index.value}"
        return attention_on_image_figure(image, self.current_map(), title=title, vmax=self.colour_limits[1])
