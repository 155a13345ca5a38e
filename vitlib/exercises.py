"""Exercise checkers for the notebooks: ``check("01.tokens", 576)`` says whether an answer is right and,
if not, gives a hint. Answers can be numbers, strings or functions (which are called on test inputs)."""
import dataclasses

import numpy as np
from keras import ops

from vitlib.costs import parameter_count
from vitlib.patches import extract_patches


@dataclasses.dataclass(frozen=True)
class Exercise:
    question: str
    expected: object  # a value, or a function answer -> bool
    hint: str

    def is_right(self, answer):
        if callable(self.expected):
            return bool(self.expected(answer))
        if isinstance(self.expected, str):
            return isinstance(answer, str) and answer.strip().lower() == self.expected
        try:
            return bool(np.isclose(float(answer), float(self.expected), rtol=1e-6, atol=0))
        except (TypeError, ValueError):
            return False


def _same_function(reference, make_inputs):
    """Checker for exercises whose answer is a function: compare it with ``reference`` on a few inputs."""
    def right(answer):
        if not callable(answer):
            return False
        for args in make_inputs():
            try:
                got = np.asarray(ops.convert_to_numpy(answer(*args)))
            except Exception:
                return False
            want = np.asarray(ops.convert_to_numpy(reference(*args)))
            if got.shape != want.shape or not np.allclose(got, want, atol=1e-5):
                return False
        return True
    return right


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
    return [(rng.normal(size=(p * p * c, d)), p, c) for p, c, d in ((4, 3, 8), (2, 1, 5))]


def _conv_kernel_inputs():
    rng = np.random.default_rng(9)
    return [(rng.normal(size=shape),) for shape in ((8, 1, 4, 4), (5, 3, 2, 2))]  # (D, C, P, P)


