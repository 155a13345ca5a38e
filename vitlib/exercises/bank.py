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
                         "separately; here too a token holds all three channels.")),
        why="A token is one whole patch, all three channels in it, so there are as many tokens as cells in the 24 x 24 "
            "patch grid."),
    "01.token_length": Exercise(
        "How many values are in one token of a 32x32 RGB image cut into 4x4 patches?", 48,
        ("A token holds every pixel of its patch, in every colour channel.",),
        "A 4x4 patch has 16 pixels of 3 channels: 4 x 4 x 3 = 48 values.",
        mistakes=((16, "That is one colour channel: a token holds all C = 3 channels of its 16 pixels."),
                  (64, "That is the number of patches (8 x 8), not the length of one token."),
                  (1024, "That is the number of pixels of the whole image.")),
        why="A token is its patch flattened: every one of its 16 pixels with all 3 colour values; the image size only "
            "sets how many tokens there are."),
    "01.patchify": Exercise(
        "Write patchify(images, p): (B, H, W, C) -> (B, N, p*p*C), in the order of tf.image.extract_patches.",
        extract_patches,
        ("Reshape so that each patch's rows and columns get axes of their own: (B, H/p, p, W/p, p, C).",
         "Then bring the two patch axes next to each other with a transpose, and reshape to (B, -1, p*p*C)."),
        "x = images.reshape(B, H // p, p, W // p, p, C); x = x.transpose(0, 1, 3, 2, 4, 5) "
        "(grid row, grid column, then the patch's own rows, columns, channels); return x.reshape(B, -1, p * p * C).",
        inputs=_patch_inputs,
        why="Once a patch's own rows and columns sit behind the grid's, the last reshape reads the patches row by row, "
            "each flattened as (row, column, channel): tf.image.extract_patches' order."),
    "01.why_order": Choice(
        "The tokens are read row by row (raster order). A ViT with learned position embeddings, trained from scratch, "
        "is instead given its patches column by column, always in that same order. What changes?",
        {"a": ("It learns worse: a patch's right-hand neighbour is no longer next to it in the sequence, so attention "
               "has a harder time relating the two.",
               "Attention compares every token with every other in one step, so being next in the sequence is no "
               "help; for the model, nearness exists only through the position embeddings."),
         "b": ("Nothing; nor would reading each image in a new random order.",
               "A fixed order is a convention the learned table adapts to; a new order per image would tie each row "
               "of the table to a different place every time, and the model could no longer tell places apart."),
         "c": ("Nothing essential: each place still gets a position embedding of its own, which is learned.",
               "Attention treats its input as a set; only the position embeddings say where a patch came from, and a "
               "learned table learns the meaning of its rows for any fixed order."),
         "d": ("It becomes blind to 90-degree rotations, since columns now play the part of rows.",
               "The order of the tokens is not a rotation of the image: the pixels inside each patch are laid out as "
               "before, and the table still tells the places apart, so a rotated image still looks different.")},
        "c", "c: a fixed reordering of the tokens is undone by learning the position embeddings (for that order)."),
    # 02 · Patch embeddings
    "02.embedding_params": Exercise(
        "How many parameters has the patch embedding of ViT-L/14 on RGB images (D = 1024)?",
        14 * 14 * 3 * 1024 + 1024,
        ("A Dense layer from P*P*C inputs to D outputs has a weight per (input, output) pair, plus one bias per "
         "output.",),
        "P*P*C = 14*14*3 = 588 inputs, D = 1024 outputs: 588 x 1024 + 1024 = 603,136.",
        mistakes=((14 * 14 * 3 * 1024, "That is the kernel only: add the D = 1024 biases."),
                  (16 * 16 * 3 * 768 + 768, "That is ViT-B/16's (P = 16, D = 768); ViT-L/14 has P = 14, D = 1024."),
                  (14 * 14 * 1024 + 1024, "You left out the colour channels: each patch has 14 x 14 x 3 inputs.")),
        why="E maps each flattened patch of P*P*C values to D values, one weight per (input, output) pair, and adds D "
            "biases; the image size does not enter."),
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
        inputs=_dense_to_conv_inputs,
        why="A flattened axis can only be split in the order it was flattened, channel first here; after that, moving "
            "the axes into Conv2D's (row, column, channel, D) changes no weight, only where it sits."),
    "02.why_conv": Choice(
        "Why is a Conv2D with kernel size = stride = P the same model as the paper's 'flatten each patch, "
        "multiply by E'?",
        {"a": ("With stride P the windows are exactly the patches, and each output is one patch's pixels times the "
               "filters: x_p E.",
               "A convolution applies the same weights to every window; when the windows tile the image without "
               "overlap, that is E applied to each patch, with E reshaped to (P, P, C, D)."),
         "b": ("A convolution shares its weights across positions and a Dense layer does not, so the convolution is a "
               "special case into which E can be copied.",
               "The Dense layer shares its weights too: the same E is applied to every token. Both share; what makes "
               "them equal is that the convolution's windows are exactly the patches."),
         "c": ("It is an approximation: the filter slides, so neighbouring patches leak into each output a little, "
               "which is why the notebook compares with a tolerance of 1e-4.",
               "With stride = kernel size no window crosses a patch boundary. The 1e-4 allows for float32 round-off: "
               "the two routes add the same products in another order."),
         "d": ("Any convolution is a Dense layer on flattened windows, so a stride of 1 would do as well.",
               "The first half is true, but with stride 1 the windows overlap and there are far more of them (209 x "
               "209 instead of 14 x 14 at 224 pixels): not the paper's non-overlapping patches.")},
        "a", "a: non-overlapping windows make the convolution a per-patch linear map, the paper's E."),
    # 03 · Position embeddings
    "03.position_params": Exercise(
        "How many parameters has the learned position embedding of ViT-B/16 at 384x384 (class token included)?",
        (24 * 24 + 1) * 768,
        ("One vector of D = 768 values per token. How many tokens, the class token included?",),
        "384 / 16 = 24 per side, 576 patches + 1 class token = 577 positions, each a 768-vector: 443,136.",
        mistakes=((24 * 24 * 768, "You left out the class token's row: it has a position vector too."),
                  (197 * 768, "That is the table at 224x224; at 384x384 the grid is 24 x 24.")),
        why="The learned table holds one D-vector per token, so it grows with the grid: 24 x 24 patches and the class "
            "token at 384x384."),
    "03.no_position": Choice(
        "A ViT without position embeddings sees its patches as an unordered set (the shuffled photo gave the same "
        "logits). Which task could it still solve perfectly, in principle?",
        {"a": ("Say which quadrant holds the bright square: the square's patch looks unlike the noise around it.",
               "The square's patch looks the same in every quadrant, so spotting it says that a square is there, not "
               "where; without positions this notebook's model stayed near chance (27 %)."),
         "b": ("Tell whether the image is symmetric left to right.",
               "That needs each patch paired with the one at its mirrored place, and which place is which is exactly "
               "what a set of patches does not say."),
         "c": ("None that depends on the image: without positions, attention averages every image's patches into the "
               "same vector.",
               "Different images give different sets of patches, and so different outputs; only rearrangements of "
               "the same patches look alike to the model."),
         "d": ("Count how many of its patches contain something red.",
               "A count is the same for every order of the patches, so a function of the set, which this model is, "
               "can compute it.")},
        "d", "d: without positions the model is a function of the set of patches; a count ignores order."),
    # 04 · The transformer encoder
    "04.attention": Exercise(
        "Write attention(q, k, v) for one head: q, k, v of shape (N, d), returning (N, d).",
        _attention_reference,
        ("Scores first: every query against every key, scaled by 1 / sqrt(d); then a softmax over the keys.",
         "weights = softmax(q @ k.T / sqrt(d)) along the last axis (subtract the row maximum first), then "
         "weights @ v."),
        "s = q @ k.T / np.sqrt(d); w = np.exp(s - s.max(-1, keepdims=True)); w /= w.sum(-1, keepdims=True); "
        "return w @ v.",
        inputs=_attention_inputs,
        why="Each query scores every key, the softmax turns a row of scores into weights that sum to 1, and the output "
            "is that weighted mean of the values."),
    "04.block_params": Exercise(
        "How many parameters has one encoder block of ViT-B (D = 768, MLP 3072)?", BLOCK_B,
        ("Two LayerNorms, four D x D projections (Q, K, V and the output), and a two-layer MLP; all with biases.",),
        "LayerNorms 2 x (768 + 768); attention 4 x (768 x 768 + 768); MLP 768 x 3072 + 3072 + 3072 x 768 + 768: "
        "7,087,872 in all.",
        mistakes=((BLOCK_B - 4 * 768 - 3072 - 768, "You left out the biases of the projections and of the MLP."),
                  (BLOCK_B - 4 * 768, "You are 3,072 short: the LayerNorms' scales and biases (2 x 2 x 768), or the "
                                      "four attention projections' biases (4 x 768)?")),
        why="Every weight of a block acts on one token's D values and is shared by all tokens, so the count depends on "
            "D and the MLP width only, not on the number of tokens or heads."),
    "04.why_scale": Choice(
        "Why are the attention scores divided by sqrt(d) before the softmax?",
        {"a": ("So that each row of attention weights sums to 1.",
               "The softmax does that by itself, whatever the scale; the division changes how peaked the weights are, "
               "not what they sum to."),
         "b": ("To keep the output vectors from growing longer from layer to layer, as they would without it.",
               "The division acts on the scores, before the softmax; each output is a weighted mean of the values "
               "either way, so its size does not depend on the scale."),
         "c": ("Dot products spread more as d grows; unscaled, wide heads would make the softmax nearly one-hot.",
               "The dot product of two random d-dimensional vectors has a standard deviation of about sqrt(d); "
               "dividing keeps the scores' spread about 1 for any head width, so the softmax neither saturates nor loses its "
               "gradients.")},
        "c", "c: the scale keeps the softmax's inputs of order 1 for any head width (Vaswani et al. 2017)."),
    # 05 · The Vision Transformer
    "05.tokens_384": Exercise(
        "How many tokens, the class token included, does ViT-B/16 process when fine-tuned at 384x384?", 577,
        ("Count the patches of a 384x384 image with 16x16 patches, then add the class token.",),
        "24 x 24 = 576 patches + 1 class token = 577 tokens (197 at 224x224).",
        mistakes=((576, "Those are the patches; the class token is a token too."),
                  (197, "That is at 224x224; at 384x384 the grid is 24 x 24.")),
        why="The patch size stays 16, so a larger image gives a larger grid (24 x 24), and the class token comes on "
            "top."),
    "05.params_s16_384": Exercise(
        f"ViT-S/16 has {S16_AT_224:,} parameters at 224x224 with 1000 classes. How many has it at 384x384?",
        S16_AT_384,
        ("Which weights depend on the number of tokens? Patch embedding, attention and MLP do not.",),
        f"Only the position table grows: (577 - 197) rows x 384 = {S16_AT_384 - S16_AT_224:,} more, "
        f"{S16_AT_384:,} in all.",
        mistakes=((S16_AT_224, "Something does grow: the position table has one row per token."),),
        why="Every other weight is shared by all tokens; only the position table has a row per token, so only it grows "
            "with the image."),
    "05.gap_tokens": Choice(
        'Built with pool="gap", how many tokens does ViT-B/16 carry through its encoder at 224x224?',
        {"a": ("196: the patch tokens alone",
               "With mean pooling there is no class token to read, so none is prepended; the mean of the 196 patch "
               "tokens after the final LayerNorm becomes the image's vector."),
         "b": ("197: the patch tokens and the class token",
               'The class token is prepended only when the pool reads it, i.e. with pool="token".'),
         "c": ("1: the mean of the patch tokens",
               "The mean is taken after the encoder, not before: all 196 patch tokens go through every block.")},
        "a", "a: 196 patch tokens and no class token; their mean replaces the class token's state (Eq. 4)."),
    # 06 · Training
    "06.warmup_lr": Choice(
        "The recipe raises the learning rate from 0 to its peak (3e-3) over its first 3 of 20 epochs, the warm-up, "
        "then lets it decay along a cosine. What is the warm-up for?",
        {"a": ("To finish with small steps, so that the model settles into a minimum instead of bouncing around it.",
               "That is the cosine decay, at the other end of the run: by the last epoch it has brought the rate down "
               "to almost zero. The warm-up is about the start."),
         "b": ("To keep the first updates small, while the weights are random and AdamW's gradient statistics rest "
               "on only a few steps.",
               "The first updates are the least reliable, and full-size steps from a random start can throw a ViT "
               "into a region it trains badly from; small steps first let the statistics settle."),
         "c": ("To regularise, like label smoothing: fewer large steps leave the model less room to over-fit its "
               "training images.",
               "Over-fitting builds up late in training, and the warm-up covers only the first 3 epochs; the recipe's "
               "regularisers are weight decay and label smoothing. The warm-up is for a stable start."),
         "d": ("Nothing for the final model: it only makes the loss curve start more smoothly.",
               "The recipe keeps it because ViTs train badly with a large rate from the first step, and that shows "
               "in the trained model, not only in the first epochs of the curve.")},
        "b", "b: the warm-up keeps the first, least reliable updates small; the cosine decay handles the end."),
    "06.smoothing_true_class": Exercise(
        "CIFAR-100 has 100 classes. With label smoothing 0.1, what probability does the smoothed target give the true "
        "class?", _near(0.901, 1e-6),
        ("Smoothing takes 0.1 of the mass from the true class and spreads it evenly over all 100 classes.",
         "Every class, the true one included, gets 0.1 / 100; the true class keeps 0.9 besides."),
        "0.9 + 0.1 / 100 = 0.901 (each of the 99 others gets 0.001). With 10 classes it is 0.91, as in this notebook.",
        mistakes=((_near(0.9, 1e-9), "The true class also gets its share of the spread mass: 0.1 / 100 more."),
                  (_near(0.91, 1e-9), "That is the figure for 10 classes; here the 0.1 is spread over 100."),
                  (_near(0.001, 1e-9), "That is what each wrong class gets; the true class keeps 0.9 on top of it.")),
        why="Smoothing mixes the one-hot target with the uniform distribution: 0.9 of the old target plus an even "
            "share of 0.1 for every class, the true one included."),
    "06.floor_02": Exercise(
        "Above, with label smoothing 0.1 over 10 classes, the training loss cannot fall below 0.50. Where is the "
        "floor with label smoothing 0.2 (to 2 decimals)?", _near(0.8669, 0.006),
        ("The floor is the entropy of the smoothed target: -sum over classes of p ln p.",
         "With 0.2 over 10 classes the true class gets 0.8 + 0.02 = 0.82 and each of the 9 others 0.02."),
        "-(0.82 ln 0.82 + 9 x 0.02 ln 0.02) = 0.163 + 0.704 = 0.87: more smoothing, a higher floor.",
        mistakes=((_near(-math.log(0.82), 0.006), "That is only the true class's term, -ln 0.82; the target also "
                   "puts 0.02 on each of the 9 other classes, and they add to the entropy."),
                  (_near(0.50, 0.006), "That is the floor for 0.1; recompute the target for 0.2 first.")),
        why="Cross-entropy against a fixed target is lowest when the prediction equals the target, and that lowest "
            "value is the target's own entropy; a softer target has more of it."),
    "06.why_test_once": Choice(
        "A learner tries five learning rates, tests each model on the test split and reports the best test "
        "accuracy. What is wrong with that figure?",
        {"a": ("Nothing, as long as no test image was used for training: the test split only measured.",
               "Picking the best of five by their test scores uses the test split to decide; the winner's score then "
               "includes the luck that made it win."),
         "b": ("Five learning rates are too few: with a finer search the best figure could be trusted.",
               "A finer search makes it worse: the best of more noisy scores is even more optimistic."),
         "c": ("The test split is too small to rank five models; with ten times as many test images the best score "
               "would be fine to report.",
               "More test images shrink the bias but do not remove it: the figure is still chosen by the split that "
               "measures it. Choose on validation images and test the chosen model once."),
         "d": ("The test split chose the model, so its score is biased upwards: choose on validation, then test once.",
               "Every score carries noise (a few images either way here); the best of five is the one whose noise "
               "happened to favour it, so it overstates the chosen model.")},
        "d", "d: whatever the test split helps choose is no longer measured fairly by it; tune on validation only."),
    # 07 · What the ViT learns
    "07.uniform_distance": Exercise(
        "A head attends uniformly to all 9 patches of a 3x3 grid of 16-pixel patches. Its mean attention "
        "distance in pixels (to 2 decimals)?", _near(23.25298, 0.006),
        ("Average the distance over all 81 (query, key) pairs, the 9 pairs of a patch with itself included.",),
        "np.mean(vitlib.inspection.analysis.patch_distances((3, 3), 16)) = 23.25 pixels.",
        mistakes=((_near(26.16, 0.01), "You left out the 9 pairs of a patch with itself (distance 0): uniform "
                   "attention includes them."),),
        why="Uniform attention weights every (query, key) pair alike, so its mean distance is the plain mean over all "
            "81 pairs, a patch with itself included: the baseline a head's distance is read against."),
    "07.rollout_self": Exercise(
        "One layer, one head, residual counted as half identity: the class token attends only to patch 5. "
        "What share of the class token's rollout row stays on the class token?", 0.5,
        ("Rollout uses 0.5 * A + 0.5 * I per layer.",),
        "The attention row puts 1 on patch 5, the identity 1 on the class token: halved, 0.5 each.",
        mistakes=((0, "The residual connection keeps half of the class token's own state (the identity part)."),
                  (1, "That counts only the identity; the attention half goes to patch 5.")),
        why="Rollout counts the residual path as half of each layer, and that half carries the class token's own "
            "state past the attention."),
    "07.why_control": Choice(
        "Why does every figure of this notebook show an untrained model beside the trained ones?",
        {"a": ("Each measurement gives some value even with random weights; only what goes beyond it was learned.",
               "Random filters' first component already explains about 31 % (not the 25 % of four equal shares), "
               "random heads already look 6 px far: without the control those numbers would pass for learned."),
         "b": ("It gives the accuracy before training, to show that training worked.",
               "Accuracy is judged on the test split against chance (10 %); the untrained model is there for the "
               "analyses, to show what each measurement gives before any learning."),
         "c": ("It is the control that settles each finding: whatever the trained models show beyond the untrained "
               "one was learned from the task.",
               "It rules out what the architecture and the measurement give anyway, not what training on these "
               "images gives without a task: that takes the shuffled-label model, one seed of which drifted to 51 % "
               "of its rollout on the ink.")},
        "a", "a: a control shows what a measurement gives without learning, so that only the difference is credited to "
        "training."),
    "07.shuffled_gap": Choice(
        "Section 3 printed the locality gaps per seed: shuffled labels +0.018, +0.039, -0.021; untrained -0.007, "
        "+0.004, -0.005. Did training on the translated digits with shuffled labels give the position table a layout?",
        {"a": ("Yes, a small one: the shuffled mean (+0.012) is above the untrained mean (-0.002), and the shuffled "
               "tables did change in training.",
               "A difference of means says little without the spread: the shuffled seeds alone range over 0.06, four "
               "times that difference. (Their change is a drift of the whole table, which the gap ignores.)"),
         "b": ("No: a gap below about 0.05 is noise, whatever the seeds say.",
               "Right verdict, wrong reason: what is noise depends on the spread over seeds, not on a fixed "
               "threshold; the 2-D sin-cos table, a perfect layout by construction, has a gap of only +0.14."),
         "c": ("No: the means differ by less than the shuffled seeds differ among themselves, and one shuffled seed "
               "is below all three untrained ones.",
               "An effect has to stand out from the seed-to-seed spread; here the two arms overlap, and the shuffled "
               "models' mean gap stayed between +0.00 and +0.02 at every epoch printed in section 4."),
         "d": ("It cannot be told: three seeds per arm are too few to call any difference an effect or not.",
               "The same three seeds settle the translated arm at once (+0.30 to +0.62 against -0.016 to +0.024 for "
               "centred): what counts is the size of a difference against the spread.")},
        "c", "c: judge a difference against the spread over seeds; here it is smaller than the spread within one arm."),
    "07.rollout_seeds": Choice(
        "Section 6 printed the share of the class token's rollout on the ink, per seed, each seed's models on that "
        "seed's own test digits: trained 58.7, 58.5, 42.9 %; shuffled labels 26.8, 51.2, 31.9 %. What do these "
        "numbers support?",
        {"a": ("A clear effect: the trained mean (53.4 %) is 17 points above the shuffled one (36.6 %), far more than "
               "the untrained seeds vary (31.7 to 33.3 %).",
               "The spread to judge by is that of the arms compared, seed by seed: the trained model leads by 31.9, "
               "7.3 and 11.0 points, and in seed 1 the shuffled model came within 7 points without any task. Three "
               "such pairs do not make a clear effect. The untrained models vary little because nothing moved them."),
         "b": ("Probably an effect: the trained model is ahead in each seed's pair, but three pairs cannot establish it.",
               "Paired by seed, on the same test digits, the trained model is ahead every time (by 31.9, 7.3 and 11.0 "
               "points), but by only 7 points in seed 1: with three pairs this is suggestive, not established."),
         "c": ("No effect: single seeds of the two arms overlap, so the means cannot be told apart.",
               "The overlap is across seeds, on different test digits; paired by seed, on the same digits, the "
               "trained model is ahead in all three. Overlap across seeds says the effect is weak at three seeds, "
               "not that it is absent."),
         "d": ("An effect of the images, not of learning: the shuffled models too put more than the even share "
               "(34.5 %) on the ink.",
               "The shuffled-label arm is the model trained without a task, and it averages 36.6 %, close to the even "
               "34.5 %; the trained arm's 53.4 % is well above it on average, and above it in every seed.")},
        "b", "b: paired by seed the trained model is ahead in all three seeds, by only 7 points in one, so the effect "
        "is probable, not established."),
    # 08 · The paper's experiments
    "08.new_positions": Exercise(
        "ViT-B/16 trained at 224x224 is fine-tuned at 480x480. How many rows has its position embedding table "
        "then, the class token's included?", 30 * 30 + 1,
        ("The patch size stays 16, so the grid grows. Count the patches of a 480x480 image and add the class token.",),
        "480 / 16 = 30 per side: 900 patches + 1 class token row, which is kept as it is: 901.",
        mistakes=((900, "The class token's row stays in the table."), (197, "That is the table at 224x224.")),
        why="The table needs one row per patch of the new 30 x 30 grid; the class token's row has no place in the "
            "grid and is carried over as it is."),
    "08.repeats": Choice(
        "Section 2 trains every size for 20 epochs, so a run on 3,600 images takes about 14 times as many steps as one "
        "on 250. One could instead give every size the same number of steps. Why equal epochs?",
        {"a": ("So that every run costs the same compute, and a difference between sizes cannot come from a longer "
               "training.",
               "It is the other way round: with equal epochs the 3,600-image runs take 14 times the steps. Equal "
               "compute is what a fixed number of steps gives."),
         "b": ("It makes no difference to the curve: a model that has converged gives the same accuracy whichever "
               "budget it had.",
               "Only if every run converges; with a fixed number of steps the small subsets are repeated far more often "
               "and can over-fit, the large ones may stop early, and the curve then shows the budget as well as the "
               "data."),
         "c": ("So that every image is seen equally often at every size; with a fixed number of steps the small "
               "subsets are repeated many more times, and the number of passes changes along with the data.",
               "Equal epochs hold the passes per image fixed, so the curve varies the number of distinct images alone; "
               "early stopping on validation then shows where a size was cut short (its best epoch is the last)."),
         "d": ("So that the small-data runs train less, as a model with little data would in practice.",
               "They do take fewer steps, but that is the price of holding the passes per image equal, not the "
               "purpose; a learner with little data can train as long as it likes.")},
        "c", "c: equal epochs keep the passes per image fixed, so the curve measures the number of images alone."),
    "08.why_2d": Choice(
        "Why is the position table interpolated in 2-D for a new resolution, not along the token order in 1-D?",
        {"a": ("Only along a row are neighbours in the table neighbours in the image; a 2-D resize keeps those above "
               "and below too.",
               "The table stands for a grid of places; only resizing it as a grid puts each new position between its "
               "old neighbours in both directions."),
         "b": ("A 1-D resize would do as well: raster order is how the tokens are numbered, so the sequence already "
               "holds the layout.",
               "Raster numbers are not distances: stretching the 2x2 grid's table p0..p3 to nine entries would give "
               "the 3x3 grid's middle-left cell a blend of the old top-right (p1) and bottom-left (p2)."),
         "c": ("Because the table learned a 2-D layout in training; a table without one could be resized in 1-D just "
               "as well.",
               "Even a table that marks each place with an arbitrary code should hand that code to the new positions "
               "at the same place in the image; a 1-D resize mixes codes of places far apart, whatever was learned.")},
        "a", "a: the positions form a 2-D grid; only a 2-D resize keeps vertical neighbours together."),
    "08.scratch_control": Choice(
        "In section 1 the moved and fine-tuned models reach about 92.5 %, the model kept at 14x14 for as many epochs "
        "96.0 %. One control trains the same ViT from scratch at 28x28 for 30 epochs, the same number of passes: "
        "95.8 % (94.9 to 96.3 %). What does this control rule out?",
        {"a": ("That fine-tuning at a higher resolution can ever help a ViT: the paper's result is refuted.",
               "One small model, 10 epochs of fine-tuning and 5,000 digits refute nothing about ViT-L on ImageNet; "
               "the control explains this experiment's result, it does not overturn the paper's."),
         "b": ("That the drop comes from the position tables: with positions learned at 28x28 from the start, the "
               "model does fine.",
               "The reinit models also learn their 28x28 positions afresh and still end at about 92.5 %; what the "
               "model from scratch lacks is the rest of the 14x14 weights, above all a patch embedding made for "
               "strokes at half the scale."),
         "c": ("That training at 14x14 first carried nothing over: the model from scratch is as good, so the 20 "
               "epochs were wasted.",
               "The moved models are below the model from scratch, not level with it: within 10 epochs their 14x14 "
               "weights hurt at 28x28. And the 14x14 epochs are far cheaper, which is why the paper trains small "
               "first."),
         "d": ("That the 28x28 images are what makes the moved models worse: the same ViT learns them from scratch "
               "as well as it learns 14x14 ones.",
               "95.8 against 96.0 %, inside the spread over seeds: the images are not harder, so the moved models' "
               "deficit comes from the move itself, weights trained at another scale.")},
        "d", "d: from scratch, 28x28 is as learnable as 14x14, so the deficit comes from the move, not the images."),
    "08.knn_control": Choice(
        "Section 2's 1-nearest-neighbour classifier on raw pixels scores 81, 86, 89 and 93 % at 250, 500, 1,000 and "
        "3,600 images: above every trained model at 250 and 500 images, below all four at 3,600. What does this "
        "control tell you about the curves?",
        {"a": ("That with little data ViTs and CNNs are worse image classifiers than nearest neighbour, whatever "
               "the training.",
               "It beats these runs, 20 epochs each, most of them still improving at the end; a control calibrates "
               "this experiment, it does not rank the methods in general."),
         "b": ("That the small-data runs had not finished learning: below a method with no training, the curve's "
               "left end shows how fast the models learn as much as how much data they need.",
               "Matching raw pixels already scores 81 % on 250 images, so the networks' 49 to 65 % there are short of "
               "what the pixels hold; their best epoch was usually one of the last."),
         "c": ("That the trained models over-fit the small subsets: nearest neighbour only memorises and still "
               "wins, so the networks memorise the wrong things.",
               "Over-fitting would show as validation accuracy falling late in training; here it was still rising. "
               "The networks fall short because 80 steps are few, not because they memorise."),
         "d": ("Nothing about the trained models: it involves no training, so its numbers are not comparable.",
               "It uses the same training subsets and the same 1,000 test images; that is what makes it a fair "
               "reference for what pixel similarity alone achieves.")},
        "b", "b: a baseline without training above the networks says they had not finished learning, not that data ran out."),
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
                  (_shape_is((64, 48)), "The images are grey: one channel, so a 4x4 patch has 16 values.")),
        why="nn.Linear computes x W^T and so stores W as (out_features, in_features): 64 outputs from the 16 values "
            "of a flattened 4x4 grey patch."),
    "09.conv_kernel": Exercise(
        "Write torch_conv_to_keras(weight): an nn.Conv2d weight (D, C, P, P) -> the Keras Conv2D kernel (P, P, C, D) "
        "of the same convolution.",
        lambda w: np.transpose(w, (2, 3, 1, 0)),
        ("Only the channel axes move; the patch's rows and columns keep their order.",
         "np.transpose(weight, axes) puts axis axes[i] at place i: the rows (axis 2) first, then the columns (3)."),
        "np.transpose(weight, (2, 3, 1, 0)): rows, columns, input channels C, output channels D.",
        inputs=_conv_kernel_inputs,
        why="PyTorch puts a convolution's channels first (out, in) and Keras last (in, out); the filter's rows and "
            "columns mean the same in both, so only the channel axes move."),
    "09.shuffle_after_batch": Exercise(
        "A pipeline is ds.batch(64).shuffle(100). Does a batch hold a different set of images from one epoch to the "
        "next? Answer 'yes' or 'no'.", "no",
        ("shuffle() shuffles the elements it receives; after batch(), what is one element?",),
        "No: after batch() each element is a whole batch, so shuffle() only changes the order of the batches.",
        mistakes=(("yes", "shuffle() after batch() moves whole batches around; their contents stay together."),),
        why="Each step of a tf.data pipeline works on the elements it receives, and after batch() an element is a "
            "whole batch: shuffle() can reorder batches but never mix their images."),
    "09.prefetch_step": Exercise(
        "Loading a batch takes 50 ms, a training step on it 20 ms, one CPU core each. With prefetch, about how many "
        "ms does a step take once training runs?", _near(50, 3),
        ("With prefetch the next batch is loaded while the model trains on this one.",),
        "About 50 ms: loading and training overlap, so the slower of the two (loading) sets the pace.",
        mistakes=((_near(70, 3), "That is without prefetch, loading and training one after the other."),
                  (_near(20, 3), "The step waits for its batch: the model cannot run faster than batches arrive.")),
        why="Prefetch overlaps loading the next batch with training on this one, so a step takes as long as the slower "
            "of the two, not their sum."),
    "09.why_backend": Choice(
        "When would you run a vitlib model with KERAS_BACKEND=torch rather than TensorFlow?",
        {"a": ("When you want more accurate predictions: PyTorch computes them in its own, more precise way.",
               "The same .keras file gives the same logits on every backend: within 1e-5 here, and the same classes."),
         "b": ("Whenever it suits, even mid-notebook: set os.environ[\"KERAS_BACKEND\"] = \"torch\" and the model "
               "moves over.",
               "Keras reads KERAS_BACKEND once, when it is first imported; that is why the notebook starts a new "
               "Python process for each other backend."),
         "c": ("When the model must sit inside a PyTorch program or be used with PyTorch tools, with the same weights.",
               "The backend changes where the model runs, not what it computes: the same weights give the same "
               "outputs, so the choice is about the surroundings."),
         "d": ("Only after porting the model to torch.nn as in section 2; a Keras model cannot run on PyTorch "
               "otherwise.",
               "The port is for projects with no Keras at all; Keras 3 loads the same .keras file on the torch "
               "backend directly, as section 3 does.")},
        "c", "c: pick the backend for its surroundings (tools, deployment, speed on your hardware)."),
    # 10 · After the paper
    "10.tokens_at_3": Exercise(
        "The notebook's ViT sees 24x24 digits. Run at 3x3 patches, how many tokens enter its first block, the class "
        "token included?", 8 * 8 + 1,
        ("How many 3x3 patches tile a 24x24 image? Then add the class token.",),
        "24 / 3 = 8 per side: 64 patches + 1 class token = 65 tokens (against 17 at its own 6x6 patches).",
        mistakes=((64, "The class token is a token too."), (17, "That is at the trained 6x6 patches.")),
        why="Smaller patches tile the same image with more of them, 8 x 8 at 3 pixels, and the class token comes on "
            "top: the token count, and the cost, grow as the patch shrinks."),
    "10.naive_scale": Exercise(
        "A 4x4 patch-embedding kernel is resized like an image (naive bilinear) to 8x8 and applied to the same flat "
        "patch resized to 8x8. By what factor does the token grow?", 4,
        ("The resized kernel has as many values as before per unit area, and there are more of them: count them.",),
        "The flat kernel and patch stay flat, and the dot product sums 64 products instead of 16: (8/4)² = 4 times "
        "larger. PI-resize keeps the factor at 1.",
        mistakes=((2, "That is the side ratio; the token sums over the patch's area."),
                  (1, "That is PI-resize; the naive kernel keeps its values, so the sum grows.")),
        why="A naive resize keeps the kernel's values but spreads them over more pixels, so the dot product sums over "
            "the patch's area: (8/4)² times as many products of the same size."),
    "10.tokens_after_merging": Exercise(
        "A ViT with 65 tokens (64 patches and the class token) and 4 blocks merges r = 8 tokens in every block. How "
        "many tokens leave the last block?", 65 - 4 * 8,
        ("Every block, the last one included, removes r tokens.",),
        "65 - 4 x 8 = 33 tokens: 32 patch tokens holding 64 patches between them, and the class token.",
        mistakes=((57, "That is after one block; every block merges r."), (41, "The last block merges too."),
                  (32, "The class token is never merged: count it.")),
        why="Each block, the last included, merges r tokens into their partners, so the count falls by r per block; "
            "the class token is kept apart and never merged."),
    "10.encoder_sees": Exercise(
        "With the paper's mask ratio, a masked autoencoder hides 75 % of the 16 patches of a 24x24 digit (6x6 "
        "patches). How many tokens does its encoder process, the class token included?", 5,
        ("The encoder sees only the visible patches. How many are left, and what does the ViT add to them?",),
        "16 x 25 % = 4 visible patches + 1 class token = 5 tokens: the encoder's cost is a fraction of the full 17.",
        mistakes=((4, "The class token goes through the encoder too."),
                  (13, "The hidden patches never enter the encoder: only the decoder sees mask tokens.")),
        why="The encoder runs on the visible quarter of the patches and the class token only; the hidden patches "
            "reach just the decoder, as mask tokens, which is what makes MAE's encoder cheap."),
    "10.why_pi": Choice(
        "Why does a naive (bilinear) resize of the patch-embedding kernel hurt more than PI-resize?",
        {"a": ("The naive kernel's sum runs over more or fewer pixels, so every token scales with the patch area.",
               "With P* > P, <Bx, Bw> is about (P*/P)² <x, w> (tokens 1.71 times as long for 6 -> 8 here), and nothing "
               "after the embedding was trained on tokens that size; PI-resize keeps <Bx, w*> = <x, w> exactly."),
         "b": ("Bilinear interpolation blurs the kernel, and the fine detail it loses is what the trained model relied "
               "on to tell digits apart.",
               "Some blur, but the main effect is the size of the tokens: for 6 -> 8 the naive tokens come out 1.71 "
               "times as long, and no layer after the embedding was trained on tokens that size."),
         "c": ("The two methods also resize the position table differently, and the naive rule scrambles it.",
               "Both use the same 2-D resize of the position table; only the kernel differs."),
         "d": ("PI-resize fits the new kernel to the training data, while the naive resize learns nothing from the "
               "images.",
               "Neither is trained: PI-resize is a formula, the pseudo-inverse of the resize matrix applied to the "
               "trained kernel, with no data involved.")},
        "a", "a: naive resizing rescales every token by about the patch area ratio; PI-resize keeps the tokens."),
    "10.why_mask_most": Choice(
        "BERT masks 15 % of its words, the masked autoencoder 75 % of the patches. Why so many?",
        {"a": ("Each patch carries more information than a word, so more must be hidden before the task gets hard.",
               "The other way round: a word is dense with meaning, while a patch is largely predictable from its "
               "neighbours (images are redundant), so a few hidden patches make too easy a task."),
         "b": ("With few patches hidden, the neighbours fill them in; hiding most forces the model to learn what "
               "digits look like.",
               "Images are redundant: a low masking ratio is solved by interpolating neighbours, which teaches little "
               "(Sec. 1 of He et al.; 75 % was best in their Fig. 5)."),
         "c": ("For speed alone: the encoder sees only the visible quarter of the patches, and the ratio was pushed as "
               "high as accuracy allowed.",
               "The speed is a welcome side effect; in the paper's Fig. 5 accuracy itself is best near 75 %, because "
               "a harder task teaches more."),
         "d": ("With 15 % hidden, the loss would rest on too few patches and be too noisy to train on.",
               "BERT trains well on 15 % of its words; the trouble with few hidden patches is that they are too easy, "
               "not too few.")},
        "b", "b: with most patches hidden, copying neighbours no longer works, and the encoder is cheap (a quarter "
        "of the tokens)."),
}
