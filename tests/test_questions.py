"""vitlib.exercises.questions: how an answer is judged: numbers typed with commas, tuples typed as strings, functions
that raise, stubs not written yet, functions computing a common mistake, choices outside the options; and that a
question cannot be written without the reason its right answer prints."""
import pytest

from vitlib.exercises import checker
from vitlib.exercises.checker import check
from vitlib.exercises.questions import Choice, Exercise

pytestmark = [pytest.mark.backend_neutral, pytest.mark.usefixtures("fresh_exercise_session")]


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
    assert checker._WRONG_TRIES["02.channels_first_to_conv"] == 0


def test_a_choice_outside_the_options_asks_again_without_counting(capsys):
    assert check("04.why_scale", "d") is False
    assert "one of the letters 'a', 'b', 'c'" in capsys.readouterr().out
    assert checker._WRONG_TRIES["04.why_scale"] == 0


def test_a_number_typed_with_commas_is_explained_not_marked_wrong(capsys):
    assert check("05.params_s16_384", (22, 196, 584)) is False
    out = capsys.readouterr().out
    assert "as a tuple of 3 numbers" in out and "22196584" in out and "Not yet" not in out
    assert checker._WRONG_TRIES["05.params_s16_384"] == 0


def test_a_function_computing_a_common_mistake_gets_that_feedback_not_a_hint(capsys):
    assert check("02.channels_first_to_conv", lambda k, p, c: k.reshape(p, p, c, -1)) is False
    out = capsys.readouterr().out
    assert "(row, column, channel) order, as in the notebook" in out and "Hint" not in out
    assert check("02.channels_first_to_conv", lambda k, p, c: k.reshape(-1, p, p, c)) is False  # no listed mistake
    assert "Hint: Undo the flattening first" in capsys.readouterr().out


def test_a_stub_raising_not_implemented_is_not_written_yet(capsys):
    def to_conv(kernel, p, c):
        raise NotImplementedError

    assert check("02.channels_first_to_conv", to_conv) is False
    assert "NotImplementedError: write its body" in capsys.readouterr().out
    assert checker._WRONG_TRIES["02.channels_first_to_conv"] == 0


def test_a_tuple_answer_typed_as_a_string_is_read_as_the_tuple(capsys):
    assert check("09.patch_linear_weight", "(64, 16)") is True


def test_a_question_without_the_reason_for_its_right_answer_is_refused():
    with pytest.raises(TypeError, match="why"):  # required, keyword only
        Exercise("How many?", 1, (), "One.")
    with pytest.raises(ValueError, match="why=' '"):
        Exercise("How many?", 1, (), "One.", why=" ")
    assert Exercise("How many?", 1, (), "One.", why="Because.").why == "Because."
    with pytest.raises(ValueError, match="right='c' is not among the options 'a', 'b'"):
        Choice("Which?", {"a": ("this", "because"), "b": ("that", "not so")}, "c")
    with pytest.raises(ValueError, match="option\\(s\\) 'b' lack"):
        Choice("Which?", {"a": ("this", "because"), "b": ("that", "")}, "a")
    assert Choice("Which?", {"a": ("this", "because"), "b": ("that", "not so")}, "a").why == "because"
