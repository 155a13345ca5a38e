"""Masked autoencoders (He et al., CVPR 2022, "Masked Autoencoders Are Scalable Vision Learners"): pre-training a
ViT without labels.

Hide most patches of each image (75 % by default, drawn anew for every image and step), run the ViT's encoder on the
visible ones only, and train a small decoder to paint the hidden ones back (Sec. 3 of He et al.):

    visible tokens (+ positions) -> the ViT's encoder -> a narrow decoder, with a shared learned [mask] token at every
    hidden place (+ fixed 2-D sin-cos positions) -> pixels of every patch; the loss: mean squared error on the
    hidden patches only

The encoder *is* the ViT: its patch embedding, class token, position table and blocks, the same weights. After
pre-training, the ViT (its head untouched) is fine-tuned on labels like any other.

    mae = MaskedAutoencoder(vit, mask_ratio=0.75, seed=0)
    pretrain(mae, images, steps=200)       # then fine-tune mae.vit on labelled images
"""
import keras
import numpy as np
from keras import layers, ops

from vitlib import _checks
from vitlib.encoder import EncoderBlock
from vitlib.model import VisionTransformer
from vitlib.patches import extract_patches, patches_to_images
from vitlib.position_embedding import sincos_2d


def _gather(x, index):
    """Tokens ``x`` (B, T, C) at ``index`` (B, K) -> (B, K, C)."""
    return ops.take_along_axis(x, index[..., None], axis=1)


def _check_vit(vit):
    """Hiding a patch is leaving out its token, and the visible tokens are no longer a whole patch grid."""
    if not isinstance(vit, VisionTransformer):
        raise ValueError(f"MaskedAutoencoder needs a vitlib ViT (vitlib.build_vit), got {type(vit).__name__}.")
    c = vit.config
    if vit.stem.patch_kernel() is None:
        raise ValueError(f"MaskedAutoencoder hides a patch by leaving out its token, so each token must see its own "
                         f"patch only (x_p E); the tokens of stem={c.stem!r} see their neighbours too, hidden ones "
                         "among them: build the ViT with stem='patch'.")
    if c.attention_position != "none":
        raise ValueError(f"MaskedAutoencoder encodes the visible patches only, off the whole patch grid that "
                         f"attention_position={c.attention_position!r} reads inside attention: use "
                         "attention_position='none' (positions from pos_embedding, given to each visible patch).")


