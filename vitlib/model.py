"""The Vision Transformer, Sec. 3.1 of Dosovitskiy et al. (2021):

    images -> patch embedding (+ class token) + position embeddings -> L encoder blocks
           -> LayerNorm -> pool (class token or mean of patch tokens) -> linear head -> logits
"""
import dataclasses
import inspect
import re
import typing

import keras
import numpy as np
from keras import layers, ops

from vitlib import _checks
from vitlib.attention import ATTENTION_IMPLS, ATTENTION_POSITIONS, ATTENTIONS
from vitlib.embeddings import POSITION_EMBEDDINGS, ClassToken, PositionEmbedding
from vitlib.encoder import EncoderBlock, LayerNorm
from vitlib.patches import patch_grid
from vitlib.stems import STEMS, layer_name

# Table 1 of the paper (B, L, H) and of DeiT (Touvron et al. 2021) for Ti and S:
# name -> (hidden size D, depth L, heads, MLP size). A new size is one entry; "M/16" then parses.
VARIANTS = {
    "Ti": (192, 12, 3, 768),
    "S": (384, 12, 6, 1536),
    "B": (768, 12, 12, 3072),
    "L": (1024, 24, 16, 4096),
    "H": (1280, 32, 16, 5120),
}


class Pool(typing.NamedTuple):
    """How the image representation y is read from the encoder's output tokens (an entry of ``POOLS``)."""

    read: typing.Callable  # (B, T, D) -> (B, D)
    class_token: bool      # the model prepends a class token for it to read


# The class token's state (Eq. 4) or the mean of the patch tokens (appendix D.3).
POOLS = {
    "token": Pool(lambda tokens: tokens[:, 0], class_token=True),
    "gap": Pool(lambda tokens: ops.mean(tokens, axis=1), class_token=False),
}


def parse_variant(variant):
    """``"B/16"`` -> ``("B", 16)``; the sizes are those of ``VARIANTS``."""
    sizes = "|".join(map(re.escape, sorted(VARIANTS, key=len, reverse=True)))
    match = re.fullmatch(rf"({sizes})/(\d+)", str(variant))
    if not match or int(match[2]) == 0:
        raise ValueError(
            f"Unknown variant {variant!r}. Write a size and a patch size like 'B/16' or 'Ti/4'; sizes are "
            f"{', '.join(VARIANTS)}. For a custom model pass variant=None with hidden_size, depth, "
            "num_heads, mlp_dim and patch_size."
        )
    return match[1], int(match[2])


