import json
from pathlib import Path

import numpy as np
import pytest

import vitlib
from vitlib import exercises
from vitlib.exercise_bank import EXERCISES
from vitlib.exercises import Choice, check, solution

pytestmark = pytest.mark.backend_neutral  # the checker runs learners' notebook code, which runs on TensorFlow

RIGHT = {
    "01.tokens": 576,
    "01.token_length": 48,
    "01.patchify": lambda x, p: vitlib.extract_patches(x, p, method="conv"),
    "01.why_order": "b",
    "02.embedding_params": 603_136,
    "02.channels_first_to_conv": lambda k, p, c: np.moveaxis(np.reshape(k, (c, p, p, k.shape[-1])), 0, 2),
    "02.why_conv": "(B)",
    "03.position_params": 443_136,
    "03.no_position": " b",
    "04.attention": lambda q, k, v: np.asarray(
        vitlib.scaled_dot_product_attention(q[None, :, None], k[None, :, None], v[None, :, None])[0])[0, :, 0],
    "04.block_params": 7_087_872,
    "04.why_scale": "b",
    "05.tokens_384": 577,
    "05.params_s16_384": 22_196_584,
    "05.gap_tokens": "b",
    "06.warmup_lr": 1e-4,
    "06.smoothing_true_class": 0.901,
    "06.floor_02": 0.87,
    "06.why_test_once": "b",
    "07.uniform_distance": 23.25,
    "07.rollout_self": 0.5,
    "07.why_control": "b",
    "08.new_positions": 901,
    "08.repeats": 49.6,
    "08.why_2d": "b",
    "09.patch_linear_weight": (64, 16),
    "09.conv_kernel": lambda w: np.moveaxis(w, (0, 1), (3, 2)),
    "09.shuffle_after_batch": "No",
    "09.prefetch_step": 50,
    "09.why_backend": "b",
    "10.tokens_at_3": 65,
    "10.naive_scale": 4,
    "10.tokens_after_merging": 33,
    "10.encoder_sees": 5,
    "10.why_pi": "b",
    "10.why_mask_most": "a",
}
# A common mistake for each exercise, with a word its feedback must contain (None: only the generic hint).
WRONG = {
    "01.tokens": (588, "channel"),
    "01.token_length": (16, "channel"),
    "01.patchify": (lambda x, p: np.reshape(x, (x.shape[0], -1, p * p * x.shape[-1])), "values are not"),
    "01.why_order": ("a", "position embedding of its own"),
    "02.embedding_params": (602_112, "biases"),
    "02.channels_first_to_conv": (lambda k, p, c: np.reshape(k, (p, p, c, -1)), "(row, column, channel) order"),
    "02.why_conv": ("c", "exactly one patch"),
    "03.position_params": (442_368, "class token"),
    "03.no_position": ("a", "shuffle test"),
    "04.attention": (lambda q, k, v: (q @ k.T) @ v, "values are not"),  # no scaling, no softmax
    "04.block_params": (7_084_800, "3,072 short"),
    "04.why_scale": ("c", "not symmetric"),
    "05.tokens_384": (576, "class token"),
    "05.params_s16_384": (22_050_664, "position table"),
    "05.gap_tokens": ("a", "no class token"),
    "06.warmup_lr": (1e-3, "peak"),
    "06.smoothing_true_class": (0.9, "its share"),
    "06.floor_02": (0.198, "true class"),
    "06.why_test_once": ("c", "worse"),
    "07.uniform_distance": (26.16, "itself"),
    "07.rollout_self": (0.0, "residual"),
    "07.why_control": ("c", "chance"),
    "08.new_positions": (900, "class token"),
    "08.repeats": (0.775, "64 images"),
    "08.why_2d": ("a", "cheap"),
    "09.patch_linear_weight": ((16, 64), "(out, in)"),
    "09.conv_kernel": (lambda w: np.transpose(w, (3, 2, 1, 0)), "shape"),  # Keras' layout read backwards
    "09.shuffle_after_batch": ("yes", "whole batches"),
    "09.prefetch_step": (70, "without prefetch"),
    "09.why_backend": ("a", "same logits"),
    "10.tokens_at_3": (64, "class token"),
    "10.naive_scale": (2, "side ratio"),
    "10.tokens_after_merging": (57, "after one block"),
    "10.encoder_sees": (13, "never enter"),
    "10.why_pi": ("c", "same bilinear"),
    "10.why_mask_most": ("b", "harder"),
}


