import base64
import json
from pathlib import Path

import ipywidgets
import numpy as np
import pytest

import vitlib
from vitlib.inspection import analysis, widgets

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

pytestmark = pytest.mark.backend_neutral  # notebook widgets: they run in the TensorFlow notebooks


def test_patch_explorer_offers_only_sizes_that_divide_the_image():
    explorer = widgets.patch_explorer()
    assert explorer.image_size == 224
    assert list(explorer.patch_size.options) == [4, 7, 8, 14, 16, 28, 32, 56, 112]
    assert all(224 % p == 0 for p in explorer.patch_size.options)


def test_moving_the_slider_updates_counts_and_picture():
    explorer = widgets.patch_explorer()
    assert "N = 196</b> tokens of 768 values" in explorer.stats.value and "N² = 38,416" in explorer.stats.value
    before = explorer.view.value
    assert before[:8] == b"\x89PNG\r\n\x1a\n"
    explorer.patch_size.value = 32
    assert "N = 49</b> tokens of 3,072 values" in explorer.stats.value and "N² = 2,401" in explorer.stats.value
    assert explorer.view.value != before
    picture = explorer.view.value
    explorer.image_name.value = "china"
    assert explorer.view.value != picture and "N = 49</b>" in explorer.stats.value


def test_token_stats_match_the_paper_example():
    assert widgets.token_stats(224, 16) == {"tokens": 196, "values_per_token": 768, "attention_entries": 38_416}


def test_explorer_refuses_a_patch_size_that_does_not_divide():
    images = {"noise": np.zeros((48, 48, 3), "float32")}
    with pytest.raises(ValueError, match="patch_size 10 does not divide 48"):
        widgets.patch_explorer(images, patch_size=10)


def test_similarity_explorer_opens_on_the_central_patch_and_counts_from_zero():
    sim = analysis.position_similarity(np.asarray(vitlib.sincos_2d((5, 5), 32)), (5, 5), num_prefix_tokens=0)
    explorer = widgets.SimilarityExplorer(sim)
    assert explorer.row.min == 0 and explorer.row.max == 4 and explorer.col.max == 4
    assert (explorer.row.value, explorer.col.value) == (2, 2)
    np.testing.assert_array_equal(explorer.current_map(), sim[2, 2])
    assert "patch (2, 2): most similar other patch" in explorer.stats.value
    before = explorer.view.value
    explorer.row.value, explorer.col.value = 0, 0
    np.testing.assert_array_equal(explorer.current_map(), sim[0, 0])
    assert "most similar other patch <b>(0, 1)</b>" in explorer.stats.value  # never the chosen patch itself
    explorer.row.value, explorer.col.value = 3, 1
    others = sim[3, 1].copy()
    others[3, 1] = -np.inf
    r, c = np.unravel_index(np.argmax(others), others.shape)
    assert f"most similar other patch <b>({r}, {c})</b>" in explorer.stats.value
    assert explorer.view.value != before
    assert (widgets.SimilarityExplorer(sim, start=(0, 4)).col.value) == 4
    with pytest.raises(ValueError, match="rows, cols, rows, cols"):
        widgets.SimilarityExplorer(sim[0])
    with pytest.raises(ValueError, match=r"start \(5, 0\) is outside the 5x5 grid"):
        widgets.SimilarityExplorer(sim, start=(5, 0))


def test_similarity_explorer_toggles_between_models_on_one_colour_scale(rng):
    sincos = analysis.position_similarity(np.asarray(vitlib.sincos_2d((4, 4), 32)), (4, 4), num_prefix_tokens=0)
    random = analysis.position_similarity(rng.normal(size=(16, 32)), (4, 4), num_prefix_tokens=0)
    explorer = widgets.SimilarityExplorer({"sin-cos": sincos, "random": random})
    assert list(explorer.which.options) == ["sin-cos", "random"] and explorer.low == pytest.approx(random.min())
    picture = explorer.view.value
    explorer.which.value = "random"
    np.testing.assert_array_equal(explorer.current_map(), random[2, 2])
    assert explorer.view.value != picture
    assert explorer.figure().axes[0].get_images()[0].get_clim() == (pytest.approx(random.min()), 1)


