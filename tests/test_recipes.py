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


def test_a_data_set_without_a_recipe_gets_the_generic_one_with_a_patch_size_that_fits_its_images():
    assert recipes.recipe_for("mnist_5k") == recipes.recipe("mnist_5k")  # its own, when it has one
    generic = recipes.recipe_for("fashion_mnist", epochs=5, model={"depth": 2})
    assert generic.dataset == "fashion_mnist" and generic.epochs == 5 and generic.keep == "best"
    assert generic.model["patch_size"] == "auto" and generic.model["depth"] == 2 and generic.model["stem"] == "patch"
    sizes = {8: 2, 12: 3, 20: 5, 28: 7, 32: 8, 96: 16, 224: 16, 13: 1, (12, 20): 2}
    for image_size, patch in sizes.items():
        assert recipes.generic_patch_size(image_size) == patch, image_size
    for side in range(4, 300):  # always a patch that tiles the image, into at least 4x4 patches where one can
        patch = recipes.generic_patch_size(side)
        assert side % patch == 0 and (side // patch >= 4 or patch == 1)
