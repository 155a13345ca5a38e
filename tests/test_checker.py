"""vitlib.exercises.checker: what a learner sees: hints only after a wrong try, the solution after a first try, the
feedback's look in a notebook and its plain text in a terminal."""
import pytest

from vitlib.exercises import checker
from vitlib.exercises.bank import EXERCISES
from vitlib.exercises.checker import check, solution

# the checker runs learners' notebook code, which runs on TensorFlow
pytestmark = [pytest.mark.backend_neutral, pytest.mark.usefixtures("fresh_exercise_session")]

# A common mistake for each exercise, with a word its feedback must contain (None: only the generic hint).


def test_an_unanswered_exercise_says_what_to_do_and_gives_no_hint(capsys):
    assert check("01.tokens", None) is False
    out = capsys.readouterr().out
    assert "Not answered yet" in out and "Replace None" in out and "Hint" not in out


def test_string_and_choice_exercises_say_how_to_answer(capsys):
    check("09.shuffle_after_batch", None)
    assert "string in quotes" in capsys.readouterr().out
    check("04.why_scale", None)
    out = capsys.readouterr().out
    assert "(a) So that each row of attention weights sums to 1." in out and 'letter in quotes, e.g. "a"' in out


def test_hints_come_after_wrong_attempts_one_more_each_time_then_the_solution_is_offered(capsys):
    check("01.patchify", lambda x, p: x.reshape(x.shape[0], -1, p * p * x.shape[-1]))
    first = capsys.readouterr().out
    assert "Hint: Reshape so that each patch's rows and columns" in first and "transpose" not in first
    check("01.patchify", lambda x, p: x.reshape(x.shape[0], -1, p * p * x.shape[-1]))
    second = capsys.readouterr().out
    assert "Hint: Then bring the two patch axes" in second and "vitlib.solution" not in second
    check("01.patchify", lambda x, p: x.reshape(x.shape[0], -1, p * p * x.shape[-1]))
    assert 'vitlib.solution("01.patchify")' in capsys.readouterr().out


def test_the_solution_asks_for_a_try_first_and_shows_it_after_one(capsys):
    solution("05.tokens_384")
    assert "Try it first" in capsys.readouterr().out
    solution("05.tokens_384")  # asked twice: shown anyway
    assert "577 tokens" in capsys.readouterr().out
    check("06.smoothing_true_class", 0.5)
    capsys.readouterr()
    solution("06.smoothing_true_class")
    assert "0.9 + 0.1 / 100 = 0.901" in capsys.readouterr().out


def test_unknown_exercise_ids_are_refused_by_name():
    with pytest.raises(ValueError, match="Unknown exercise '01.nope'"):
        check("01.nope", 1)
    with pytest.raises(ValueError, match="Unknown exercise"):
        solution("01.nope")


def test_an_unknown_id_gets_a_short_message_that_names_what_is_near():
    with pytest.raises(ValueError) as far:
        check("99.nothing", 1)
    assert "'99.nothing'" in str(far.value) and len(str(far.value)) < 300  # not the whole bank, however it grows
    assert "01" in str(far.value) and max(EXERCISES)[:2] in str(far.value)  # the notebooks that have exercises
    with pytest.raises(ValueError, match=r"Did you mean '07\.rollout_seeds'") as typo:
        check("07.rolout_seeds", "a")
    assert len(str(typo.value)) < 300


def test_a_wrong_choice_shows_the_choices_again(capsys):
    exercise_id, exercise = next((k, e) for k, e in EXERCISES.items() if hasattr(e, "options"))
    wrong = next(letter for letter in exercise.options if letter != exercise.right)
    assert check(exercise_id, wrong) is False
    out = capsys.readouterr().out
    for letter, (text, _) in exercise.options.items():
        assert f"({letter}) {text}" in out  # every lettered choice, not only the feedback on the one picked




def test_a_mistakes_own_feedback_does_not_use_up_the_first_hint(capsys):
    check("06.floor_02", 0.50)  # a listed mistake: its own feedback, no hint
    assert "Hint" not in capsys.readouterr().out
    check("06.floor_02", 0.3)
    assert "Hint: The floor is the entropy" in capsys.readouterr().out


def test_the_choices_line_up_under_the_question(capsys):
    check("04.why_scale", None)
    lines = capsys.readouterr().out.splitlines()
    options = [line for line in lines if line.lstrip().startswith("(")]
    assert [line[:len(line) - len(line.lstrip())] for line in options] == ["    "] * 3, lines
    assert lines[-1].startswith("  Answer with the letter")


def notebook_feedback(monkeypatch, call):
    """What ``call()`` shows in a notebook: the Feedback objects passed to IPython's display."""
    import IPython.display

    shown = []
    monkeypatch.setattr(checker, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", shown.append)
    call()
    return shown


def test_in_a_notebook_right_and_wrong_are_told_apart_by_symbol_and_word_not_colour_alone(monkeypatch, capsys):
    right = notebook_feedback(monkeypatch, lambda: check("01.tokens", 576))
    wrong = notebook_feedback(monkeypatch, lambda: check("01.tokens", 588))
    assert capsys.readouterr().out == ""  # shown as HTML, not printed
    right_html, wrong_html = right[0]._repr_html_(), wrong[0]._repr_html_()
    why = EXERCISES["01.tokens"].why
    assert "✓ Correct" in right_html and "✗" not in right_html and why in right_html  # the verdict and its reason
    assert "✗ Not yet" in wrong_html and "✓" not in wrong_html and "channel" in wrong_html
    assert right[0].text == f"[01.tokens] Correct! {why}"
    assert wrong[0].text.startswith("[01.tokens] Not yet: 588 is not right.")


def test_notebook_feedback_wraps_between_words_and_its_plain_text_is_what_a_terminal_prints(monkeypatch, capsys):
    check("01.patchify", lambda x, p: x.reshape(x.shape[0], -1, p * p * x.shape[-1]))
    printed = capsys.readouterr().out
    checker._WRONG_TRIES.clear(), checker._HINTS_SHOWN.clear()
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
    assert "✎ Not answered yet" in unanswered and "(a) So that each row of attention weights sums to 1." in unanswered
    first = notebook_feedback(monkeypatch, lambda: solution("05.tokens_384"))[0]._repr_html_()
    assert "Try it first" in first and "An answer of your own" in first
    shown = notebook_feedback(monkeypatch, lambda: solution("05.tokens_384"))[0]._repr_html_()
    assert "» Solution" in shown and "577 tokens" in shown