def test_similarity_explorer_picture_is_large_enough_to_read_and_its_colour_bar_is_labelled():
    explorer = widgets.SimilarityExplorer(np.eye(36).reshape(6, 6, 6, 6))
    width, height = widgets.png_size(explorer.view.value)
    assert 450 <= width <= 700 and 380 <= height <= 600
    fig = explorer.figure()
    grid, colour_bar = fig.axes
    assert [t.get_text() for t in grid.get_xticklabels()] == [str(c) for c in range(6)]
    assert min(t.get_fontsize() for t in grid.get_xticklabels()) * explorer.dpi / 72 >= 12  # pixels
    assert colour_bar.get_ylabel() == "cosine similarity"


def test_widget_pictures_are_shown_at_their_own_size():
    explorer = widgets.SimilarityExplorer(np.eye(9).reshape(3, 3, 3, 3))
    width, height = widgets.png_size(explorer.view.value)
    assert (explorer.view.layout.width, explorer.view.layout.height) == (f"{width}px", f"{height}px")
    patches = widgets.patch_explorer()
    width, _ = widgets.png_size(patches.view.value)
    assert patches.view.layout.width == f"{width}px"


def small_vit(image_size=16, patch_size=4, **options):
    return vitlib.build_vit(None, image_size=image_size, patch_size=patch_size, hidden_size=32, depth=2, num_heads=4,
                            mlp_dim=64, num_classes=3, **options)


def test_attention_explorer_shows_the_chosen_layer_head_and_rollout(rng):
    model = small_vit()
    images = rng.random((3, 16, 16, 3)).astype("float32")
    explorer = widgets.AttentionExplorer(model, images)
    maps = vitlib.attention_weights(model, images)
    assert explorer.layer.value == "rollout" and explorer.head.disabled  # it opens on the view that finds the object
    assert explorer.stats.value.startswith("rollout:")
    explorer.layer.value = 2
    assert explorer.head.value == "mean" and explorer.image_index.value == 0 and not explorer.head.disabled
    assert list(explorer.layer.options) == [1, 2, "rollout"] and list(explorer.head.options) == ["mean", 1, 2, 3, 4]
    np.testing.assert_allclose(explorer.current_map(), maps[1][0].mean(0)[0, 1:].reshape(4, 4)
                               / maps[1][0].mean(0)[0, 1:].sum(), rtol=1e-5)
    picture = explorer.view.value
    explorer.layer.value, explorer.head.value, explorer.image_index.value = 1, 3, 2  # layers and heads from 1
    expected = maps[0][2, 2, 0, 1:]
    np.testing.assert_allclose(explorer.current_map(), (expected / expected.sum()).reshape(4, 4), rtol=1e-5)
    assert explorer.view.value != picture and "layer 1, head 3" in explorer.stats.value
    r, c = np.unravel_index(np.argmax(expected), (4, 4))
    assert f"patch <b>({r}, {c})</b> = token {1 + 4 * r + c}" in explorer.stats.value  # the class token is token 0
    explorer.layer.value = "rollout"
    assert explorer.head.disabled and explorer.current_map().sum() == pytest.approx(1)


def test_attention_explorer_opens_where_asked_and_refuses_a_layer_it_lacks(rng):
    model, images = small_vit(), rng.random((2, 16, 16, 3)).astype("float32")
    assert widgets.AttentionExplorer(model, images, start=2).layer.value == 2
    with pytest.raises(ValueError, match="start must be a layer from 1 to 2 or 'rollout', got 3"):
        widgets.AttentionExplorer(model, images, start=3)


