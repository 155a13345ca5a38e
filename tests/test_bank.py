"""vitlib.exercises.bank: every exercise accepts its right answer and says why, gives each listed common mistake its
own feedback, and is asked in its notebook; every notebook asks an Explain question; the choices cannot be guessed from
the letter or the length of the right option."""
import collections
import json
from pathlib import Path

import numpy as np
import pytest

import vitlib
from vitlib.exercises.bank import EXERCISES
from vitlib.exercises.checker import check
from vitlib.exercises.questions import Choice

pytestmark = [pytest.mark.backend_neutral, pytest.mark.usefixtures("fresh_exercise_session")]
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

RIGHT = {
    "01.tokens": 576,
    "01.token_length": 48,
    "01.patchify": lambda x, p: vitlib.extract_patches(x, p, method="conv"),
    "01.why_order": "c",
    "02.embedding_params": 603_136,
    "02.channels_first_to_conv": lambda k, p, c: np.moveaxis(np.reshape(k, (c, p, p, k.shape[-1])), 0, 2),
    "02.why_conv": "(A)",
    "03.position_params": 443_136,
    "03.no_position": " d",
    "04.attention": lambda q, k, v: np.asarray(
        vitlib.scaled_dot_product_attention(q[None, :, None], k[None, :, None], v[None, :, None])[0])[0, :, 0],
    "04.block_params": 7_087_872,
    "04.why_scale": "c",
    "05.tokens_384": 577,
    "05.params_s16_384": 22_196_584,
    "05.gap_tokens": "a",
    "06.warmup_lr": "b",
    "06.smoothing_true_class": 0.901,
    "06.floor_02": 0.87,
    "06.why_test_once": "d",
    "07.uniform_distance": 23.25,
    "07.rollout_self": 0.5,
    "07.why_control": "a",
    "07.shuffled_gap": "c",
    "07.rollout_seeds": "b",
    "08.new_positions": 901,
    "08.repeats": "c",
    "08.why_2d": "a",
    "08.scratch_control": "d",
    "08.knn_control": "b",
    "09.patch_linear_weight": (64, 16),
    "09.conv_kernel": lambda w: np.moveaxis(w, (0, 1), (3, 2)),
    "09.shuffle_after_batch": "No",
    "09.prefetch_step": 50,
    "09.why_backend": "c",
    "10.tokens_at_3": 65,
    "10.naive_scale": 4,
    "10.tokens_after_merging": 33,
    "10.encoder_sees": 5,
    "10.why_pi": "a",
    "10.why_mask_most": "b",
}


WRONG = {
    "01.tokens": (588, "channel"),
    "01.token_length": (16, "channel"),
    "01.patchify": (lambda x, p: np.reshape(x, (x.shape[0], -1, p * p * x.shape[-1])), "values are not"),
    "01.why_order": ("a", "nearness"),
    "02.embedding_params": (602_112, "biases"),
    "02.channels_first_to_conv": (lambda k, p, c: np.reshape(k, (p, p, c, -1)), "(row, column, channel) order"),
    "02.why_conv": ("c", "round-off"),
    "03.position_params": (442_368, "class token"),
    "03.no_position": ("a", "near chance"),
    "04.attention": (lambda q, k, v: (q @ k.T) @ v, "values are not"),  # no scaling, no softmax
    "04.block_params": (7_084_800, "3,072 short"),
    "04.why_scale": ("a", "whatever the scale"),
    "05.tokens_384": (576, "class token"),
    "05.params_s16_384": (22_050_664, "position table"),
    "05.gap_tokens": ("b", 'pool="token"'),
    "06.warmup_lr": ("a", "cosine decay"),
    "06.smoothing_true_class": (0.9, "its share"),
    "06.floor_02": (0.198, "true class"),
    "06.why_test_once": ("b", "worse"),
    "07.uniform_distance": (26.16, "itself"),
    "07.rollout_self": (0.0, "residual"),
    "07.why_control": ("c", "shuffled-label"),
    "07.shuffled_gap": ("b", "wrong reason"),
    "07.rollout_seeds": ("a", "spread to judge by"),
    "08.new_positions": (900, "class token"),
    "08.repeats": ("b", "Only if every run converges"),
    "08.why_2d": ("b", "not distances"),
    "08.scratch_control": ("b", "reinit models"),
    "08.knn_control": ("c", "memorise"),
    "09.patch_linear_weight": ((16, 64), "(out, in)"),
    "09.conv_kernel": (lambda w: np.transpose(w, (3, 2, 1, 0)), "shape"),  # Keras' layout read backwards
    "09.shuffle_after_batch": ("yes", "whole batches"),
    "09.prefetch_step": (70, "without prefetch"),
    "09.why_backend": ("b", "once"),
    "10.tokens_at_3": (64, "class token"),
    "10.naive_scale": (2, "side ratio"),
    "10.tokens_after_merging": (57, "after one block"),
    "10.encoder_sees": (13, "never enter"),
    "10.why_pi": ("b", "size of the tokens"),
    "10.why_mask_most": ("a", "other way round"),
}


