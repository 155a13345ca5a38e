"""The transformer encoder block, Eq. 2-3 of Dosovitskiy et al. (2021):

    z'_l = MSA(LN(z_{l-1})) + z_{l-1}
    z_l  = MLP(LN(z'_l)) + z'_l

Pre-LayerNorm (epsilon 1e-6), a two-layer MLP with GELU, and residual connections around both: Keras'
``LayerNormalization`` and ``gelu``, or with ``custom_gradients=True`` the same functions with hand-written
TensorFlow gradients from :mod:`vitlib.fast`. MSA is any layer of the ``ATTENTIONS`` registry (default ``"mhsa"``).
"""
import keras
from keras import layers, ops

from vitlib import _checks
from vitlib.attention import ATTENTIONS
from vitlib.fast import LAYER_NORM_EPSILON, mlp_activation, norm_layer  # noqa: F401  (LAYER_NORM_EPSILON re-exported)


@keras.saving.register_keras_serializable(package="vitlib")
class MLPBlock(layers.Layer):
    """Dense(mlp_dim, GELU) -> Dropout -> Dense(D) -> Dropout, applied to each token alone."""

    def __init__(self, mlp_dim, dropout=0.0, custom_gradients=False, **kwargs):
        super().__init__(**kwargs)
        self.mlp_dim = _checks.positive_int("mlp_dim", mlp_dim)
        self.dropout_rate = _checks.rate("dropout", dropout)
        self.custom_gradients = bool(custom_gradients)
        self.activation = mlp_activation(self.custom_gradients)
        self.dropout = layers.Dropout(self.dropout_rate)

    def build(self, input_shape):
        self.fc1 = layers.Dense(self.mlp_dim, name="fc1")  # GELU applied in call()
        self.fc2 = layers.Dense(input_shape[-1], name="fc2")
        self.fc1.build(input_shape)
        self.fc2.build((*input_shape[:-1], self.mlp_dim))

    def call(self, x, training=None):
        x = self.dropout(self.activation(self.fc1(x)), training=training)
        return self.dropout(self.fc2(x), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mlp_dim": self.mlp_dim, "dropout": self.dropout_rate,
                "custom_gradients": self.custom_gradients}


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
    self-attention), or such a class itself; ``custom_gradients``: LayerNorm and GELU from :mod:`vitlib.fast`.
    """

    def __init__(self, num_heads, mlp_dim, dropout=0.0, attention_dropout=0.0, drop_path=0.0,
                 attention_impl="auto", attention="mhsa", custom_gradients=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(attention, type):  # a registered class: use its registered name (what get_config saves)
            names = [name for name, cls in ATTENTIONS.items() if cls is attention]
            if not names:
                raise ValueError(f"The attention class {attention.__name__} is not registered: decorate it with "
                                 f"@vitlib.attention.register_attention('name') and pass attention='name'.")
            attention = names[0]
        self.attention_name = _checks.choice("attention", attention, tuple(ATTENTIONS))
        self.custom_gradients = bool(custom_gradients)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.mlp_dim = _checks.positive_int("mlp_dim", mlp_dim)
        self.dropout_rate = _checks.rate("dropout", dropout)
        self.attention_dropout = _checks.rate("attention_dropout", attention_dropout)
        self.drop_path = _checks.rate("drop_path", drop_path)
        self.attention_impl = attention_impl
        self.norm1 = norm_layer(self.custom_gradients, name="norm1")
        self.attention = ATTENTIONS[self.attention_name](num_heads, attention_dropout, attention_impl, name="attention")
        self.attention_out_dropout = layers.Dropout(self.dropout_rate)
        self.norm2 = norm_layer(self.custom_gradients, name="norm2")
        self.mlp = MLPBlock(mlp_dim, dropout, self.custom_gradients, name="mlp")
        self.drop_branch = StochasticDepth(drop_path, name="drop_path")

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name} expects tokens (batch, tokens, width), got shape {tuple(input_shape)}.")
        for layer in (self.norm1, self.attention, self.norm2, self.mlp):
            layer.build(input_shape)

    def call(self, x, training=None, return_attention_scores=False):
        y, weights = self.attention(self.norm1(x), training=training, return_attention_scores=True) \
            if return_attention_scores else (self.attention(self.norm1(x), training=training), None)
        x = x + self.drop_branch(self.attention_out_dropout(y, training=training), training=training)  # Eq. 2
        x = x + self.drop_branch(self.mlp(self.norm2(x), training=training), training=training)  # Eq. 3
        return (x, weights) if return_attention_scores else x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "mlp_dim": self.mlp_dim,
                "dropout": self.dropout_rate, "attention_dropout": self.attention_dropout,
                "drop_path": self.drop_path, "attention_impl": self.attention_impl, "attention": self.attention_name,
                "custom_gradients": self.custom_gradients}
