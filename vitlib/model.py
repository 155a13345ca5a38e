"""The Vision Transformer, Sec. 3.1 of Dosovitskiy et al. (2021):

    images -> patch embedding (+ class token) + position embeddings -> L encoder blocks
           -> LayerNorm -> pool (class token or mean of patch tokens) -> linear head -> logits

in three stages that a ViT exposes and the extensions after the paper build on (:class:`ViTStages`): ``embed``
(Eq. 1), ``encode`` (Eq. 2-3 and the final LayerNorm) and ``head`` (Eq. 4 and the classifier).
"""
import dataclasses
import functools
import inspect
import re
import typing

import keras
import numpy as np
from keras import layers, ops

from vitlib import _checks
from vitlib.attention import ATTENTION_IMPLS, ATTENTION_POSITIONS, ATTENTIONS
from vitlib.encoder import EncoderBlock, LayerNorm
from vitlib.patch_embedding import STEMS, layer_name
from vitlib.patches import patch_grid
from vitlib.position_embedding import POSITION_EMBEDDINGS, ClassToken, PositionEmbedding

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


class EmbeddingStage:
    """Eq. 1 in pieces,

        z0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos,

    over three layers its owner holds: ``stem`` (x_p E), ``class_token`` (x_class, None when the pool reads none) and
    ``position_embedding`` (E_pos). The ViT and FlexiViT's embedding at another patch size
    (:class:`vitlib.beyond.flexivit.ResizedEmbedding`) both run it, so Eq. 1 is written once; the masked autoencoder
    asks it for the visible patches only."""

    def patch_tokens(self, images, training=None, kernel=None):
        """x_p E for every patch: images (B, H, W, C) -> (B, N, D). ``kernel``: another E, (P*, P*, C, D), for P*×P*
        patches (FlexiViT's resized kernel), for a stem that is one linear map of each patch (``stem="patch"``)."""
        if kernel is None:
            return self.stem(images, training=training)
        if self.stem.patch_kernel() is None:
            raise ValueError(f"The stem {self.stem.name!r} is not one linear map E of each patch, so it cannot embed "
                             "patches with another kernel: build the ViT with stem='patch'.")
        return self.stem(images, training=training, kernel=kernel)

    def prepend_class_token(self, tokens):
        """[x_class; tokens]: (B, K, D) -> (B, 1 + K, D) when the pool reads a class token (``POOLS``), else the
        tokens as they are."""
        return tokens if self.class_token is None else self.class_token(tokens)

    def add_positions(self, tokens, grid=None, keep=None):
        """+ E_pos, for tokens laid out as the prefix (the class token), then patches: those of the ViT's own grid;
        of another ``grid`` (rows, cols), with the table resized to it (FlexiViT); or, with ``keep`` (B, K), the
        patches at those indices of the grid, each with its own row (the masked autoencoder's visible ones)."""
        return self.position_embedding(tokens, grid=grid, keep=keep)

    def z0(self, images, training=None, kernel=None, keep=None):
        """z0 of Eq. 1: images (B, H, W, C) -> (B, prefix + N, D); with ``kernel``, the patches of its size (see
        :meth:`patch_tokens`); with ``keep`` (B, K), only the patches at those indices: (B, prefix + K, D)."""
        x = self.patch_tokens(images, training, kernel)
        if keep is not None:
            x = ops.take_along_axis(x, keep[..., None], axis=1)  # (B, K, D)
        grid = None if kernel is None else patch_grid(tuple(images.shape[1:3]), kernel.shape[0])
        return self.add_positions(self.prepend_class_token(x), grid=grid, keep=keep)


class ViTStages(EmbeddingStage):
    """The forward pass of a ViT in the paper's steps, as timm's ``forward_features`` / ``forward_head``:

        logits = vit.head(vit.encode(vit.embed(images)))          # the same numbers as vit(images)

    over the layers its owner holds (those of :class:`EmbeddingStage`, ``embedding_dropout``, ``blocks``,
    ``encoder_norm``, ``pool`` and ``classifier``). An extension replaces one stage and reuses the others."""

    def embed(self, images, training=None, kernel=None, keep=None):
        """Eq. 1, then the embedding dropout: images (B, H, W, C) -> z0 (B, prefix + N, D). ``kernel`` and ``keep``:
        another patch size, or some patches only (:meth:`z0`)."""
        tokens = self.z0(images, training, kernel, keep)  # before the dropout is reached: the order _Layers makes them
        return self.embedding_dropout(tokens, training=training)

    def encode(self, tokens, training=None, return_attention=False, return_tokens=False, reduce=None):
        """Eq. 2-3 over the L encoder blocks, then the final LayerNorm: z0 (B, T, D) -> LN(z_L), the tokens Eq. 4
        pools. With ``return_attention`` or ``return_tokens`` returns ``(tokens, intermediates)``, a dict with each
        block's attention weights (``"attention"``: L arrays (B, heads, T, T)) and its output z_l (``"tokens"``: L
        arrays (B, T, D), before the final LayerNorm), as asked. ``reduce``: changes the tokens in every block between
        attention and the MLP (token merging; :class:`vitlib.encoder.EncoderBlock`), so T may fall block by block."""
        x, found = tokens, {"attention": [], "tokens": []}
        options = {} if reduce is None else {"reduce": reduce}
        for block in self.blocks:
            if return_attention:
                x, weights = block(x, training=training, return_attention_scores=True, **options)
                found["attention"].append(weights)
            else:
                x = block(x, training=training, **options)
            found["tokens"].append(x)
        asked = {"attention": return_attention, "tokens": return_tokens}
        intermediates = {key: value for key, value in found.items() if asked[key]}
        x = self.encoder_norm(x)
        return (x, intermediates) if intermediates else x

    def head(self, tokens):
        """Eq. 4 and the classifier: the pool (``POOLS``: the class token's state, or the mean of the tokens), then
        the linear head: (B, T, D) -> logits (B, num_classes)."""
        pooled = self.pool(tokens)  # before the classifier is reached: the order _Layers makes them
        return self.classifier(pooled)


