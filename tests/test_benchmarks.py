"""The throughput benchmark compares like with like: the plain Keras ViT has vitlib's sizes, and the matrix-product
floor times every product of a training step once."""
import importlib.util
import math
from pathlib import Path

import pytest

import vitlib
from vitlib import costs

pytestmark = pytest.mark.tensorflow_only  # the plain ViT uses tf.image.extract_patches, the floor tf.matmul

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("variant,image_size", [("Ti/4", 32), ("S/16", 224)])
def test_the_plain_keras_vit_has_as_many_parameters_as_vitlibs(bench, variant, image_size):
    cfg = vitlib.ViTConfig.from_variant(variant, image_size=image_size, num_classes=10, pool="gap")
    plain = bench.plain_keras_vit(image_size, cfg.patch_size, cfg.hidden_size, cfg.depth, cfg.num_heads,
                                  cfg.mlp_dim, 10)
    ours = vitlib.build_vit(variant, image_size=image_size, num_classes=10, pool="gap")
    assert plain.count_params() == ours.count_params() == costs.parameter_count(cfg)


@pytest.mark.parametrize("variant,image_size,batch", [("Ti/4", 32, 128), ("B/16", 224, 8), ("S/16", 160, 3)])
def test_the_floor_covers_every_matrix_product_of_a_training_step(bench, variant, image_size, batch):
    cfg = vitlib.ViTConfig.from_variant(variant, image_size=image_size, num_classes=10, pool="gap")
    flops = 0
    for count, shape_a, shape_b, transpose_a, transpose_b in bench.matmul_products(cfg, batch):
        *stack, m, k = (*shape_a[:-2], shape_a[-1], shape_a[-2]) if transpose_a else shape_a
        *stack_b, k_b, n = (*shape_b[:-2], shape_b[-1], shape_b[-2]) if transpose_b else shape_b
        assert (stack, k) == (stack_b, k_b), (shape_a, shape_b, transpose_a, transpose_b)
        flops += count * 2 * math.prod(stack) * m * k * n
    # Training is 3x the forward pass (vitlib.costs), less the two products the floor leaves out: the gradient
    # of the input images (never needed) and the classifier head (tiny).
    patch_embedding = 2 * cfg.num_patches * cfg.patch_size**2 * cfg.channels * cfg.hidden_size
    head = 2 * cfg.hidden_size * cfg.num_classes
    assert flops == batch * (3 * costs.flops_per_image(cfg) - patch_embedding - 3 * head)
