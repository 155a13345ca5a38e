import numpy as np
import pytest

import vitlib
from vitlib import widgets


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


def test_sample_images_are_square_rgb_in_unit_range():
    for name in vitlib.data.SAMPLE_IMAGES:
        image = vitlib.data.sample_image(name, 64)
        assert image.shape == (64, 64, 3) and image.dtype == np.float32
        assert 0 <= image.min() and image.max() <= 1 and image.std() > 0.05
    with pytest.raises(ValueError, match="Unknown sample image 'lena'"):
        vitlib.data.sample_image("lena")


def test_position_task_puts_the_square_in_the_labelled_quadrant():
    images, labels = vitlib.data.position_task(200, image_size=32, noise=0.0, seed=1)
    assert images.shape == (200, 32, 32, 1) and set(labels) == {0, 1, 2, 3}
    for image, label in zip(images, labels):
        quadrants = image[..., 0].reshape(2, 16, 2, 16).sum(axis=(1, 3)).reshape(-1)
        assert np.argmax(quadrants) == label and quadrants[label] == 36
