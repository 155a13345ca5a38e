"""The notebooks' exercises, by notebook: ``"NN.name"`` -> :class:`~vitlib.exercises.questions.Exercise` (one right
answer) or :class:`~vitlib.exercises.questions.Choice` (multiple choice, explained per option). Checked with
``vitlib.check``."""
import math

import numpy as np

from vitlib.costs import parameter_count
from vitlib.exercises.questions import Choice, Exercise
from vitlib.patches import extract_patches


def _near(value, tolerance):
    def close(answer):
        try:
            return abs(float(answer) - value) <= tolerance
        except (TypeError, ValueError):
            return False
    close.value = value  # an answer it accepts (the tests try each listed mistake)
    return close


def _shape(answer):
    if isinstance(answer, str):  # "(128, 64)" typed in quotes
        answer = answer.strip().strip("()[]").split(",")
    try:
        return tuple(int(n) for n in answer)
    except (TypeError, ValueError):
        return None


def _shape_is(*shapes):
    def matches(answer):
        return _shape(answer) in shapes
    matches.value = shapes[0]  # an answer it accepts (the tests try each listed mistake)
    return matches


def _patch_inputs():
    rng = np.random.default_rng(7)
    return [(rng.random((2, 32, 32, 3), dtype="float32"), 8), (rng.random((1, 12, 8, 1), dtype="float32"), 4)]


def _attention_reference(q, k, v):
    scores = q @ k.T / np.sqrt(q.shape[-1])
    w = np.exp(scores - scores.max(-1, keepdims=True))
    return (w / w.sum(-1, keepdims=True)) @ v


def _attention_inputs():
    rng = np.random.default_rng(3)
    return [tuple(rng.normal(size=(n, d)) for _ in range(3)) for n, d in ((4, 8), (7, 16))]


def _dense_to_conv_inputs():
    rng = np.random.default_rng(5)
    return [(rng.normal(size=(p * p * c, d)), p, c) for p, c, d in ((4, 3, 8), (3, 2, 5))]


def _conv_kernel_inputs():
    rng = np.random.default_rng(9)
    return [(rng.normal(size=shape),) for shape in ((8, 1, 4, 4), (5, 3, 2, 2))]  # (D, C, P, P)


S16_AT_384 = parameter_count(variant="S/16", image_size=384, num_classes=1000)
S16_AT_224 = parameter_count(variant="S/16", image_size=224, num_classes=1000)
BLOCK_B = 2 * 768 + 4 * (768 * 768 + 768) + 2 * 768 + 768 * 3072 + 3072 + 3072 * 768 + 768

