"""vitlib.training.recipes: recipes with overrides, and configs refused with the fix."""
import pytest

from vitlib.training import recipes


def test_recipes_and_bad_configs():
    cfg = recipes.recipe("digits", epochs=5, model={"depth": 2})
    assert cfg.epochs == 5 and cfg.model["depth"] == 2 and cfg.model["hidden_size"] == 64
    with pytest.raises(ValueError, match="warmup_epochs must be in"):
        recipes.recipe("digits", epochs=3, warmup_epochs=3)
    with pytest.raises(ValueError, match="Unknown recipe 'imagenet'"):
        recipes.recipe("imagenet")
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        recipes.TrainConfig(learning_rate=0)
    with pytest.raises(ValueError, match="distill is the teacher's weight"):
        recipes.TrainConfig(distill=1.5)
    with pytest.raises(ValueError, match="translate is a fraction"):
        recipes.TrainConfig(translate=0.6)
    with pytest.raises(ValueError, match="Unknown keep 'final'"):
        recipes.TrainConfig(keep="final")
    with pytest.raises(ValueError, match="train_on_validation=True leaves no validation images"):
        recipes.TrainConfig(train_on_validation=True, keep="best")
    assert recipes.recipe("digits").train_on_validation  # the final digits run trains on the validation images...
    assert not recipes.recipe("digits", keep="best").train_on_validation  # ...unless it must pick an epoch by them