@pytest.fixture(autouse=True)
def fresh_session():
    for record in (exercises._WRONG_TRIES, exercises._HINTS_SHOWN, exercises._TRIED, exercises._SOLUTION_ASKED):
        record.clear()


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


def test_an_unanswered_exercise_says_what_to_do_and_gives_no_hint(capsys):
    assert check("01.tokens", None) is False
    out = capsys.readouterr().out
    assert "Not answered yet" in out and "Replace None" in out and "Hint" not in out


def test_string_and_choice_exercises_say_how_to_answer(capsys):
    check("09.shuffle_after_batch", None)
    assert "string in quotes" in capsys.readouterr().out
    check("04.why_scale", None)
    out = capsys.readouterr().out
    assert "(a) To give every output vector length 1." in out and 'letter in quotes, e.g. "a"' in out


def test_hints_come_after_wrong_attempts_one_more_each_time_then_the_solution_is_offered(capsys):
    check("01.patchify", lambda x, p: x.reshape(x.shape[0], -1, p * p * x.shape[-1]))
    first = capsys.readouterr().out
    assert "Hint: Reshape so that each patch's rows and columns" in first and "transpose" not in first
    check("01.patchify", lambda x, p: x.reshape(x.shape[0], -1, p * p * x.shape[-1]))
    second = capsys.readouterr().out
    assert "Hint: Then bring the two patch axes" in second and "vitlib.solution" not in second
    check("01.patchify", lambda x, p: x.reshape(x.shape[0], -1, p * p * x.shape[-1]))
    assert 'vitlib.solution("01.patchify")' in capsys.readouterr().out


def test_a_function_that_raises_shows_its_exception_and_the_learners_line(capsys):
    def patchify(images, p):
        rows = images.shape[1] // p
        return images.reshape(rows, "oops")

    assert check("01.patchify", patchify) is False
    out = capsys.readouterr().out
    assert "Your function raised TypeError" in out
    assert 'return images.reshape(rows, "oops")' in out and "Not yet" not in out


def test_an_unwritten_stub_is_not_marked_wrong_and_counts_no_attempt(capsys):
    def to_conv(kernel, p, c):
        ...  # your code

    assert check("02.channels_first_to_conv", to_conv) is False
    out = capsys.readouterr().out
    assert "returns None" in out and "Not yet" not in out and "Hint" not in out
    assert exercises._WRONG_TRIES["02.channels_first_to_conv"] == 0


def test_a_choice_outside_the_options_asks_again_without_counting(capsys):
    assert check("04.why_scale", "d") is False
    assert "one of the letters 'a', 'b', 'c'" in capsys.readouterr().out
    assert exercises._WRONG_TRIES["04.why_scale"] == 0


def test_the_solution_asks_for_a_try_first_and_shows_it_after_one(capsys):
    solution("05.tokens_384")
    assert "Try it first" in capsys.readouterr().out
    solution("05.tokens_384")  # asked twice: shown anyway
    assert "577 tokens" in capsys.readouterr().out
    check("06.warmup_lr", 0.5)
    capsys.readouterr()
    solution("06.warmup_lr")
    assert "1e-3 x 1 / 10" in capsys.readouterr().out


def test_unknown_exercise_ids_are_refused_by_name():
    with pytest.raises(ValueError, match="Unknown exercise '01.nope'"):
        check("01.nope", 1)
    with pytest.raises(ValueError, match="Unknown exercise"):
        solution("01.nope")


def test_every_choice_has_feedback_for_each_option_and_a_right_letter_among_them():
    for exercise_id, exercise in EXERCISES.items():
        if isinstance(exercise, Choice):
            assert exercise.right in exercise.options, exercise_id
            assert all(text and feedback for text, feedback in exercise.options.values()), exercise_id


NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


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


def test_a_number_typed_with_commas_is_explained_not_marked_wrong(capsys):
    assert check("05.params_s16_384", (22, 196, 584)) is False
    out = capsys.readouterr().out
    assert "as a tuple of 3 numbers" in out and "22196584" in out and "Not yet" not in out
    assert exercises._WRONG_TRIES["05.params_s16_384"] == 0


def test_a_mistakes_own_feedback_does_not_use_up_the_first_hint(capsys):
    check("06.floor_02", 0.50)  # a listed mistake: its own feedback, no hint
    assert "Hint" not in capsys.readouterr().out
    check("06.floor_02", 0.3)
    assert "Hint: The floor is the entropy" in capsys.readouterr().out


