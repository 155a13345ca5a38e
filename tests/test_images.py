"""vitlib.data.images: sample photos, the quadrant task, digits placed on a canvas, resized images."""
import numpy as np
import pytest

import vitlib
from vitlib.data import datasets, images


def test_resize_images_keeps_the_range_and_refuses_bad_shapes():
    x = datasets.load_dataset("digits").x_test[:5]
    big = images.resize_images(x, 16)
    assert big.shape == (5, 16, 16, 1) and big.dtype == np.float32 and 0 <= big.min() and big.max() <= 1
    np.testing.assert_allclose(big.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=0.02)  # the same ink
    assert images.resize_images(x, 8) is not None and np.array_equal(images.resize_images(x, 8), x)
    with pytest.raises(ValueError, match=r"images must be \(n, height, width, channels\), got shape \(8, 8\)"):
        images.resize_images(x[0, ..., 0], 16)


@pytest.mark.backend_independent
def test_placement_offsets_are_multiples_of_the_step_and_fit():
    digits = np.ones((500, 8, 8, 1), "float32")
    canvases, offsets = images.place_digits(digits, canvas_size=16, step=2, seed=0)
    assert set(np.unique(offsets)) == {0, 2, 4, 6, 8}
    np.testing.assert_array_equal(canvases.sum(axis=(1, 2, 3)), 64)


@pytest.mark.backend_independent
def test_centred_digits_sit_in_the_middle_of_the_canvas():
    plain = datasets.load_dataset("digits")
    centred = images.centred_on_canvas(plain, 12)
    assert centred.image_shape == (12, 12, 1)
    np.testing.assert_array_equal(centred.x_test[:, 2:10, 2:10], plain.x_test)
    assert centred.x_test[:, :2].sum() == 0 and centred.x_test[:, 10:].sum() == 0


@pytest.mark.backend_independent
def test_sample_images_are_square_rgb_in_unit_range():
    for name in images.SAMPLE_IMAGES:
        image = vitlib.sample_image(name, 64)
        assert image.shape == (64, 64, 3) and image.dtype == np.float32
        assert 0 <= image.min() and image.max() <= 1 and image.std() > 0.05
    with pytest.raises(ValueError, match="Unknown sample image 'lena'"):
        vitlib.sample_image("lena")


@pytest.mark.backend_independent
def test_position_task_puts_the_square_in_the_labelled_quadrant():
    tasks, labels = images.position_task(200, image_size=32, noise=0.0, seed=1)
    assert tasks.shape == (200, 32, 32, 1) and set(labels) == {0, 1, 2, 3}
    for image, label in zip(tasks, labels):
        quadrants = image[..., 0].reshape(2, 16, 2, 16).sum(axis=(1, 3)).reshape(-1)
        assert np.argmax(quadrants) == label and quadrants[label] == 36
