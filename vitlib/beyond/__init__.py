"""After the paper: three later results on the same small ViTs (notebook 10).

- :mod:`vitlib.beyond.flexivit`: one ViT at any patch size (Beyer et al. 2023): ``pi_resize``, ``at_patch_size``,
  ``train_flexible``;
- :mod:`vitlib.beyond.tome`: fewer tokens without retraining (Bolya et al. 2023): ``with_token_reduction``,
  ``merge_tokens``, ``token_counts``, ``merged_groups``;
- :mod:`vitlib.beyond.mae`: pre-training without labels (He et al. 2022): ``MaskedAutoencoder``, ``pretrain``;
- :mod:`vitlib.beyond.timing`: measured images per second, several models in turns (``throughput``).

The notebook's data and model: scikit-learn's digits upsampled to 24x24 (:func:`upsampled_digits`) and a ViT of
width 64 and depth 4 (:func:`small_vit`), so that 24 = 3·8 = 4·6 = 6·4 = 8·3 = 12·2 allows five patch sizes.
"""
import dataclasses

IMAGE_SIZE = 24
PATCH_SIZES = (3, 4, 6, 8, 12)  # every patch size that tiles 24x24 with 4 to 64 tokens


def upsampled_digits(image_size=IMAGE_SIZE, seed=0):
    """The registry's ``"digits"`` (8x8, the same splits) with every image resized to ``image_size`` (bilinear)."""
    from vitlib.data.datasets import load_dataset
    from vitlib.data.images import resize_images

    d = load_dataset("digits", seed=seed)
    return dataclasses.replace(d, x_train=resize_images(d.x_train, image_size), x_val=resize_images(d.x_val, image_size),
                               x_test=resize_images(d.x_test, image_size))


def small_vit(patch_size=6, image_size=IMAGE_SIZE, **options):
    """The ViT of notebook 10: width 64, 4 layers of 4 heads, MLP 128, the plain patch embedding, learned positions."""
    from vitlib.model import build_vit

    return build_vit(None, image_size=image_size, channels=1, num_classes=10, patch_size=patch_size,
                     hidden_size=64, depth=4, num_heads=4, mlp_dim=128, **options)
