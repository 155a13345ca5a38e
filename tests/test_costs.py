import numpy as np
import pytest

import vitlib
from vitlib import costs

pytestmark = pytest.mark.backend_neutral  # formulas against built models' weight counts, the same on every backend

CONFIGS = [
    dict(variant="Ti/4", image_size=32, num_classes=10),
    dict(variant="S/16", image_size=64, num_classes=7, pos_embedding="sincos2d", pool="gap"),
    dict(variant="Ti/8", image_size=(32, 48), num_classes=3, channels=1, pos_embedding="none"),
]


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_analytic_parameter_count_equals_the_built_models_trainable_weights(kwargs):
    model = vitlib.build_vit(**kwargs)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert costs.parameter_count(**kwargs) == trainable
    fixed = model.count_params() - trainable  # sin-cos tables are stored, but are not parameters
    assert fixed == (model.config.num_tokens * model.config.hidden_size if "sincos" in model.config.pos_embedding else 0)


def test_b16_costs_17_6_giga_multiply_adds_per_image():
    # timm and fvcore report 17.6 GMACs for ViT-B/16 at 224x224
    assert costs.flops_per_image(variant="B/16", image_size=224) / 2 == pytest.approx(17.57e9, rel=5e-3)


def test_attention_memory_grows_with_the_square_of_the_token_count():
    small = costs.activation_memory(variant="Ti/16", image_size=224, pool="gap")  # 196 tokens
    large = costs.activation_memory(variant="Ti/8", image_size=224, pool="gap")  # 784 tokens
    assert large["attention"] == 16 * small["attention"]
    assert large["tokens"] == 4 * small["tokens"]
    assert costs.activation_memory(variant="Ti/16", batch_size=8, pool="gap")["total"] == 8 * small["total"]