@keras.saving.register_keras_serializable(package="vitlib")
class MaskedAutoencoder(keras.Model):
    """A vitlib ViT (stem ``"patch"``) as the encoder of a masked autoencoder, with a decoder of
    ``decoder_depth`` blocks of width ``decoder_width``. ``call(images)`` returns the predicted pixels of every
    patch (B, N, P·P·C) and the mask (B, N), 1 where a patch was hidden; the loss is computed by the model
    (``compile`` needs only an optimiser). ``norm_pix_loss``: predict each patch's pixels normalised to mean 0 and
    variance 1 (the paper's better setting on ImageNet; off by default here)."""

    def __init__(self, vit, mask_ratio=0.75, decoder_width=32, decoder_depth=1, decoder_heads=2, norm_pix_loss=False,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(vit, dict):
            vit = keras.saving.deserialize_keras_object(vit)
        _check_vit(vit)
        if not 0 < mask_ratio < 1:
            raise ValueError(f"mask_ratio is the share of patches hidden, in (0, 1), got {mask_ratio!r}.")
        c = vit.config
        self.vit, self.mask_ratio, self.norm_pix_loss, self.seed = vit, float(mask_ratio), bool(norm_pix_loss), seed
        self.decoder_width = _checks.positive_int("decoder_width", decoder_width)
        self.decoder_depth = _checks.positive_int("decoder_depth", decoder_depth)
        self.decoder_heads = _checks.positive_int("decoder_heads", decoder_heads)
        self.visible = max(1, round(c.num_patches * (1 - self.mask_ratio)))  # patches the encoder sees
        self.prefix = c.num_prefix_tokens
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.decoder_embed = layers.Dense(decoder_width, name="decoder_embed")
        self.decoder_blocks = [EncoderBlock(decoder_heads, 2 * decoder_width, name=f"decoder_block_{i}")
                               for i in range(decoder_depth)]
        self.decoder_norm = layers.LayerNormalization(epsilon=1e-6, name="decoder_norm")
        self.decoder_pred = layers.Dense(c.patch_size**2 * c.channels, name="decoder_pred")  # pixels of a patch
        table = sincos_2d(c.grid_size, decoder_width)  # fixed, as in the paper's decoder
        self.decoder_positions = np.concatenate([np.zeros((self.prefix, decoder_width), "float32"), table])[None]

    def build(self, input_shape=None):
        c, d = self.vit.config, self.decoder_width
        self.mask_token = self.add_weight(shape=(1, 1, d), initializer=keras.initializers.RandomNormal(stddev=0.02),
                                          name="mask_token")
        self.decoder_embed.build((None, None, c.hidden_size))
        for block in self.decoder_blocks:
            block.build((None, self.prefix + c.num_patches, d))
        self.decoder_norm.build((None, None, d))
        self.decoder_pred.build((None, None, d))
        self.built = True

    def encode(self, images, training=None):
        """The ViT's embed and encode stages on a random ``visible`` patches of each image, each with its own
        position (and the class token with its own): returns the encoder's output tokens (B, prefix + visible, D) and
        ``order`` (B, N), the patches shuffled (the first ``visible`` are kept)."""
        noise = keras.random.uniform((ops.shape(images)[0], self.vit.config.num_patches), seed=self.seed_generator)
        order = ops.argsort(noise, axis=-1)  # a random order of the patches, per image
        tokens = self.vit.embed(images, training=training, keep=order[:, : self.visible])  # (B, prefix + visible, D)
        return self.vit.encode(tokens, training=training), order

    def call(self, images, training=None):
        n = self.vit.config.num_patches
        x, order = self.encode(images, training)
        y = self.decoder_embed(x)  # (B, prefix + visible, d)
        hidden = ops.broadcast_to(self.mask_token, (ops.shape(y)[0], n - self.visible, self.decoder_width))
        shuffled = ops.concatenate([y[:, self.prefix:], hidden], axis=1)  # patches in the order of `order`
        restore = ops.argsort(order, axis=-1)  # back to grid order
        y = ops.concatenate([y[:, : self.prefix], _gather(shuffled, restore)], axis=1)
        y = ops.add(y, self.decoder_positions)  # a NumPy table: `+` fails on PyTorch tensors that need gradients
        for block in self.decoder_blocks:
            y = block(y, training=training)
        pixels = self.decoder_pred(self.decoder_norm(y)[:, self.prefix:])  # (B, N, P·P·C)
        mask = ops.cast(restore >= self.visible, pixels.dtype)  # (B, N): 1 where the patch was hidden
        return pixels, mask

    def targets(self, images):
        """What the decoder must predict: every patch's pixels (B, N, P·P·C), normalised per patch with
        ``norm_pix_loss``."""
        target = extract_patches(images, self.vit.config.patch_size)
        if self.norm_pix_loss:
            mean, var = ops.mean(target, -1, keepdims=True), ops.var(target, -1, keepdims=True)
            target = (target - mean) / ops.sqrt(var + 1e-6)
        return target

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean squared error over the hidden patches only (Sec. 3 of He et al., "Reconstruction target")."""
        pixels, mask = y_pred
        per_patch = ops.mean(ops.square(ops.subtract(pixels, self.targets(x))), axis=-1)  # (B, N)
        return ops.divide(ops.sum(ops.multiply(per_patch, mask)), ops.sum(mask))

    def reconstruct(self, images):
        """For pictures: (masked, reconstructed) images as NumPy arrays. ``masked``: hidden patches set to 0;
        ``reconstructed``: the visible patches as they are, the hidden ones as predicted (un-normalised with the
        patch's true mean and spread when ``norm_pix_loss``)."""
        c = self.vit.config
        pixels, mask = (ops.convert_to_numpy(t) for t in self(images, training=False))
        true = ops.convert_to_numpy(extract_patches(images, c.patch_size))
        if self.norm_pix_loss:
            pixels = pixels * np.sqrt(true.var(-1, keepdims=True) + 1e-6) + true.mean(-1, keepdims=True)
        hidden = mask[..., None] > 0
        masked = np.where(hidden, 0.0, true)
        filled = np.where(hidden, np.clip(pixels, 0, 1), true)
        as_images = lambda p: ops.convert_to_numpy(patches_to_images(p, c.image_size, c.patch_size))  # noqa: E731
        return as_images(masked), as_images(filled)

    def get_config(self):
        return {**super().get_config(), "vit": keras.saving.serialize_keras_object(self.vit),
                "mask_ratio": self.mask_ratio, "decoder_width": self.decoder_width, "decoder_depth": self.decoder_depth,
                "decoder_heads": self.decoder_heads, "norm_pix_loss": self.norm_pix_loss, "seed": self.seed}


def pretrain(mae, images, steps=200, batch_size=64, learning_rate=3e-3, weight_decay=0.05, seed=0, callbacks=()):
    """Pre-train ``mae`` on ``images`` (no labels): ``steps`` steps of ``batch_size`` images with AdamW, a tenth of
    the steps of linear warm-up, then cosine decay, no gradient clipping (the digits recipe's optimiser,
    :func:`vitlib.training.fitting.step_budget`, trained by :func:`vitlib.training.fitting.train_budget`).
    Returns the loss of each tenth of the steps (the mean squared error on hidden patches)."""
    from vitlib.training.fitting import step_budget, train_budget

    config, steps_per_epoch = step_budget(steps, batch_size, learning_rate=learning_rate, weight_decay=weight_decay,
                                          clip_norm=None)
    history = keras.callbacks.History()
    head = mae.vit.classifier
    head.trainable = False  # the decoder replaces the head: nothing to learn there without labels
    try:
        if not mae.built:  # its optimiser may be built at compile time, for every variable the decoder has
            mae.build()
        train_budget(mae, images, config, seed, steps_per_epoch, callbacks=[*callbacks, history], own_loss=True,
                     steps_per_execution=1 if keras.backend.backend() == "torch" else steps_per_epoch)
    finally:
        head.trainable = True
    return history.history["loss"]
