import keras
import numpy as np
import pytest

import vitlib

torch = pytest.importorskip("torch")
from vitlib.weights import torch_vit  # noqa: E402


def small_vit(image_size=16, **options):
    return vitlib.build_vit(None, image_size=image_size, channels=3, num_classes=7, patch_size=4, hidden_size=32,
                            depth=2, num_heads=4, mlp_dim=64, **options)


def randomised(model, seed=0):
    """Every weight drawn at random (the zero-initialised head and class token would hide layout mistakes)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(0, 0.3, w.shape).astype("float32"))
    return model


def torch_logits(module, images):
    with torch.no_grad():
        return module(torch.from_numpy(images)).numpy()


@pytest.mark.parametrize("options", [
    {},
    {"pool": "gap"},
    {"pos_embedding": "sincos2d"},
    {"pos_embedding": "none", "classifier_activation": "softmax"},
    {"image_size": (16, 12)},  # a 4x3 grid: rows first in both frameworks
], ids=["token-learned", "gap", "sincos2d", "none-softmax", "rectangular"])
def test_port_gives_the_keras_logits_to_1e_5(options, rng):
    model = randomised(small_vit(**options))
    images = rng.random((5, *model.config.image_size, 3), dtype="float32")
    expected = keras.ops.convert_to_numpy(model(images))
    np.testing.assert_allclose(torch_logits(torch_vit.from_keras(model), images), expected, atol=1e-5, rtol=0)


def test_port_of_a_reloaded_keras_file_gives_its_logits(tmp_path, rng):
    path = tmp_path / "model.keras"
    randomised(small_vit()).save(path)
    model = keras.saving.load_model(path)
    images = rng.random((3, 16, 16, 3), dtype="float32")
    np.testing.assert_allclose(torch_logits(torch_vit.from_keras(model), images),
                               keras.ops.convert_to_numpy(model(images)), atol=1e-5, rtol=0)


def test_copy_to_keras_writes_back_every_weight_exactly():
    source = randomised(small_vit(), seed=1)
    target = small_vit()
    torch_vit.copy_to_keras(torch_vit.from_keras(source), target)
    for a, b, w in zip(source.get_weights(), target.get_weights(), source.weights):
        np.testing.assert_array_equal(a, b, err_msg=w.path)


@pytest.mark.tensorflow_only
def test_port_gradients_equal_keras_gradients(rng):
    import tensorflow as tf

    model = randomised(small_vit(), seed=2)
    images = rng.random((4, 16, 16, 3), dtype="float32")
    labels = np.array([0, 3, 6, 1])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, model(images))
    keras_grads = dict(zip([w.path for w in model.trainable_weights], tape.gradient(loss, model.trainable_weights)))
    port = torch_vit.from_keras(model)
    torch.nn.functional.cross_entropy(port(torch.from_numpy(images)), torch.from_numpy(labels)).backward()
    grads = dict(port.named_parameters())
    for path, grad in keras_grads.items():
        name = torch_vit._torch_name(path)
        got = torch_vit._relayout(name, grads[name].grad.numpy(), to_torch=False)
        np.testing.assert_allclose(got, grad.numpy(), atol=2e-5, rtol=1e-4, err_msg=path)


def test_port_refuses_the_hybrid_stem_and_other_attentions_by_name():
    with pytest.raises(ValueError, match=r"stem='conv'.*Build it with the defaults"):
        torch_vit.from_keras(small_vit(stem="conv"))


def test_port_refuses_a_model_that_is_not_a_vitlib_vit():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="plain")
    with pytest.raises(ValueError, match="'plain' is not a vitlib VisionTransformer"):
        torch_vit.from_keras(model)


def test_copy_to_keras_refuses_a_model_of_another_depth():
    with pytest.raises(ValueError, match=r"do not match.*blocks\.1"):
        torch_vit.copy_to_keras(torch_vit.from_keras(small_vit()), vitlib.build_vit(
            None, image_size=16, channels=3, num_classes=7, patch_size=4, hidden_size=32, depth=1, num_heads=4,
            mlp_dim=64))
