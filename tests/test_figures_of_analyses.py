"""vitlib.inspection.figures: each figure draws the numbers it is given, beside its control."""
import numpy as np
import pytest

import vitlib
from vitlib.inspection import analysis, figures

pytestmark = pytest.mark.backend_independent

RNG = np.random.default_rng(0)
IMAGE = RNG.random((8, 8, 3)).astype("float32")


def images_shown(fig):
    return [im for ax in fig.axes for im in ax.get_images()]


def test_similarity_grid_has_one_map_per_patch_on_one_scale():
    sim = analysis.position_similarity(vitlib.sincos_2d((3, 3), 16), (3, 3), num_prefix_tokens=0)
    fig = figures.similarity_grid_figure(sim, vmin=-1)
    maps = [ax for ax in fig.axes if ax.get_images()]
    assert len(maps) == 9
    np.testing.assert_allclose(maps[4].get_images()[0].get_array(), sim[1, 1])
    assert maps[0].get_images()[0].get_clim() == (-1, 1)
    assert [ax.get_ylabel() for ax in maps[::3]] == ["0", "1", "2"]  # rows and columns counted from 0
    assert [ax.get_xlabel() for ax in maps[6:]] == ["0", "1", "2"]


def test_attention_figures_draw_the_given_weights_and_maps():
    weights = np.full((3, 3), 1 / 3)
    fig = figures.attention_matrix_figure(weights, labels=["cls", "1", "2"])
    np.testing.assert_allclose(images_shown(fig)[0].get_array(), weights)
    heat = RNG.random((2, 2))
    fig = figures.attention_on_image_figure(IMAGE[..., :1], heat)
    assert sum(1 for a in images_shown(fig) if a.get_array().shape == (2, 2)) == 2  # under the image, and alone
    fig = figures.attention_distance_figure(RNG.random((2, 3, 4)), 16, baseline=RNG.random((3, 4)), uniform=5.0)
    points = [c.get_offsets() for c in fig.axes[0].collections]
    assert len(points) == 4 * 2 + 1  # 4 heads x 2 seeds, and the baseline
    assert fig.axes[0].get_lines()[0].get_ydata()[0] == 5.0


def test_attention_distance_figure_has_a_legend_entry_for_its_untrained_control():
    trained, control = RNG.random((3, 2, 4)), RNG.random((3, 2, 4))  # three seeds each: as notebook 07 draws them
    fig = figures.attention_distance_figure(trained, 12, baseline=control, uniform=5.0)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["head 1", "head 2", "head 3", "head 4", "untrained", "uniform attention"]
    fig = figures.attention_distance_figure(RNG.random((2, 12)), baseline=RNG.random((2, 2, 12)), labels=("a", "b"))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["b"]  # 12 heads: only the control named


def test_attention_on_image_uses_the_given_colour_scale_and_numbers_rows_and_columns_from_zero():
    heat = np.full((3, 4), 1 / 12)
    fig = figures.attention_on_image_figure(np.zeros((6, 8, 1)), heat, vmax=0.5)
    left, right, colour_bar = fig.axes
    assert [im.get_clim() for im in left.get_images()[:1] + right.get_images()] == [(0, 0.5), (0, 0.5)]
    assert [t.get_text() for t in right.get_xticklabels()] == ["0", "1", "2", "3"]
    assert [t.get_text() for t in right.get_yticklabels()] == ["0", "1", "2"]
    assert colour_bar.get_lines()[0].get_ydata()[0] == pytest.approx(1 / 12)  # the even share, marked
    fig = figures.attention_on_image_figure(np.zeros((6, 8, 1)), heat * np.arange(12).reshape(3, 4))
    assert fig.axes[1].get_images()[0].get_clim()[1] == pytest.approx(11 / 12)  # default: the map's maximum


def test_distance_curve_shows_the_mean_and_the_spread_over_seeds():
    values = np.array([[0.2, 0.0, -0.1], [0.4, 0.2, -0.1]])
    fig = figures.distance_curve_figure({"trained": ([1, 2, 3], values), "untrained": ([1, 2, 3], np.zeros(3))})
    lines = fig.axes[0].get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), [0.3, 0.1, -0.1])
    assert lines[0].get_label() == "trained (2 seeds)" and lines[1].get_label() == "untrained"


def test_similarity_mosaic_puts_each_patch_map_at_its_place_with_blank_gaps():
    sim = analysis.position_similarity(RNG.normal(size=(6, 8)), (2, 3), num_prefix_tokens=0)
    mosaic = figures.similarity_mosaic(sim)
    assert mosaic.shape == (2 * 3 - 1, 3 * 4 - 1)
    np.testing.assert_allclose(mosaic[3:5, 8:11], sim[1, 2])  # patch (1, 2)'s map: block row 1, block column 2
    assert np.isnan(mosaic[2]).all() and np.isnan(mosaic[:, 3]).all() and np.isnan(mosaic[:, 7]).all()


def test_similarity_snapshots_share_one_colour_scale():
    table = RNG.normal(size=(9, 8))
    snapshots = {f"epoch {e}": analysis.position_similarity(table * (e + 1) + RNG.normal(size=(9, 8)), (3, 3),
                                                                   num_prefix_tokens=0) for e in (0, 5)}
    fig = figures.similarity_snapshots_figure(snapshots)
    shown = [im for ax in fig.axes for im in ax.get_images()]
    assert [ax.get_title() for ax in fig.axes[:2]] == ["epoch 0", "epoch 5"]
    assert len({im.get_clim() for im in shown}) == 1 and shown[0].get_clim()[1] == 1
    assert shown[0].get_clim()[0] == pytest.approx(min(s.min() for s in snapshots.values()))
    with pytest.raises(ValueError, match="at least one"):
        figures.similarity_snapshots_figure({})


def test_layout_emergence_draws_each_model_with_its_seed_band_the_accuracy_panel_and_the_untrained_band():
    gaps = np.array([[0.0, 0.1, 0.3], [0.0, 0.2, 0.4]])
    fig = figures.layout_emergence_figure({"translated": gaps, "centred": gaps * 0}, accuracy=gaps + 0.5,
                                           untrained=[-0.01, 0.02])
    left, right = fig.axes
    lines = {line.get_label(): line for line in left.get_lines()}
    np.testing.assert_allclose(lines["translated (2 seeds)"].get_ydata(), gaps.mean(0))
    np.testing.assert_allclose(lines["translated (2 seeds)"].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(right.get_lines()[0].get_xdata(), 100 * (gaps[0] + 0.5))
    for ax in (left, right):
        labels = ax.get_legend_handles_labels()[1]
        assert "untrained" in labels
    with pytest.raises(ValueError, match="same seeds and epochs"):
        figures.layout_emergence_figure({"translated": gaps}, accuracy=gaps[:1])
