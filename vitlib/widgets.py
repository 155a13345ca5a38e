"""Interactive views for JupyterLab. Each function returns the widget; its parts are attributes so that
tests (and curious learners) can drive it from Python: ``w.patch_size.value = 32``."""
import io

import ipywidgets as widgets
import numpy as np

from vitlib.data import SAMPLE_IMAGES, sample_image
from vitlib.patches import num_patches
from vitlib.plotting import patch_figure


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
