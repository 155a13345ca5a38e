import numpy as np
import pytest

import vitlib
from vitlib import widgets

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


@pytest.mark.backend_independent
def test_sample_images_are_square_rgb_in_unit_range():
    for name in vitlib.data.SAMPLE_IMAGES:
        image = vitlib.data.sample_image(name, 64)
        assert image.shape == (64, 64, 3) and image.dtype == np.float32
        assert 0 <= image.min() and image.max() <= 1 and image.std() > 0.05
    with pytest.raises(ValueError, match="Unknown sample image 'lena'"):
        vitlib.data.sample_image("lena")


@pytest.mark.backend_independent
def test_position_task_puts_the_square_in_the_labelled_quadrant():
    images, labels = vitlib.data.position_task(200, image_size=32, noise=0.0, seed=1)
    assert images.shape == (200, 32, 32, 1) and set(labels) == {0, 1, 2, 3}
    for image, label in zip(images, labels):
        quadrants = image[..., 0].reshape(2, 16, 2, 16).sum(axis=(1, 3)).reshape(-1)
        assert np.argmax(quadrants) == label and quadrants[label] == 36


def test_similarity_explorer_follows_the_chosen_patch_counted_from_one():
    sim = vitlib.analysis.position_similarity(np.asarray(vitlib.sincos_2d((5, 5), 32)), (5, 5), num_prefix_tokens=0)
    explorer = widgets.SimilarityExplorer(sim)
    assert explorer.row.min == 1 and explorer.row.max == 5 and explorer.col.max == 5
    np.testing.assert_array_equal(explorer.current_map(), sim[0, 0])
    assert "most similar other patch <b>(1, 2)</b>" in explorer.stats.value  # never the chosen patch itself
    before = explorer.view.value
    explorer.row.value, explorer.col.value = 4, 2
    np.testing.assert_array_equal(explorer.current_map(), sim[3, 1])
    others = sim[3, 1].copy()
    others[3, 1] = -np.inf
    r, c = np.unravel_index(np.argmax(others), others.shape)
    assert f"most similar other patch <b>({r + 1}, {c + 1})</b>" in explorer.stats.value
    assert explorer.view.value != before
    with pytest.raises(ValueError, match="rows, cols, rows, cols"):
        widgets.SimilarityExplorer(sim[0])


def test_similarity_explorer_toggles_between_models_on_one_colour_scale(rng):
    sincos = vitlib.analysis.position_similarity(np.asarray(vitlib.sincos_2d((4, 4), 32)), (4, 4), num_prefix_tokens=0)
    random = vitlib.analysis.position_similarity(rng.normal(size=(16, 32)), (4, 4), num_prefix_tokens=0)
    explorer = widgets.SimilarityExplorer({"sin-cos": sincos, "random": random})
    assert list(explorer.which.options) == ["sin-cos", "random"] and explorer.low == pytest.approx(random.min())
    picture = explorer.view.value
    explorer.which.value = "random"
    np.testing.assert_array_equal(explorer.current_map(), random[0, 0])
    assert explorer.view.value != picture


def test_widget_pictures_are_shown_at_their_own_size():
    explorer = widgets.SimilarityExplorer(np.eye(9).reshape(3, 3, 3, 3))
    width, height = widgets.png_size(explorer.view.value)
    assert (explorer.view.layout.width, explorer.view.layout.height) == (f"{width}px", f"{height}px")
    assert 200 < width < 500 and 200 < height < 400
    patches = widgets.patch_explorer()
    width, _ = widgets.png_size(patches.view.value)
    assert patches.view.layout.width == f"{width}px"


def test_attention_explorer_shows_the_chosen_layer_head_and_rollout(rng):
    model = vitlib.build_vit(None, image_size=16, patch_size=4, hidden_size=32, depth=2, num_heads=4, mlp_dim=64,
                             num_classes=3)
    images = rng.random((3, 16, 16, 3)).astype("float32")
    explorer = widgets.AttentionExplorer(model, images)
    maps = vitlib.attention_weights(model, images)
    assert explorer.layer.value == 2 and explorer.head.value == "mean" and explorer.image_index.value == 1
    np.testing.assert_allclose(explorer.current_map(), maps[1][0].mean(0)[0, 1:].reshape(4, 4)
                               / maps[1][0].mean(0)[0, 1:].sum(), rtol=1e-5)
    picture = explorer.view.value
    explorer.layer.value, explorer.head.value, explorer.image_index.value = 1, 3, 3  # counted from 1
    expected = maps[0][2, 2, 0, 1:]
    np.testing.assert_allclose(explorer.current_map(), (expected / expected.sum()).reshape(4, 4), rtol=1e-5)
    assert explorer.view.value != picture and "layer 1, head 3" in explorer.stats.value
    explorer.layer.value = "rollout"
    assert explorer.head.disabled and explorer.current_map().sum() == pytest.approx(1)


def test_attention_explorer_toggles_between_trained_and_untrained(rng):
    model = vitlib.build_vit(None, image_size=8, patch_size=2, hidden_size=16, depth=2, num_heads=2, mlp_dim=32,
                             num_classes=3)
    control = vitlib.analysis.untrained_copy(model, seed=5)
    images = rng.random((2, 8, 8, 3)).astype("float32")
    explorer = widgets.AttentionExplorer({"trained": model, "untrained": control}, images)
    first = explorer.current_map()
    explorer.which.value = "untrained"
    expected = vitlib.attention_weights(control, images)[1][0].mean(0)[0, 1:]
    np.testing.assert_allclose(explorer.current_map(), (expected / expected.sum()).reshape(4, 4), rtol=1e-5)
    assert not np.allclose(first, explorer.current_map()) and "untrained" in explorer.stats.value
    other = vitlib.build_vit(None, image_size=8, patch_size=4, hidden_size=16, depth=2, num_heads=2, mlp_dim=32,
                             num_classes=3)
    with pytest.raises(ValueError, match="share one configuration"):
        widgets.AttentionExplorer({"a": model, "b": other}, images)