EXERCISES = {
    # 01 · Images as words
    "01.tokens": Exercise(
        "How many tokens does a 384x384 image give with 16x16 patches?", 576,
        ("Count the patches along one side, then along the other, and multiply.",),
        "384 / 16 = 24 patches per side, so a 24 x 24 grid: 576 patch tokens (577 once the class token is added).",
        mistakes=((1728, "That is 576 x 3: you counted each colour channel separately, but a token holds all three."),
                  (24, "That is one side of the grid; the image has 24 patches in each direction."),
                  (577, "That includes the class token, which the model adds later; count the patches only."),
                  (588, "588 is the source blog's count for 224x224: 196 patches x 3, each colour channel counted "
                         "separately; here too a token holds all three channels."))),
    "01.token_length": Exercise(
        "How many values are in one token of a 32x32 RGB image cut into 4x4 patches?", 48,
        ("A token holds every pixel of its patch, in every colour channel.",),
        "A 4x4 patch has 16 pixels of 3 channels: 4 x 4 x 3 = 48 values.",
        mistakes=((16, "That is one colour channel: a token holds all C = 3 channels of its 16 pixels."),
                  (64, "That is the number of patches (8 x 8), not the length of one token."),
                  (1024, "That is the number of pixels of the whole image."))),
    "01.patchify": Exercise(
        "Write patchify(images, p): (B, H, W, C) -> (B, N, p*p*C), in the order of tf.image.extract_patches.",
        extract_patches,
        ("Reshape so that each patch's rows and columns get axes of their own: (B, H/p, p, W/p, p, C).",
         "Then bring the two patch axes next to each other with a transpose, and reshape to (B, -1, p*p*C)."),
        "x = images.reshape(B, H // p, p, W // p, p, C); x = x.transpose(0, 1, 3, 2, 4, 5) "
        "(grid row, grid column, then the patch's own rows, columns, channels); return x.reshape(B, -1, p * p * C).",
        inputs=_patch_inputs),
    "01.why_order": Choice(
        "The tokens are read row by row (raster order). A ViT with learned position embeddings, trained from scratch, "
        "is instead given its patches column by column. What changes?",
        {"a": ("It can no longer learn: the image's rows are broken up.",
               "Every patch is still there, each with a position embedding of its own; the model learns from those."),
         "b": ("Nothing essential: the order is a convention, and the learned position embeddings learn whatever "
               "layout they are given.",
               "Yes: attention compares all tokens with all others, so there is no 'next' token to rely on; only the "
               "position embeddings know where a patch was, and they are learned."),
         "c": ("It becomes invariant to rotating the image by 90 degrees.",
               "The pixels inside each patch are still in rows, and the position embeddings still tell places apart.")},
        "b", "b: a fixed reordering of the tokens is undone by learning the position embeddings (for a fixed order)."),
    # 02 · Patch embeddings
    "02.embedding_params": Exercise(
        "How many parameters has the patch embedding of ViT-L/14 on RGB images (D = 1024)?",
        14 * 14 * 3 * 1024 + 1024,
        ("A Dense layer from P*P*C inputs to D outputs has a weight per (input, output) pair, plus one bias per "
         "output.",),
        "P*P*C = 14*14*3 = 588 inputs, D = 1024 outputs: 588 x 1024 + 1024 = 603,136.",
        mistakes=((14 * 14 * 3 * 1024, "That is the kernel only: add the D = 1024 biases."),
                  (16 * 16 * 3 * 768 + 768, "That is ViT-B/16's (P = 16, D = 768); ViT-L/14 has P = 14, D = 1024."),
                  (14 * 14 * 1024 + 1024, "You left out the colour channels: each patch has 14 x 14 x 3 inputs."))),
    "02.channels_first_to_conv": Exercise(
        "Some code flattens each patch channels first, (channel, row, column), as PyTorch's unfold does. Write "
        "to_conv(kernel, p, c): turn a Dense kernel (c*p*p, D) whose rows follow that order into the equal Conv2D "
        "kernel (p, p, c, D).",
        lambda k, p, c: k.reshape(c, p, p, -1).transpose(1, 2, 0, 3),
        ("Undo the flattening first: reshape the rows into the axes they came from, in their order: (c, p, p, D).",
         "Then move the channel axis to third place, behind the patch's rows and columns: "
         "np.transpose(..., (1, 2, 0, 3))."),
        "kernel.reshape(c, p, p, -1).transpose(1, 2, 0, 3): unflatten in the order the values were flattened, then "
        "put the axes in Conv2D's order (rows, columns, channels, D). With (row, column, channel) rows, as in this "
        "notebook, the reshape alone would do.",
        mistakes=((lambda k, p, c: k.reshape(p, p, c, -1),
                   "That is the reshape for rows in (row, column, channel) order, as in the notebook; here the channel "
                   "is the slowest-changing index of each row."),
                  (lambda k, p, c: k.reshape(c, p, p, -1).transpose(2, 1, 0, 3),
                   "Close: the channels are in the right place, but rows and columns are swapped (a transposed "
                   "filter).")),
        inputs=_dense_to_conv_inputs),
    "02.why_conv": Choice(
        "Why is a Conv2D with kernel size = stride = P the same model as the paper's 'flatten each patch, "
        "multiply by E'?",
        {"a": ("Every convolution is a matrix product in disguise.",
               "True in general, but not the reason: a convolution with stride 1 mixes overlapping windows, which "
               "the paper's patch embedding does not."),
         "b": ("With stride = kernel size the windows do not overlap: each output is one patch's pixels times the "
               "same weights, which is x_p E.",
               "Yes: the kernel is E reshaped to (P, P, C, D), and the notebook proves the outputs equal."),
         "c": ("It is not the same: the Conv2D adds locality the paper's model does not have.",
               "Each output sees exactly one patch in both, so neither has more locality than the other.")},
        "b", "b: non-overlapping windows make the convolution a per-patch linear map, the paper's E."),
    # 03 · Position embeddings
    "03.position_params": Exercise(
        "How many parameters has the learned position embedding of ViT-B/16 at 384x384 (class token included)?",
        (24 * 24 + 1) * 768,
        ("One vector of D = 768 values per token. How many tokens, the class token included?",),
        "384 / 16 = 24 per side, 576 patches + 1 class token = 577 positions, each a 768-vector: 443,136.",
        mistakes=((24 * 24 * 768, "You left out the class token's row: it has a position vector too."),
                  (197 * 768, "That is the table at 224x224; at 384x384 the grid is 24 x 24."))),
    "03.no_position": Choice(
        "A ViT without position embeddings sees its patches as an unordered set. Which task could it still solve "
        "perfectly?",
        {"a": ("Say in which quadrant of the image the object lies.",
               "That needs the patches' places, which a set does not have: the notebook's shuffle test shows it."),
         "b": ("Count how many patches contain something red.",
               "Yes: a count is the same for any order of the patches, so a model of the set can compute it."),
         "c": ("Tell whether the left half of the image mirrors the right half.",
               "That needs to pair each patch with the one at its mirrored place: positions again.")},
        "b", "b: without positions the model is a function of the set of patches; counting ignores order."),
    # 04 · The transformer encoder
    "04.attention": Exercise(
        "Write attention(q, k, v) for one head: q, k, v of shape (N, d), returning (N, d).",
        _attention_reference,
        ("Scores first: every query against every key, scaled by 1 / sqrt(d); then a softmax over the keys.",
         "weights = softmax(q @ k.T / sqrt(d)) along the last axis (subtract the row maximum first), then "
         "weights @ v."),
        "s = q @ k.T / np.sqrt(d); w = np.exp(s - s.max(-1, keepdims=True)); w /= w.sum(-1, keepdims=True); "
        "return w @ v.",
        inputs=_attention_inputs),
    "04.block_params": Exercise(
        "How many parameters has one encoder block of ViT-B (D = 768, MLP 3072)?", BLOCK_B,
        ("Two LayerNorms, four D x D projections (Q, K, V and the output), and a two-layer MLP; all with biases.",),
        "LayerNorms 2 x (768 + 768); attention 4 x (768 x 768 + 768); MLP 768 x 3072 + 3072 + 3072 x 768 + 768: "
        "7,087,872 in all.",
        mistakes=((BLOCK_B - 4 * 768 - 3072 - 768, "You left out the biases of the projections and of the MLP."),
                  (BLOCK_B - 4 * 768, "You are 3,072 short: the LayerNorms' scales and biases (2 x 2 x 768), or the "
                                      "four attention projections' biases (4 x 768)?"))),
    "04.why_scale": Choice(
        "Why are the attention scores divided by sqrt(d) before the softmax?",
        {"a": ("To give every output vector length 1.", "The outputs are weighted means of values; nothing makes "
               "their length 1."),
         "b": ("The spread (standard deviation) of a dot product of two random d-dimensional vectors grows like "
               "sqrt(d); unscaled, large d makes the softmax nearly one-hot and its gradients vanish.",
               "Yes: dividing by sqrt(d) keeps the scores' spread about 1 whatever the head size."),
         "c": ("To make attention symmetric between two tokens.", "Q and K are different projections, so the scores "
               "are not symmetric, scaled or not.")},
        "b", "b: the scale keeps the softmax's inputs of order 1 for any head width (Vaswani et al. 2017)."),
    # 05 · The Vision Transformer
    "05.tokens_384": Exercise(
        "How many tokens, the class token included, does ViT-B/16 process when fine-tuned at 384x384?", 577,
        ("Count the patches of a 384x384 image with 16x16 patches, then add the class token.",),
        "24 x 24 = 576 patches + 1 class token = 577 tokens (197 at 224x224).",
        mistakes=((576, "Those are the patches; the class token is a token too."),
                  (197, "That is at 224x224; at 384x384 the grid is 24 x 24."))),
    "05.params_s16_384": Exercise(
        f"ViT-S/16 has {S16_AT_224:,} parameters at 224x224 with 1000 classes. How many has it at 384x384?",
        S16_AT_384,
        ("Which weights depend on the number of tokens? Patch embedding, attention and MLP do not.",),
        f"Only the position table grows: (577 - 197) rows x 384 = {S16_AT_384 - S16_AT_224:,} more, "
        f"{S16_AT_384:,} in all.",
        mistakes=((S16_AT_224, "Something does grow: the position table has one row per token."),)),
    "05.gap_tokens": Choice(
        'Built with pool="gap", how many tokens does ViT-B/16 carry through its encoder at 224x224?',
        {"a": ("197", "With mean pooling the model prepends no class token: that happens only for pool=\"token\"."),
         "b": ("196", "Yes: only the 14 x 14 patch tokens; their mean after the last LayerNorm is the image's vector."),
         "c": ("1", "The mean is taken after the encoder, not before: all 196 patch tokens go through every block.")},
        "b", "b: 196 patch tokens and no class token; the mean over them replaces the class token's state (Eq. 4)."),
    # 06 · Training
    "06.warmup_lr": Exercise(
        "With a linear warm-up of 10 steps to a peak learning rate of 1e-3, what learning rate does the schedule give "
        "at step 1, after one step?", 1e-4,
        ("During warm-up the rate grows in equal steps from 0 to the peak.",),
        "peak x step / warmup_steps = 1e-3 x 1 / 10 = 1e-4.",
        mistakes=((1e-3, "That is the peak, reached after the 10th step."),
                  (0, "That is the rate at step 0, before the first step."))),
    "06.smoothing_true_class": Exercise(
        "CIFAR-100 has 100 classes. With label smoothing 0.1, what probability does the smoothed target give the true "
        "class?", _near(0.901, 1e-6),
        ("Smoothing takes 0.1 of the mass from the true class and spreads it evenly over all 100 classes.",
         "Every class, the true one included, gets 0.1 / 100; the true class keeps 0.9 besides."),
        "0.9 + 0.1 / 100 = 0.901 (each of the 99 others gets 0.001). With 10 classes it is 0.91, as in this notebook.",
        mistakes=((_near(0.9, 1e-9), "The true class also gets its share of the spread mass: 0.1 / 100 more."),
                  (_near(0.91, 1e-9), "That is the figure for 10 classes; here the 0.1 is spread over 100."),
                  (_near(0.001, 1e-9), "That is what each wrong class gets; the true class keeps 0.9 on top of it."))),
    "06.floor_02": Exercise(
        "Above, with label smoothing 0.1 over 10 classes, the training loss cannot fall below 0.50. Where is the "
        "floor with label smoothing 0.2 (to 2 decimals)?", _near(0.8669, 0.006),
        ("The floor is the entropy of the smoothed target: -sum over classes of p ln p.",
         "With 0.2 over 10 classes the true class gets 0.8 + 0.02 = 0.82 and each of the 9 others 0.02."),
        "-(0.82 ln 0.82 + 9 x 0.02 ln 0.02) = 0.163 + 0.704 = 0.87: more smoothing, a higher floor.",
        mistakes=((_near(-math.log(0.82), 0.006), "That is only the true class's term, -ln 0.82; the target also "
                   "puts 0.02 on each of the 9 other classes, and they add to the entropy."),
                  (_near(0.50, 0.006), "That is the floor for 0.1; recompute the target for 0.2 first."))),
    "06.why_test_once": Choice(
        "A learner tries five learning rates, tests each model on the test split and reports the best test "
        "accuracy. What is wrong with that figure?",
        {"a": ("Nothing: the best model is the one to report.", "The choice itself used the test images, so the "
               "figure is no longer a fresh measurement of the chosen model."),
         "b": ("The test split chose the model, so the figure is biased upwards: choose on validation, then test the "
               "chosen model once.",
               "Yes: the best of five noisy measurements is higher than the model's true accuracy, on average."),
         "c": ("Five learning rates are too few.", "More tries make it worse: the best of more noisy values is even "
               "more optimistic.")},
        "b", "b: whatever the test split helps choose is no longer tested by it; tune on validation only."),
    # 07 · What the ViT learns
    "07.uniform_distance": Exercise(
        "A head attends uniformly to all 9 patches of a 3x3 grid of 16-pixel patches. Its mean attention "
        "distance in pixels (to 2 decimals)?", _near(23.25298, 0.006),
        ("Average the distance over all 81 (query, key) pairs, the 9 pairs of a patch with itself included.",),
        "np.mean(vitlib.inspection.analysis.patch_distances((3, 3), 16)) = 23.25 pixels.",
        mistakes=((_near(26.16, 0.01), "You left out the 9 pairs of a patch with itself (distance 0): uniform "
                   "attention includes them."),)),
    "07.rollout_self": Exercise(
        "One layer, one head, residual counted as half identity: the class token attends only to patch 5. "
        "What share of the class token's rollout row stays on the class token?", 0.5,
        ("Rollout uses 0.5 * A + 0.5 * I per layer.",),
        "The attention row puts 1 on patch 5, the identity 1 on the class token: halved, 0.5 each.",
        mistakes=((0, "The residual connection keeps half of the class token's own state (the identity part)."),
                  (1, "That counts only the identity; the attention half goes to patch 5."))),
    "07.why_control": Choice(
        "Why does every figure of this notebook show the untrained model beside the trained one?",
        {"a": ("The paper shows untrained models too.", "Its Figure 7 does not; the control is ours."),
         "b": ("A pattern can come from the method, the architecture or chance as well as from training; only what "
               "goes beyond the untrained control was learned.",
               "Yes: e.g. attention distances are not zero at initialisation; the change is what training did."),
         "c": ("The untrained model is the best baseline accuracy.", "Its accuracy is chance; the control is for the "
               "analysis, not the accuracy.")},
        "b", "b: a control separates what training learned from what the measurement shows anyway."),
    # 08 · The paper's experiments
    "08.new_positions": Exercise(
        "ViT-B/16 trained at 224x224 is fine-tuned at 480x480. How many rows has its position embedding table "
        "then, the class token's included?", 30 * 30 + 1,
        ("The patch size stays 16, so the grid grows. Count the patches of a 480x480 image and add the class token.",),
        "480 / 16 = 30 per side: 900 patches + 1 class token row, which is kept as it is: 901.",
        mistakes=((900, "The class token's row stays in the table."), (197, "That is the table at 224x224."))),
    "08.repeats": Exercise(
        "A run takes 100 steps of 64 images from 129 training images. How many times does it see each image, on "
        "average (to 1 decimal)?", _near(100 * 64 / 129, 0.051),
        ("How many images does the run take in all? Divide by the number of distinct images.",),
        "100 x 64 = 6,400 images taken from 129: each seen 49.6 times on average.",
        mistakes=((_near(100 / 129, 0.01), "That is steps per image; each step takes 64 images."),)),
    "08.why_2d": Choice(
        "Why is the position table interpolated in 2-D for a new resolution, not along the token order in 1-D?",
        {"a": ("1-D interpolation is slower.", "Both are cheap; speed is not the point."),
         "b": ("In the flattened table, neighbours are neighbours in the image only within a row; 2-D interpolation "
               "keeps each position's neighbours above and below too.",
               "Yes: the table is a grid of vectors, and resizing it as a grid keeps its layout."),
         "c": ("1-D interpolation would change the class token's vector.", "Both keep the class token's row apart.")},
        "b", "b: the positions form a 2-D grid; only a 2-D resize keeps vertical neighbours together."),
    # 09 · Feeding, and PyTorch
    "09.patch_linear_weight": Exercise(
        "The Keras ViT of this notebook embeds patches with a Conv2D kernel of shape (4, 4, 1, 64). Written as the "
        "paper's x_p E instead, an nn.Linear applied to each flattened patch: what shape has that nn.Linear's "
        "weight? (A tuple.)", _shape_is((64, 16)),
        ("How many values does one flattened patch hold, and how many come out?",
         "nn.Linear stores its weight as (out_features, in_features)."),
        "(64, 16): a flattened 4x4 grey patch has 16 values and comes out as 64; Keras' Dense kernel would be "
        "(16, 64), and nn.Linear stores the transpose.",
        mistakes=((_shape_is((16, 64)), "That is E as a Keras Dense kernel, (in, out); nn.Linear stores "
                   "(out, in)."),
                  (_shape_is((64, 1, 4, 4), (64, 4, 4, 1)), "That is a convolution's weight; an "
                   "nn.Linear's is 2-D: (out_features, in_features)."),
                  (_shape_is((64, 48)), "The images are grey: one channel, so a 4x4 patch has 16 values."))),
    "09.conv_kernel": Exercise(
        "Write torch_conv_to_keras(weight): an nn.Conv2d weight (D, C, P, P) -> the Keras Conv2D kernel (P, P, C, D) "
        "of the same convolution.",
        lambda w: np.transpose(w, (2, 3, 1, 0)),
        ("Only the channel axes move; the patch's rows and columns keep their order.",
         "np.transpose(weight, axes) puts axis axes[i] at place i: the rows (axis 2) first, then the columns (3)."),
        "np.transpose(weight, (2, 3, 1, 0)): rows, columns, input channels C, output channels D.",
        inputs=_conv_kernel_inputs),
    "09.shuffle_after_batch": Exercise(
        "A pipeline is ds.batch(64).shuffle(100). Does a batch hold a different set of images from one epoch to the "
        "next? Answer 'yes' or 'no'.", "no",
        ("shuffle() shuffles the elements it receives; after batch(), what is one element?",),
        "No: after batch() each element is a whole batch, so shuffle() only changes the order of the batches.",
        mistakes=(("yes", "shuffle() after batch() moves whole batches around; their contents stay together."),)),
    "09.prefetch_step": Exercise(
        "Loading a batch takes 50 ms, a training step on it 20 ms, one CPU core each. With prefetch, about how many "
        "ms does a step take once training runs?", _near(50, 3),
        ("With prefetch the next batch is loaded while the model trains on this one.",),
        "About 50 ms: loading and training overlap, so the slower of the two (loading) sets the pace.",
        mistakes=((_near(70, 3), "That is without prefetch, loading and training one after the other."),
                  (_near(20, 3), "The step waits for its batch: the model cannot run faster than batches arrive."))),
    "09.why_backend": Choice(
        "When would you run a vitlib model with KERAS_BACKEND=torch rather than TensorFlow?",
        {"a": ("To get better accuracy.", "The same weights give the same logits on every backend (to 1e-5 here)."),
         "b": ("To use the model inside a PyTorch program or with PyTorch tools, with the same weights and outputs.",
               "Yes: the backend changes where the model runs, not what it computes."),
         "c": ("Because TensorFlow cannot load .keras files.", "It can; the file loads on all three backends.")},
        "b", "b: pick the backend for its surroundings (tools, deployment, speed on your hardware)."),
    # 10 · After the paper
    "10.tokens_at_3": Exercise(
        "The notebook's ViT sees 24x24 digits. Run at 3x3 patches, how many tokens enter its first block, the class "
        "token included?", 8 * 8 + 1,
        ("How many 3x3 patches tile a 24x24 image? Then add the class token.",),
        "24 / 3 = 8 per side: 64 patches + 1 class token = 65 tokens (against 17 at its own 6x6 patches).",
        mistakes=((64, "The class token is a token too."), (17, "That is at the trained 6x6 patches."))),
    "10.naive_scale": Exercise(
        "A 4x4 patch-embedding kernel is resized like an image (naive bilinear) to 8x8 and applied to the same flat "
        "patch resized to 8x8. By what factor does the token grow?", 4,
        ("The resized kernel has as many values as before per unit area, and there are more of them: count them.",),
        "The flat kernel and patch stay flat, and the dot product sums 64 products instead of 16: (8/4)² = 4 times "
        "larger. PI-resize keeps the factor at 1.",
        mistakes=((2, "That is the side ratio; the token sums over the patch's area."),
                  (1, "That is PI-resize; the naive kernel keeps its values, so the sum grows."))),
    "10.tokens_after_merging": Exercise(
        "A ViT with 65 tokens (64 patches and the class token) and 4 blocks merges r = 8 tokens in every block. How "
        "many tokens leave the last block?", 65 - 4 * 8,
        ("Every block, the last one included, removes r tokens.",),
        "65 - 4 x 8 = 33 tokens: 32 patch tokens holding 64 patches between them, and the class token.",
        mistakes=((57, "That is after one block; every block merges r."), (41, "The last block merges too."),
                  (32, "The class token is never merged: count it."))),
    "10.encoder_sees": Exercise(
        "The masked autoencoder hides 75 % of the 16 patches of a 24x24 digit (6x6 patches). How many tokens does the "
        "encoder process, the class token included?", 5,
        ("The encoder sees only the visible patches. How many are left, and what does the ViT add to them?",),
        "16 x 25 % = 4 visible patches + 1 class token = 5 tokens: the encoder's cost is a fraction of the full 17.",
        mistakes=((4, "The class token goes through the encoder too."),
                  (13, "The hidden patches never enter the encoder: only the decoder sees mask tokens."))),
    "10.why_pi": Choice(
        "Why does a naive (bilinear) resize of the patch-embedding kernel hurt more than PI-resize?",
        {"a": ("Bilinear interpolation blurs the kernel's fine detail.",
               "Some blur, but PI-resize smooths too; the main effect is the size of the tokens."),
         "b": ("The resized kernel sums over more pixels, so every token's size changes with the patch area; the "
               "layers after it were trained on tokens of the old size. PI-resize keeps each token what it was.",
               "Yes: with P* > P, <Bx, Bw> is about (P*/P)² <x, w>, while <Bx, w*> = <x, w> exactly."),
         "c": ("The position embeddings are resized differently for the two.",
               "Both use the same bilinear resize of the position table; only the kernel differs.")},
        "b", "b: naive resizing rescales every token by about the patch area ratio; PI-resize keeps the tokens."),
    "10.why_mask_most": Choice(
        "BERT masks 15 % of its words, the masked autoencoder 75 % of the patches. Why so many?",
        {"a": ("Neighbouring patches are so alike that with few hidden, interpolating the neighbours fills them in; "
               "hiding most forces the model to learn what digits look like.",
               "Yes: images are redundant, words are not; a hard task teaches more (Sec. 1 of He et al.)."),
         "b": ("To make the decoder's job easier.", "Hiding more makes the reconstruction harder, not easier."),
         "c": ("Because 75 % is needed for the loss to be defined.",
               "The loss is defined for any share hidden; 75 % was the best in the paper's Fig. 5.")},
        "a", "a: with most patches hidden, copying neighbours no longer works, and the encoder is cheap (a quarter "
        "of the tokens)."),
}
