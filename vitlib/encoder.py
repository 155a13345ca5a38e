"""The transformer encoder block, Eq. 2-3 of Dosovitskiy et al. (2021):

    z'_l = MSA(LN(z_{l-1})) + z_{l-1}
    z_l  = MLP(LN(z'_l)) + z'_l

Pre-LayerNorm (epsilon 1e-6), a two-layer MLP with GELU, and residual connections around both, from Keras' own
``LayerNormalization`` and ``gelu``. MSA is any layer of the ``ATTENTIONS`` registry (default ``"mhsa"``).
"""
import keras
from keras import layers, ops

from vitlib import _checks
from vitlib.attention import ATTENTIONS

LAYER_NORM_EPSILON = 1e-6  # as in the paper's code (Keras' default, 1e-3, is another function)


@keras.saving.register_keras_serializable(package="vitlib")
class LayerNorm(layers.LayerNormalization):
    """The ViT's LayerNorm: Keras' ``LayerNormalization`` over the last axis with the paper's epsilon, 1e-6. A class
    of its own so that a saved ViT names its weights as vitlib always has (``layer_norm``), and the committed models
    (notebooks/models/07) load."""

    def __init__(self, epsilon=LAYER_NORM_EPSILON, **kwargs):
        super().__init__(epsilon=epsilon, **kwargs)


@keras.saving.register_keras_serializable(package="vitlib")
class MLPBlock(layers.Layer):
    """Dense(mlp_dim, GELU) -> Dropout -> Dense(D) -> Dropout, applied to each token alone. The GELU is the exact
    one, x·Φ(x) (Keras' ``"gelu"``), as in the paper's code."""

    def __init__(self, mlp_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mlp_dim = _checks.positive_int("mlp_dim", mlp_dim)
        self.dropout_rate = _checks.rate("dropout", dropout)
        self.dropout = layers.Dropout(self.dropout_rate)

    def build(self, input_shape):
        self.fc1 = layers.Dense(self.mlp_dim, activation="gelu", name="fc1")
        self.fc2 = layers.Dense(input_shape[-1], name="fc2")
        self.fc1.build(input_shape)
        self.fc2.build((*input_shape[:-1], self.mlp_dim))

    def call(self, x, training=None):
        x = self.dropout(self.fc1(x), training=training)
        return self.dropout(self.fc2(x), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mlp_dim": self.mlp_dim, "dropout": self.dropout_rate}


@keras.saving.register_keras_serializable(package="vitlib")
class StochasticDepth(layers.Layer):
    """Drops a whole residual branch for a random subset of samples while training (Huang et al. 2016),
    scaling the kept ones by 1/(1 - rate). A regulariser used to train ViTs on small data (DeiT)."""

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _checks.rate("drop_path", rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.rate == 0:
            return x
        keep = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        mask = ops.floor(keep + keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype))
        return x / keep * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="vitlib")
class EncoderBlock(layers.Layer):
    """One transformer layer: (B, T, D) -> (B, T, D).

    ``attention``: the name of an attention layer in ``vitlib.attention.ATTENTIONS`` (default ``"mhsa"``, multi-head
    self-attention), built as ``ATTENTIONS[attention](num_heads, dropout=attention_dropout, **attention_options)``:
    ``attention_options`` are that layer's own (for ``"mhsa"``: ``attention_impl``, ``position``, ...).

    ``call(x, training=None, return_attention_scores=False, reduce=None)``: ``reduce`` changes the tokens between
    attention and the MLP, where token merging works (Bolya et al. 2023, :mod:`vitlib.beyond.tome`):
    ``reduce.attention_bias()`` is added to the attention scores, then ``reduce(x, keys)`` gives the tokens Eq. 3 gets,
    from Eq. 2's output and the attention's keys (B, T, h, d). So token merging runs the block's own attention layer,
    which must take ``bias`` and ``return_keys`` for it.
    """

    def __init__(self, num_heads, mlp_dim, *, dropout=0.0, attention_dropout=0.0, drop_path=0.0, attention="mhsa",
                 attention_options=None, **kwargs):
        super().__init__(**kwargs)
        self.attention_name = _checks.choice("attention", attention, tuple(ATTENTIONS))
        self.attention_options = dict(attention_options or {})
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.mlp_dim = _checks.positive_int("mlp_dim", mlp_dim)
        self.dropout_rate = _checks.rate("dropout", dropout)
        self.attention_dropout = _checks.rate("attention_dropout", attention_dropout)
        self.drop_path = _checks.rate("drop_path", drop_path)
        self.norm1 = LayerNorm(name="norm1")
        self.attention = ATTENTIONS[self.attention_name](num_heads, dropout=attention_dropout, name="attention",
                                                         **self.attention_options)
        self.attention_out_dropout = layers.Dropout(self.dropout_rate)
        self.norm2 = LayerNorm(name="norm2")
        self.mlp = MLPBlock(mlp_dim, dropout, name="mlp")
        self.drop_branch = StochasticDepth(drop_path, name="drop_path")

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name} expects tokens (batch, tokens, width), got shape {tuple(input_shape)}.")
        for layer in (self.norm1, self.attention, self.norm2, self.mlp):
            layer.build(input_shape)

    def call(self, x, training=None, return_attention_scores=False, reduce=None):
        options = {"return_attention_scores": True} if return_attention_scores else {}
        if reduce is not None:
            options.update(bias=reduce.attention_bias(), return_keys=True)
        out = self.attention(self.norm1(x), training=training, **options)
        y, *extra = out if options else (out,)  # y, then the weights and the keys, as asked
        x = x + self.drop_branch(self.attention_out_dropout(y, training=training), training=training)  # Eq. 2
        if reduce is not None:
            x = reduce(x, extra[-1])
        x = x + self.drop_branch(self.mlp(self.norm2(x), training=training), training=training)  # Eq. 3
        return (x, extra[0]) if return_attention_scores else x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "mlp_dim": self.mlp_dim,
                "dropout": self.dropout_rate, "attention_dropout": self.attention_dropout,
                "drop_path": self.drop_path, "attention": self.attention_name,
                "attention_options": self.attention_options}