@dataclasses.dataclass(frozen=True)
class ViTConfig:
    """Everything that defines a ViT architecture, checked on creation."""

    image_size: tuple = (224, 224)
    patch_size: int = 16
    channels: int = 3
    num_classes: int = 1000
    hidden_size: int = 192
    depth: int = 12
    num_heads: int = 3
    mlp_dim: int = 768
    pos_embedding: str = "learned"
    pool: str = "token"
    stem: str = "patch"
    dropout: float = 0.0
    attention_dropout: float = 0.0
    drop_path: float = 0.0
    attention_impl: str = "auto"
    attention: str = "mhsa"
    attention_position: str = "none"
    classifier_activation: str = None
    variant: str = None

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen dataclass)
        set_("image_size", _checks.int_pair("image_size", self.image_size))
        set_("patch_size", _checks.patch_size(self.patch_size))
        for name in ("channels", "hidden_size", "depth", "num_heads", "mlp_dim"):
            set_(name, _checks.positive_int(name, getattr(self, name)))
        _checks.positive_int("num_classes", self.num_classes, "A classifier needs at least one class.")
        patch_grid(self.image_size, self.patch_size)
        _checks.heads_divide(self.hidden_size, self.num_heads)
        _checks.choice("pos_embedding", self.pos_embedding, tuple(POSITION_EMBEDDINGS))
        _checks.width_multiple(self.pos_embedding, self.hidden_size, POSITION_EMBEDDINGS[self.pos_embedding].width_multiple)
        _checks.choice("pool", self.pool, tuple(POOLS))
        _checks.choice("stem", self.stem, tuple(STEMS))
        for name in ("dropout", "attention_dropout", "drop_path"):
            set_(name, _checks.rate(name, getattr(self, name)))
        _checks.choice("attention_impl", self.attention_impl, tuple(ATTENTION_IMPLS))
        _checks.fused_without_dropout(self.attention_impl, self.attention_dropout)
        _checks.choice("attention", self.attention, tuple(ATTENTIONS))
        _checks.choice("attention_position", self.attention_position, tuple(ATTENTION_POSITIONS))
        takes = inspect.signature(ATTENTIONS[self.attention]).parameters
        for option in attention_options(self):
            if option not in takes:
                raise ValueError(f"attention={self.attention!r} takes no {option!r}: leave it at its default, or use "
                                 "attention='mhsa'.")
        _checks.choice("classifier_activation", self.classifier_activation, (None, "softmax"))

    @property
    def grid_size(self):
        return patch_grid(self.image_size, self.patch_size)

    @property
    def num_patches(self):
        rows, cols = self.grid_size
        return rows * cols

    @property
    def num_prefix_tokens(self):
        """Tokens before the patches: the class token, when the pool reads one."""
        return int(POOLS[self.pool].class_token)

    @property
    def num_tokens(self):
        return self.num_prefix_tokens + self.num_patches

    @classmethod
    def from_variant(cls, variant="Ti/16", **overrides):
        """Start from a named variant; keyword arguments that are not None override its values."""
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"Unknown ViT option {', '.join(map(repr, unknown))}: the options are the fields of "
                             f"ViTConfig ({', '.join(f.name for f in dataclasses.fields(cls))}).")
        overrides = {k: v for k, v in overrides.items() if v is not None or k == "classifier_activation"}
        if variant is None:
            missing = [k for k in ("hidden_size", "depth", "num_heads", "mlp_dim", "patch_size") if k not in overrides]
            if missing:
                raise ValueError(f"variant=None needs explicit {', '.join(missing)}; or pass a variant like 'S/16'.")
            return cls(**overrides)
        size, patch = parse_variant(variant)
        hidden, depth, heads, mlp = VARIANTS[size]
        base = dict(hidden_size=hidden, depth=depth, num_heads=heads, mlp_dim=mlp, patch_size=patch, variant=variant)
        return cls(**{**base, **overrides})


def attention_options(config):
    """The options a ViT's encoder blocks pass to their attention layer: its implementation when one is chosen, and
    the patch grid for a position scheme that acts inside attention."""
    options = {} if config.attention_impl == "auto" else {"attention_impl": config.attention_impl}
    if config.attention_position != "none":
        options.update(position=config.attention_position, grid_size=config.grid_size,
                       num_prefix_tokens=config.num_prefix_tokens)
    return options


@keras.saving.register_keras_serializable(package="vitlib")
class TokenPool(layers.Layer):
    """(B, T, D) -> (B, D): one of ``POOLS``, e.g. the class token's state (``"token"``, Eq. 4) or the mean of all
    tokens (``"gap"``)."""

    def __init__(self, mode="token", **kwargs):
        super().__init__(**kwargs)
        self.mode = _checks.choice("pool", mode, tuple(POOLS))

    def call(self, tokens):
        return POOLS[self.mode].read(tokens)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="vitlib")