EXERCISES = {
    "01.tokens": Exercise("How many tokens does a 384x384 image give with 16x16 patches?", 576,
                          "Count patches along each side (384 / 16) and multiply the two counts."),
    "01.token_length": Exercise("How many values are in one token of a 32x32 RGB image cut into 4x4 patches?", 48,
                                "A token holds every pixel of its patch, in every colour channel: P x P x C."),
    "01.patchify": Exercise(
        "Write patchify(images, p): (B, H, W, C) -> (B, N, p*p*C), in the order of tf.image.extract_patches.",
        _same_function(extract_patches, _patch_inputs),
        "Reshape to (B, H/p, p, W/p, p, C), move the two patch axes next to each other with a transpose "
        "(0, 1, 3, 2, 4, 5), then reshape to (B, -1, p*p*C).",
    ),
    "02.embedding_params": Exercise("How many parameters has the patch embedding of ViT-B/16 (RGB, D = 768)?",
                                    16 * 16 * 3 * 768 + 768,
                                    "A Dense layer from P*P*C inputs to D outputs: a kernel of P*P*C x D plus D biases."),
    "02.dense_to_conv": Exercise(
        "Write to_conv(kernel, p, c): turn a Dense kernel (p*p*c, D) into the equal Conv2D kernel (p, p, c, D).",
        _same_function(lambda k, p, c: k.reshape(p, p, c, -1), _dense_to_conv_inputs),
        "The Dense kernel's rows are in (row, column, channel) order, the same order as the Conv2D kernel's "
        "first three axes: a reshape is enough.",
    ),
    "03.position_params": Exercise(
        "How many parameters has the learned position embedding of ViT-B/16 at 384x384 (class token included)?",
        (24 * 24 + 1) * 768, "One vector of D = 768 values per token; count the patches of a 384x384 image, plus one.",
    ),
    "03.no_position": Exercise(
        "Which pos_embedding leaves a ViT unable to beat chance on the quadrant task: 'none', 'sincos1d', "
        "'sincos2d' or 'learned'?", "none",
        "Which model gives the same output when you shuffle the patches? It cannot tell the quadrants apart.",
    ),
    "04.attention": Exercise(
        "Write attention(q, k, v) for one head: q, k, v of shape (N, d), returning (N, d).",
        _same_function(_attention_reference, _attention_inputs),
        "scores = q @ k.T / sqrt(d); softmax over the last axis (subtract the row max first for stability); "
        "then weights @ v.",
    ),
    "04.block_params": Exercise(
        "How many parameters has one encoder block of ViT-B (D = 768, MLP 3072)?",
        2 * 768 + 4 * (768 * 768 + 768) + 2 * 768 + 768 * 3072 + 3072 + 3072 * 768 + 768,
        "Two LayerNorms (scale and bias each), four D x D projections with biases (Q, K, V, output), and the "
        "MLP: D x 3072 + 3072, then 3072 x D + D.",
    ),
    "05.tokens_h14": Exercise("How many tokens, class token included, does ViT-H/14 process at 224x224?", 257,
                              "224 / 14 = 16 patches per side; add one for the class token."),
    "05.params_s16": Exercise(
        "How many parameters has ViT-S/16 at 224x224 with 1000 classes?",
        parameter_count(variant="S/16", image_size=224, num_classes=1000),
        "Use vitlib.costs.parameter_count, or build it with vitlib.build_vit and call count_params().",
    ),
    "06.warmup_lr": Exercise(
        "With a linear warm-up of 10 steps to a peak learning rate of 1e-3, what is the rate after step 1?", 1e-4,
        "During warm-up the rate grows in equal steps from 0: peak x step / warmup_steps.",
    ),
    "06.label_smoothing": Exercise(
        "With label smoothing 0.1 over 10 classes, what probability does the target give the true class?", 0.91,
        "Smoothing keeps 1 - 0.1 of the mass on the true class and spreads 0.1 evenly over all 10 classes "
        "(the true one included).",
    ),
    "07.uniform_distance": Exercise(
        "A head attends uniformly to all 9 patches of a 3x3 grid of 16-pixel patches. Its mean attention "
        "distance in pixels (to 2 decimals)?", lambda a: _near(a, 23.25298, 0.006),
        "Average the distance over all 81 (query, key) pairs, the 9 pairs of a patch with itself included: "
        "np.mean(vitlib.analysis.patch_distances((3, 3), 16)).",
    ),
    "07.rollout_self": Exercise(
        "One layer, one head, residual counted as half identity: the class token attends only to patch 5. "
        "What share of the class token's rollout row stays on the class token?", 0.5,
        "Rollout uses 0.5 * A + 0.5 * I per layer: the attention row puts 1 on patch 5, the identity puts 1 on "
        "the class token itself.",
    ),
    "08.new_positions": Exercise(
        "ViT-B/16 trained at 224x224 is fine-tuned at 480x480. How many rows has its position embedding table "
        "then, the class token's included?", 30 * 30 + 1,
        "The patch size stays 16, so the grid grows: count the patches of a 480x480 image (480 / 16 per side, "
        "squared) and add the class token's row, which is kept as it is.",
    ),
    "08.repeats": Exercise(
        "A run takes 100 steps of 64 images from 129 training images. How many times does it see each image, on "
        "average (to 1 decimal)?", lambda a: _near(a, 100 * 64 / 129, 0.051),
        "Every step takes 64 images, so the run takes 100 x 64 images in all; divide by the number of distinct "
        "images.",
    ),
    "09.linear_weight": Exercise(
        "A Keras Dense layer maps 64 values to 128, so its kernel has shape (64, 128). What shape has the weight of "
        "the nn.Linear that computes the same function? (A tuple.)", lambda a: _shape(a) == (128, 64),
        "nn.Linear stores its weight as (out_features, in_features) and computes x @ weight.T + bias.",
    ),
    "09.conv_kernel": Exercise(
        "Write torch_conv_to_keras(weight): an nn.Conv2d weight (D, C, P, P) -> the Keras Conv2D kernel (P, P, C, D) "
        "of the same convolution.",
        _same_function(lambda w: np.transpose(w, (2, 3, 1, 0)), _conv_kernel_inputs),
        "Both layouts keep the patch's rows and columns in that order; only the channel axes move: the input "
        "channels C go third, the output channels D last. np.transpose(weight, axes) puts axis axes[i] at place i.",
    ),
    "09.shuffle_after_batch": Exercise(
        "A pipeline is ds.batch(64).shuffle(100). Does a batch hold a different set of images from one epoch to the "
        "next? Answer 'yes' or 'no'.", "no",
        "shuffle() shuffles the elements it receives, and after batch() each element is a whole batch.",
    ),
    "09.prefetch_step": Exercise(
        "Loading a batch takes 50 ms, a training step on it 20 ms, one CPU core each. With prefetch, about how many "
        "ms does a step take once training runs?", lambda a: _near(a, 50, 3),
        "With prefetch the next batch is loaded while the model trains on this one: the two overlap, and the "
        "slower of the two sets the pace.",
    ),
}


def _shape(answer):
    try:
        return tuple(int(n) for n in answer)
    except (TypeError, ValueError):
        return None


def _near(answer, value, tolerance):
    try:
        return abs(float(answer) - value) <= tolerance
    except (TypeError, ValueError):
        return False


def check(exercise_id, answer):
    """Print whether ``answer`` is right (with a hint if not) and return True or False."""
    if exercise_id not in EXERCISES:
        raise ValueError(f"Unknown exercise {exercise_id!r}. Known exercises: {', '.join(EXERCISES)}.")
    exercise = EXERCISES[exercise_id]
    if answer is None or answer is Ellipsis:
        print(f"[{exercise_id}] No answer yet. {exercise.question}\n  Hint: {exercise.hint}")
        return False
    if exercise.is_right(answer):
        print(f"[{exercise_id}] Correct!")
        return True
    shown = getattr(answer, "__name__", repr(answer))
    print(f"[{exercise_id}] Not yet: {shown} is not right.\n  Hint: {exercise.hint}")
    return False
