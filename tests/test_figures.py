"""Every figure function: a Figure with the expected axes and the data it was given, and a clear error for bad input."""
import numpy as np
import pytest
from matplotlib.figure import Figure

import vitlib
from vitlib.inspection import figures

pytestmark = pytest.mark.backend_independent

RNG = np.random.default_rng(0)
IMAGE = RNG.random((8, 8, 3)).astype("float32")


def images_shown(fig):
    return [im.get_array() for ax in fig.axes for im in ax.get_images()]


def test_patch_figure_shows_the_image_the_token_matrix_and_the_first_tokens():
    fig = figures.patch_figure(IMAGE, 4, max_tokens=4)
    assert isinstance(fig, Figure) and len(fig.axes) == 2 + 4  # image with grid, token matrix, 4 tokens
    shown = images_shown(fig)
    np.testing.assert_allclose(shown[0], IMAGE)
    np.testing.assert_allclose(shown[1], vitlib.extract_patches(IMAGE[None], 4)[0])  # (4 tokens, 48 values)
    assert fig.axes[0].get_title() == "2x2 = 4 patches of 4x4"


def test_filter_and_image_grids():
    kernel = RNG.normal(size=(2, 2, 3, 5))
    fig = figures.filters_figure(kernel, max_filters=4, columns=2)
    shown = images_shown(fig)
    assert len(shown) == 4 and all(a.min() >= 0 and a.max() <= 1 for a in shown)
    fig = figures.filter_components_figure(RNG.random((3, 2, 2, 1)), explained=[0.5, 0.3, 0.2])
    components = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in components] == ["50%", "30%", "20%"]
    for ax in components:  # each component framed, so that its white pixels do not merge into the page
        assert all(spine.get_visible() and spine.get_linewidth() > 0 for spine in ax.spines.values())
    fig.canvas.draw()
    boxes = sorted(ax.get_window_extent().x0 for ax in components), [ax.get_window_extent().width for ax in components]
    assert all(b - a > w for a, b, w in zip(boxes[0], boxes[0][1:], boxes[1]))  # a gap between neighbours
    fig = figures.examples_figure({"a": RNG.random((3, 4, 4, 1)), "b": RNG.random((2, 4, 4, 1))})
    assert len(images_shown(fig)) == 5


def test_training_figures():
    history = {"loss": [2.0, 1.0], "val_loss": [2.5, 1.5], "accuracy": [0.5, 0.8]}
    fig = figures.history_figure(history)
    np.testing.assert_allclose(fig.axes[0].get_lines()[1].get_ydata(), [2.5, 1.5])
    fig = figures.confusion_matrix_figure([0, 1, 1], [0, 1, 0], class_names=["a", "b"])
    np.testing.assert_array_equal(images_shown(fig)[0], [[1, 0], [1, 1]])
    fig = figures.bar_figure(["x", "y"], [1, 2], "v", "t", reference=[2, 2])
    assert [p.get_height() for p in fig.axes[0].patches] == [1, 2, 2, 2]


def test_scaling_figure_draws_each_models_means_against_the_fraction_with_min_max_bars():
    from vitlib.training import experiments

    rows = [{"model": m, "fraction": f, "test_accuracy": a}
            for m, f, a in [("cnn", 1.0, 0.9), ("cnn", 1.0, 1.0), ("cnn", 0.1, 0.5), ("cnn", 0.1, 0.7),
                            ("vit", 0.1, 0.4), ("vit", 0.1, 0.4), ("vit", 1.0, 0.8), ("vit", 1.0, 0.9)]]
    fig = figures.scaling_figure(experiments.summarise(rows))
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_marker() == "o"]
    np.testing.assert_allclose(lines[0].get_xdata(), [0.1, 1.0])
    np.testing.assert_allclose(lines[0].get_ydata(), [0.6, 0.95])
    np.testing.assert_allclose(lines[1].get_ydata(), [0.4, 0.85])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cnn", "vit"] and ax.get_xscale() == "log"


@pytest.mark.parametrize("call,message", [
    (lambda: figures.patch_figure(IMAGE[None], 4), r"one \(height, width, channels\) image, got shape \(1, 8, 8, 3\)"),
    (lambda: figures.patch_figure(IMAGE, 3), r"not divisible by patch size 3"),
    (lambda: figures.similarity_grid_figure(np.zeros((4, 4))), r"\(rows, cols, rows, cols\), got shape \(4, 4\)"),
    (lambda: figures.attention_matrix_figure(np.zeros((1, 2, 3, 3))), r"one \(queries, keys\) matrix.*weights\[0, 0\]"),
    (lambda: figures.attention_matrix_figure(np.zeros((3, 3)), labels=["a"]), r"1 labels for 3 tokens"),
    (lambda: figures.attention_on_image_figure(IMAGE, np.zeros((1, 2, 2))), r"\(rows, cols\) map.*heat\[0\]"),
    (lambda: figures.attention_distance_figure(np.zeros(3)), r"\(layers, heads\) or \(seeds, layers, heads\)"),
    (lambda: figures.distance_curve_figure({"m": ([1, 2], [0.1, 0.2, 0.3])}), r"'m': 3 values per seed for 2 distances"),
    (lambda: figures.filters_figure(np.zeros((48, 8))), r"\(P, P, C, D\).*Reshape a Dense kernel"),
    (lambda: figures.filter_components_figure(np.zeros((3, 4))), r"\(k, P, P, C\) images"),
    (lambda: figures.history_figure("runs/digits/history.csv"), r"read_history\(path\)"),
    (lambda: figures.confusion_matrix_figure([0, 1], np.zeros((2, 10))), r"argmax\(logits, -1\)"),
    (lambda: figures.bar_figure(["a", "b"], [1], "v", "t"), r"2 names but 1 values"),
    (lambda: figures.scaling_figure([{"model": "a", "mean": 1}]), r"experiments.summarise\(rows, by=\('model', 'fraction'\)\)"),
])
def test_figures_refuse_bad_input_clearly(call, message):
    with pytest.raises(ValueError, match=message):
        call()