class _Layers(ViTStages):
    """A ViT's layers while its constructor runs the stages on a symbolic input, making the functional graph. Each is
    made where the forward pass first reaches it, in the order the model always made them: a Keras layer draws its
    initialisers' seeds when it is made, so that a seed still gives the same initial weights."""

    def __init__(self, config):
        self.config, self._blocks = config, []

    @functools.cached_property
    def stem(self):
        stem = STEMS[self.config.stem]
        return stem(self.config.hidden_size, self.config.patch_size, name=layer_name(stem))

    @functools.cached_property
    def class_token(self):
        return ClassToken(name="class_token") if self.config.num_prefix_tokens else None

    @functools.cached_property
    def position_embedding(self):
        c = self.config
        return PositionEmbedding(c.pos_embedding, c.grid_size, c.num_prefix_tokens, name="position_embedding")

    @functools.cached_property
    def embedding_dropout(self):
        return layers.Dropout(self.config.dropout, name="embedding_dropout")

    @property
    def blocks(self):
        c = self.config
        for i in range(c.depth):
            if i == len(self._blocks):
                self._blocks.append(EncoderBlock(
                    c.num_heads, c.mlp_dim, dropout=c.dropout, attention_dropout=c.attention_dropout,
                    drop_path=c.drop_path * i / max(c.depth - 1, 1),  # growing linearly with depth, as in DeiT
                    attention=c.attention, attention_options=attention_options(c), name=f"encoder_block_{i}"))
            yield self._blocks[i]

    @functools.cached_property
    def encoder_norm(self):
        return LayerNorm(name="encoder_norm")

    @functools.cached_property
    def pool(self):
        return TokenPool(self.config.pool, name="pool")

    @functools.cached_property
    def classifier(self):
        c = self.config  # zero-initialised, as in the paper's code
        return layers.Dense(c.num_classes, kernel_initializer="zeros", activation=c.classifier_activation,
                            dtype="float32", name="head")


@keras.saving.register_keras_serializable(package="vitlib")
class VisionTransformer(ViTStages, keras.Model):
    """A functional Keras model built from a :class:`ViTConfig`; ``model.config`` holds it.

    Its forward pass is the stages of :class:`ViTStages` run on its own layers: ``model.embed(images)`` (Eq. 1),
    ``model.encode(tokens)`` (Eq. 2-3 and the final LayerNorm) and ``model.head(tokens)`` (Eq. 4 and the classifier)
    give ``model(images)``'s numbers. Its parts, by the paper's names: ``stem``, ``class_token`` (None without one),
    ``position_embedding``, ``embedding_dropout``, ``blocks``, ``encoder_norm``, ``pool`` and ``classifier`` (the
    layer named ``"head"``)."""

    def __init__(self, config, name=None, **kwargs):
        if isinstance(config, dict):
            config = ViTConfig(**config)
        images = keras.Input((*config.image_size, config.channels), name="images")
        parts = _Layers(config)
        logits = parts.head(parts.encode(parts.embed(images)))
        name = name or "vit_" + re.sub(r"\W", "_", config.variant or "custom")
        super().__init__(inputs=images, outputs=logits, name=name, **kwargs)
        self.config = config

    @property
    def stem(self):
        return self.get_layer(layer_name(STEMS[self.config.stem]))

    @property
    def class_token(self):
        return self.get_layer("class_token") if self.config.num_prefix_tokens else None

    @property
    def position_embedding(self):
        return self.get_layer("position_embedding")

    @property
    def embedding_dropout(self):
        return self.get_layer("embedding_dropout")

    @property
    def blocks(self):
        return [self.get_layer(f"encoder_block_{i}") for i in range(self.config.depth)]

    @property
    def encoder_norm(self):
        return self.get_layer("encoder_norm")

    @property
    def pool(self):
        return self.get_layer("pool")

    @property
    def classifier(self):
        return self.get_layer("head")

    def embed(self, images, training=None, kernel=None, keep=None):
        """:meth:`ViTStages.embed`, the images first checked against the model's input."""
        _check_model_input(self, images)
        return super().embed(images, training, kernel, keep)

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
    """Every layer's attention weights for a batch: a list of L arrays (B, heads, T, T) (NumPy), from the encode
    stage run on the model's own embedding, so every block sees the tokens of the model's forward pass."""
    if not isinstance(model, VisionTransformer):
        raise ValueError(f"Model {model.name!r} is not a vitlib ViT; build it with vitlib.build_vit.")
    _, found = model.encode(model.embed(images, training=training), training=training, return_attention=True)
    return [ops.convert_to_numpy(weights) for weights in found["attention"]]


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