class VisionTransformer(keras.Model):
    """A functional Keras model built from a :class:`ViTConfig`; ``model.config`` holds it."""

    def __init__(self, config, name=None, **kwargs):
        if isinstance(config, dict):
            config = ViTConfig(**config)
        c = config
        images = keras.Input((*c.image_size, c.channels), name="images")
        stem = STEMS[c.stem]
        x = stem(c.hidden_size, c.patch_size, name=layer_name(stem))(images)  # (B, N, D)
        if c.num_prefix_tokens:
            x = ClassToken(name="class_token")(x)  # (B, 1 + N, D)
        x = PositionEmbedding(c.pos_embedding, c.grid_size, c.num_prefix_tokens, name="position_embedding")(x)
        x = layers.Dropout(c.dropout, name="embedding_dropout")(x)
        for i in range(c.depth):
            x = EncoderBlock(c.num_heads, c.mlp_dim, dropout=c.dropout, attention_dropout=c.attention_dropout,
                             drop_path=c.drop_path * i / max(c.depth - 1, 1),  # growing linearly with depth, as in DeiT
                             attention=c.attention, attention_options=attention_options(c), name=f"encoder_block_{i}")(x)
        x = LayerNorm(name="encoder_norm")(x)
        x = TokenPool(c.pool, name="pool")(x)  # (B, D)
        logits = layers.Dense(c.num_classes, kernel_initializer="zeros", activation=c.classifier_activation,
                              dtype="float32", name="head")(x)  # zero-initialised head, as in the paper's code
        name = name or "vit_" + re.sub(r"\W", "_", c.variant or "custom")
        super().__init__(inputs=images, outputs=logits, name=name, **kwargs)
        self.config = c

    def __call__(self, images, *args, **kwargs):
        _check_model_input(self, images)
        return super().__call__(images, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        """Keras' ``predict``, except that zero images give an empty ``(0, num_classes)`` array (Keras 3 fails
        on them with an UnboundLocalError from deep inside)."""
        if getattr(x, "shape", None) is not None and len(x.shape) == 4 and x.shape[0] == 0:
            _check_model_input(self, x)
            return np.zeros((0, self.config.num_classes), "float32")
        return super().predict(x, *args, **kwargs)

    def get_config(self):
        return {"config": dataclasses.asdict(self.config), "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # custom_gradients: a field of the ViTConfig of models saved while the hand-written gradients were part of
        # the model (those under notebooks/models/07); they are the speed layer's now (vitlib.speed), and the model
        # it describes is this one.
        if isinstance(config.get("config"), dict):
            config = {**config, "config": {k: v for k, v in config["config"].items() if k != "custom_gradients"}}
        return cls(**config)


def build_vit(variant="Ti/16", *, name=None, **options):
    """Build a ViT ``keras.Model`` mapping images (B, H, W, C) to logits (B, num_classes).

    ``variant`` is a size and a patch size such as ``"B/16"`` or ``"Ti/4"`` (Table 1 of the paper, ``VARIANTS``);
    ``options`` are fields of :class:`ViTConfig` that override it (``image_size`` defaults to 224, ``num_classes`` to
    1000), and with ``variant=None`` ``patch_size``, ``hidden_size``, ``depth``, ``num_heads`` and ``mlp_dim`` define a
    custom model. ``stem`` turns images into tokens: ``"patch"`` (the paper's linear patch projection), ``"conv"`` (a
    small CNN: the hybrid ViT) or ``"shifted"`` (shifted patch tokenization, for small data sets); each kind of option
    is a registry (``STEMS``, ``POSITION_EMBEDDINGS``, ``POOLS``, ``ATTENTIONS``, ...).
    """
    return VisionTransformer(ViTConfig.from_variant(variant, **options), name=name)


def encoder_blocks(model):
    """The model's encoder blocks, first to last."""
    blocks = [layer for layer in model.layers if isinstance(layer, EncoderBlock)]
    if not blocks:
        raise ValueError(f"Model {model.name!r} has no vitlib EncoderBlock layers; build it with vitlib.build_vit.")
    return blocks


def attention_weights(model, images, training=False):
    """Every layer's attention weights for a batch: a list of L arrays (B, heads, T, T) (NumPy).

    Runs the model up to the first encoder block, then each block asking for its weights; the final
    tokens equal those of the model's own forward pass.
    """
    blocks = encoder_blocks(model)
    _check_model_input(model, images)
    embed = keras.Model(model.inputs[0], blocks[0].input)
    x = embed(images, training=training)
    maps = []
    for block in blocks:
        x, weights = block(x, training=training, return_attention_scores=True)
        maps.append(ops.convert_to_numpy(weights))
    return maps


def _check_model_input(model, images):
    """Compare the known dimensions of ``images`` with the model's input (unknown ones pass)."""
    expected = tuple(model.inputs[0].shape[1:])
    try:
        given = tuple(images.shape)
    except (AttributeError, ValueError):  # not an array, or a graph tensor of unknown rank
        return
    if len(given) != 4 or any(g is not None and g != e for g, e in zip(given[1:], expected)):
        raise ValueError(
            f"Model {model.name!r} takes images of shape (batch, {', '.join(map(str, expected))}), got {given}. "
            + ("For one image add a batch axis: images[None]." if len(given) == 3 else
               "Resize the images, or build the model with matching image_size and channels.")
        )
