import numpy as np
import pytest

import vitlib
from vitlib.exercises import EXERCISES, check

RIGHT = {
    "01.tokens": 576,
    "01.token_length": 48,
    "01.patchify": lambda x, p: vitlib.extract_patches(x, p, method="conv"),
    "02.embedding_params": 590_592,
    "02.dense_to_conv": lambda k, p, c: np.reshape(k, (p, p, c, k.shape[-1])),
    "03.position_params": 443_136,
    "03.no_position": "None ",
    "04.attention": lambda q, k, v: np.asarray(
        vitlib.scaled_dot_product_attention(q[None, :, None], k[None, :, None], v[None, :, None])[0])[0, :, 0],
    "04.block_params": 7_087_872,
    "05.tokens_h14": 257,
    "05.params_s16": 22_050_664,
    "06.warmup_lr": 1e-4,
    "06.label_smoothing": 0.91,
    "07.uniform_distance": 23.25,
    "07.rollout_self": 0.5,
    "08.new_positions": 901,
    "08.repeats": 49.6,
    "09.linear_weight": (128, 64),
    "09.conv_kernel": lambda w: np.moveaxis(w, (0, 1), (3, 2)),
    "09.shuffle_after_batch": "No",
    "09.prefetch_step": 50,
}
WRONG = {
    "01.tokens": 588,  # the source text's count
    "01.token_length": 16,
    "01.patchify": lambda x, p: np.reshape(x, (x.shape[0], -1, p * p * x.shape[-1])),  # ignores patch layout
    "02.embedding_params": 589_824,  # forgot the biases
    "02.dense_to_conv": lambda k, p, c: np.reshape(k, (c, p, p, -1)).transpose(1, 2, 0, 3),  # channel-first order
    "03.position_params": 442_368,  # forgot the class token
    "03.no_position": "learned",
    "04.attention": lambda q, k, v: (q @ k.T) @ v,  # no scaling, no softmax
    "04.block_params": 7_084_800,
    "05.tokens_h14": 256,
    "05.params_s16": 22_000_000,
    "06.warmup_lr": 1e-3,
    "06.label_smoothing": 0.9,
    "07.uniform_distance": 26.16,  # left out the 9 pairs of a patch with itself
    "07.rollout_self": 0.0,
    "08.new_positions": 900,  # forgot the class token
    "08.repeats": 0.5,  # steps / images
    "09.linear_weight": (64, 128),  # Keras' layout
    "09.conv_kernel": lambda w: np.transpose(w, (3, 2, 1, 0)),  # swaps the patch's rows and columns too
    "09.shuffle_after_batch": "yes",
    "09.prefetch_step": 70,  # load + step: no overlap
}


def test_every_exercise_has_a_right_and_a_wrong_answer_under_test():
    assert set(RIGHT) == set(EXERCISES) == set(WRONG)


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_right_answers_pass_and_wrong_ones_get_a_hint(exercise_id, capsys):
    assert check(exercise_id, RIGHT[exercise_id]) is True
    assert "Correct" in capsys.readouterr().out
    assert check(exercise_id, WRONG[exercise_id]) is False
    out = capsys.readouterr().out
    assert "Not yet" in out and "Hint:" in out


def test_missing_answer_and_crashing_function_are_handled(capsys):
    assert check("01.tokens", None) is False
    assert "No answer yet" in capsys.readouterr().out
    assert check("01.patchify", lambda x, p: 1 / 0) is False
    assert check("01.tokens", "many") is False


def test_s16_parameter_count_is_that_of_the_built_model():
    assert vitlib.build_vit("S/16", image_size=224).count_params() == RIGHT["05.params_s16"]


def test_unknown_exercise_is_refused():
    with pytest.raises(ValueError, match="Unknown exercise '9.9'"):
        check("9.9", 1)