def test_a_function_computing_a_common_mistake_gets_that_feedback_not_a_hint(capsys):
    assert check("02.channels_first_to_conv", lambda k, p, c: k.reshape(p, p, c, -1)) is False
    out = capsys.readouterr().out
    assert "(row, column, channel) order, as in the notebook" in out and "Hint" not in out
    assert check("02.channels_first_to_conv", lambda k, p, c: k.reshape(-1, p, p, c)) is False  # no listed mistake
    assert "Hint: Undo the flattening first" in capsys.readouterr().out


def test_the_choices_line_up_under_the_question(capsys):
    check("04.why_scale", None)
    lines = capsys.readouterr().out.splitlines()
    options = [line for line in lines if line.lstrip().startswith("(")]
    assert [line[:len(line) - len(line.lstrip())] for line in options] == ["    "] * 3, lines
    assert lines[-1].startswith("  Answer with the letter")


def test_a_stub_raising_not_implemented_is_not_written_yet(capsys):
    def to_conv(kernel, p, c):
        raise NotImplementedError

    assert check("02.channels_first_to_conv", to_conv) is False
    assert "NotImplementedError: write its body" in capsys.readouterr().out
    assert exercises._WRONG_TRIES["02.channels_first_to_conv"] == 0


def test_a_tuple_answer_typed_as_a_string_is_read_as_the_tuple(capsys):
    assert check("09.patch_linear_weight", "(64, 16)") is True



def test_s16_parameter_counts_of_the_exercise_are_those_of_the_built_models():
    from vitlib.exercise_bank import S16_AT_224, S16_AT_384

    assert vitlib.build_vit("S/16", image_size=224).count_params() == S16_AT_224
    assert vitlib.build_vit("S/16", image_size=384).count_params() == S16_AT_384


def notebook_feedback(monkeypatch, call):
    """What ``call()`` shows in a notebook: the Feedback objects passed to IPython's display."""
    import IPython.display

    shown = []
    monkeypatch.setattr(exercises, "_in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", shown.append)
    call()
    return shown


def test_in_a_notebook_right_and_wrong_are_told_apart_by_symbol_and_word_not_colour_alone(monkeypatch, capsys):
    right = notebook_feedback(monkeypatch, lambda: check("01.tokens", 576))
    wrong = notebook_feedback(monkeypatch, lambda: check("01.tokens", 588))
    assert capsys.readouterr().out == ""  # shown as HTML, not printed
    right_html, wrong_html = right[0]._repr_html_(), wrong[0]._repr_html_()
    assert "✓ Correct" in right_html and "✗" not in right_html
    assert "✗ Not yet" in wrong_html and "✓" not in wrong_html and "channel" in wrong_html
    assert right[0].text == "[01.tokens] Correct!" and wrong[0].text.startswith("[01.tokens] Not yet: 588 is not right.")


def test_notebook_feedback_wraps_between_words_and_its_plain_text_is_what_a_terminal_prints(monkeypatch, capsys):
    check("01.patchify", lambda x, p: x.reshape(x.shape[0], -1, p * p * x.shape[-1]))
    printed = capsys.readouterr().out
    exercises._WRONG_TRIES.clear(), exercises._HINTS_SHOWN.clear()
    feedback = notebook_feedback(monkeypatch, lambda: check("01.patchify",
                                                            lambda x, p: x.reshape(x.shape[0], -1, p * p * x.shape[-1])))
    assert feedback[0].text + "\n" == printed  # text/plain: the same, deterministic for nbval
    page = feedback[0]._repr_html_()
    assert "word-break: normal" in page and "overflow-wrap: break-word" in page and "break-all" not in page
    assert "<strong>Hint:</strong>" in page and page == feedback[0]._repr_html_()


def test_notebook_feedback_escapes_the_learners_text(monkeypatch):
    shown = notebook_feedback(monkeypatch, lambda: check("09.shuffle_after_batch", "<b>maybe</b>"))
    assert "<b>maybe" not in shown[0]._repr_html_() and "&lt;b&gt;maybe" in shown[0]._repr_html_()


def test_unanswered_exercises_and_solutions_have_their_own_look_in_a_notebook(monkeypatch):
    unanswered = notebook_feedback(monkeypatch, lambda: check("04.why_scale", None))[0]._repr_html_()
    assert "✎ Not answered yet" in unanswered and "(a) To give every output vector length 1." in unanswered
    first = notebook_feedback(monkeypatch, lambda: solution("05.tokens_384"))[0]._repr_html_()
    assert "Try it first" in first and "An answer of your own" in first
    shown = notebook_feedback(monkeypatch, lambda: solution("05.tokens_384"))[0]._repr_html_()
    assert "» Solution" in shown and "577 tokens" in shown