def test_attention_explorer_keeps_one_colour_scale_when_the_model_changes(rng):
    model = small_vit(image_size=8, patch_size=2)
    control = analysis.untrained_copy(model, seed=5)
    images = rng.random((2, 8, 8, 3)).astype("float32")
    explorer = widgets.AttentionExplorer({"trained": model, "untrained": control}, images)
    first = explorer.current_map()
    for layer in (1, 2, "rollout"):
        explorer.which.value, explorer.layer.value = "trained", layer
        limits, clim = explorer.colour_limits, explorer.figure().axes[1].get_images()[0].get_clim()
        assert clim == pytest.approx(limits)
        explorer.which.value = "untrained"
        assert explorer.colour_limits == limits
        assert explorer.figure().axes[1].get_images()[0].get_clim() == pytest.approx(limits)
        shown = [explorer._view_maps(name) for name in ("trained", "untrained")]
        assert limits[1] == pytest.approx(max(m.max() for m in shown))  # the highest share of either model
        assert f"Colour scale 0 to {limits[1]:.1%}" in explorer.stats.value
        colour_bar = explorer.figure().axes[-1]  # in % as the readout, not in fractions
        assert colour_bar.yaxis.get_major_formatter()(limits[1]).endswith("%")
    explorer.layer.value = 2
    expected = vitlib.attention_weights(control, images)[1][0].mean(0)[0, 1:]
    np.testing.assert_allclose(explorer.current_map(), (expected / expected.sum()).reshape(4, 4), rtol=1e-5)
    assert not np.allclose(first, explorer.current_map()) and "untrained" in explorer.stats.value
    other = small_vit(image_size=8, patch_size=4)
    with pytest.raises(ValueError, match="share one configuration"):
        widgets.AttentionExplorer({"a": model, "b": other}, images)


def test_controls_that_step_through_values_are_sliders_and_the_widget_says_which_keys_work(rng):
    sim = np.eye(9).reshape(3, 3, 3, 3)
    explorers = [widgets.patch_explorer(), widgets.SimilarityExplorer({"a": sim, "b": sim}),
                 widgets.AttentionExplorer({"a": small_vit(), "b": small_vit()}, rng.random((2, 16, 16, 3)))]
    for explorer in explorers:
        parts = explorer.children + tuple(c for row in explorer.children for c in getattr(row, "children", ()))
        controls = [w for w in parts if isinstance(w, (ipywidgets.ToggleButtons, ipywidgets.widgets.widget_int._Int,
                                                        ipywidgets.widgets.widget_selection._Selection))]
        assert controls and not any(isinstance(w, (ipywidgets.Dropdown, ipywidgets.RadioButtons)) for w in controls)
        steps = [w for w in controls if not isinstance(w, ipywidgets.ToggleButtons)]
        assert steps and all(isinstance(w, (ipywidgets.IntSlider, ipywidgets.SelectionSlider)) for w in steps)
        assert "← →" in explorer.key_help.value


def test_every_explorer_offers_a_still_picture_of_its_view_beside_the_live_widget(rng):
    sim = analysis.position_similarity(np.asarray(vitlib.sincos_2d((4, 4), 32)), (4, 4), num_prefix_tokens=0)
    explorers = [widgets.patch_explorer(), widgets.SimilarityExplorer(sim, "similarity"),
                 widgets.AttentionExplorer(small_vit(), rng.random((2, 16, 16, 3)))]
    for explorer in explorers:
        bundle = explorer._repr_mimebundle_()
        assert bundle[WIDGET_VIEW]["model_id"] == explorer.model_id
        png = base64.b64decode(bundle["image/png"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and png != explorer.view.value  # the view, with a caption under it
        assert widgets.png_size(png) == widgets.png_size(explorer.view.value)
        caption = " ".join(explorer.still_figure().get_supxlabel().split())
        assert widgets.plain_text(explorer.stats.value) in caption and widgets.STILL_NOTE in caption
        assert "Run the notebook in JupyterLab" in bundle["text/plain"] and "children=" not in bundle["text/plain"]


@pytest.mark.backend_independent
def test_every_widget_output_in_the_committed_notebooks_carries_a_still_picture():
    """Fails until the notebooks are re-run with widgets that add an image/png (make notebooks)."""
    missing, seen = [], 0
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for number, cell in enumerate(json.loads(path.read_text())["cells"]):
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if WIDGET_VIEW in data:
                    seen += 1
                    if not data.get("image/png"):
                        missing.append(f"{path.name} cell {number}")
    assert seen >= 3  # 01's patch explorer, 07's two explorers
    assert not missing, f"widget outputs without a still picture (image/png): {missing}; re-run these notebooks"