def test_every_exercise_has_a_right_and_a_wrong_answer_under_test():
    assert set(RIGHT) == set(EXERCISES) == set(WRONG)


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_right_answers_pass_and_common_mistakes_get_their_own_feedback(exercise_id, capsys):
    assert check(exercise_id, RIGHT[exercise_id]) is True
    assert "Correct" in capsys.readouterr().out
    wrong, word = WRONG[exercise_id]
    assert check(exercise_id, wrong) is False
    out = capsys.readouterr().out
    assert ("Not yet" in out or "Your function" in out) and word in out, out


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_a_right_answer_prints_its_one_line_reason_not_a_bare_verdict(exercise_id, capsys):
    why = EXERCISES[exercise_id].why
    assert why.strip() and "\n" not in why, exercise_id
    assert check(exercise_id, RIGHT[exercise_id]) is True
    assert f"[{exercise_id}] Correct! {why}" in capsys.readouterr().out


CHOICES = {i: e for i, e in EXERCISES.items() if isinstance(e, Choice)}


def test_no_answer_position_holds_more_than_40_percent_of_the_choices():
    positions = collections.Counter(list(c.options).index(c.right) for c in CHOICES.values())
    assert max(positions.values()) <= 0.4 * len(CHOICES), positions


def test_the_right_option_is_the_longest_in_at_most_half_of_the_choices():
    longest = [i for i, c in CHOICES.items()  # a tie with a wrong option counts as longest
               if len(c.options[c.right][0]) >= max(len(text) for letter, (text, _) in c.options.items() if letter != c.right)]
    assert len(longest) <= len(CHOICES) / 2, longest


@pytest.mark.parametrize("exercise_id", sorted(i for i in EXERCISES if getattr(EXERCISES[i], "mistakes", ())))
def test_every_listed_mistake_gets_its_own_feedback_and_no_hint(exercise_id, capsys):
    exercise, tried = EXERCISES[exercise_id], 0
    for wrong, feedback in exercise.mistakes:
        answer = wrong if exercise.inputs is not None or not callable(wrong) else getattr(wrong, "value", None)
        if answer is None:  # a predicate with no example answer (e.g. a set of tuple shapes)
            continue
        assert check(exercise_id, answer) is False
        out = capsys.readouterr().out
        assert feedback in out and "Hint" not in out, out
        tried += 1
    assert tried >= 1


def test_every_choice_has_feedback_for_each_option_and_a_right_letter_among_them():
    for exercise_id, exercise in EXERCISES.items():
        if isinstance(exercise, Choice):
            assert exercise.right in exercise.options, exercise_id
            assert all(text and feedback for text, feedback in exercise.options.values()), exercise_id


@pytest.mark.backend_independent
def test_every_exercise_is_asked_in_its_notebook_and_every_notebook_asks_an_explain_question():
    asked = {}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        source = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        asked[path.name[:2]] = {i for i in EXERCISES if f'"{i}"' in source}
        assert "vitlib.solution" in source, f"{path.name}: the exercise header should say how to see a solution"
    for exercise_id in EXERCISES:
        assert exercise_id in asked[exercise_id[:2]], f"{exercise_id} is not asked in notebook {exercise_id[:2]}"
    for number, ids in asked.items():
        assert any(isinstance(EXERCISES[i], Choice) for i in ids), f"notebook {number} has no explain question"


def test_s16_parameter_counts_of_the_exercise_are_those_of_the_built_models():
    from vitlib.exercises.bank import S16_AT_224, S16_AT_384

    assert vitlib.build_vit("S/16", image_size=224).count_params() == S16_AT_224
    assert vitlib.build_vit("S/16", image_size=384).count_params() == S16_AT_384
