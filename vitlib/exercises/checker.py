"""The notebooks' exercise checker: ``check("01.tokens", 576)`` says whether an answer is right.

How it teaches: an unanswered exercise says only what to do; a right answer says in one line why it is right; a
wrong answer gets feedback on the mistake when it is a common one (``1728`` tokens for a 384x384 image -> "you counted
each colour channel separately"), else a hint, a more detailed one with each further try; a function that raises
shows its exception and the learner's own line; a stub that returns nothing yet is "not written", not wrong;
``solution("01.tokens")`` shows the worked answer once something has been tried.
In a terminal the feedback is printed as plain text; in a notebook it is shown styled (:class:`Feedback`): the verdict
as a symbol and a word as well as a colour, lines wrapped between words. The questions themselves are in
:mod:`vitlib.exercises.bank`, what they are and how they judge in :mod:`vitlib.exercises.questions`.
"""
import collections
import difflib
import html
import re
import textwrap

from vitlib._notebook import in_notebook
from vitlib.exercises.bank import EXERCISES

# verdict -> (symbol, word, frame colour, background): right and wrong told apart by symbol and word, not colour alone
LOOKS = {
    "right": ("✓", "Correct", "#1a7f37", "#eaf6ec"),
    "wrong": ("✗", "Not yet", "#b42318", "#fdeceb"),
    "raised": ("✗", "Your function raised an error", "#b42318", "#fdeceb"),
    "open": ("✎", "Not marked yet", "#57606a", "#f3f4f6"),
    "solution": ("»", "Solution", "#1f5fa8", "#ecf2fb"),
}
_TEXT = "color: #1f2328; white-space: pre-wrap; overflow-wrap: break-word; word-break: normal;"


class Feedback:
    """What :func:`check` and :func:`solution` say. ``text`` is the plain text printed in a terminal; in a notebook
    the object shows itself as HTML (``_repr_html_``), with ``text`` as its ``text/plain``, so both stay
    deterministic for nbval.

    ``lead`` opens the plain text ("Correct!", "Not yet:"); the HTML shows it as the verdict's word beside its symbol
    (without a lead: the verdict's own word in ``LOOKS``).
    ``more``: further lines (hints, the choices), each indented as in the plain text."""

    def __init__(self, exercise_id, verdict, lead, message="", more=()):
        self.exercise_id, self.verdict, self.lead, self.message, self.more = exercise_id, verdict, lead, message, tuple(more)

    @property
    def text(self):
        first = " ".join(filter(None, [f"[{self.exercise_id}]", self.lead, self.message]))
        return "\n".join([first, *self.more])

    def __str__(self):
        return self.text

    def _repr_pretty_(self, printer, cycle):
        printer.text(self.text)

    def _repr_html_(self):
        symbol, word, frame, background = LOOKS[self.verdict]
        word = self.lead.rstrip(".:!") or word
        message = self.message[:1].upper() + self.message[1:] if self.lead.endswith(":") else self.message
        parts = [f'<div style="{_TEXT}"><strong style="color: {frame}">{symbol} {html.escape(word)}</strong> '
                 f'<span style="color: #57606a; font-size: 0.85em">[{html.escape(self.exercise_id)}]</span></div>']
        if message:
            parts.append(f'<div style="{_TEXT}">{html.escape(message)}</div>')
        for line in self.more:
            indent = (len(line) - len(line.lstrip())) / 2
            body = html.escape(line.strip())
            body = re.sub(r"^(Hint:|Stuck\?)", r"<strong>\1</strong>", body)
            parts.append(f'<div style="{_TEXT} margin-left: {indent:g}em">{body}</div>')
        return (f'<div class="vit-feedback vit-feedback-{self.verdict}" role="status" style="border-left: 4px solid '
                f'{frame}; background: {background}; padding: 0.4em 0.8em; margin: 0.2em 0; max-width: 60em; '
                f'line-height: 1.45; font-family: var(--jp-content-font-family, system-ui, sans-serif);">'
                + "".join(parts) + "</div>")


def _say(feedback):
    if in_notebook():
        from IPython.display import display

        display(feedback)
    else:
        print(feedback.text)


_WRONG_TRIES = collections.Counter()  # exercise id -> wrong attempts in this session
_HINTS_SHOWN = collections.Counter()  # exercise id -> hints shown so far (a mistake's own feedback is not a hint)
_TRIED = set()  # ids answered at least once (right or wrong)
_SOLUTION_ASKED = set()


def _exercise(exercise_id):
    if exercise_id not in EXERCISES:
        raise ValueError(_unknown(exercise_id))
    return EXERCISES[exercise_id]


def _unknown(exercise_id, most=4):
    """A short message for an id not in the bank, naming what is near: the closest ids, or else the notebook's own
    (ids are "NN.name", NN the notebook); it stays short however many exercises the bank holds."""
    given = str(exercise_id)
    near = difflib.get_close_matches(given, EXERCISES, n=most, cutoff=0.6)
    if not near:
        near = [key for key in EXERCISES if key.split(".")[0] == given.split(".")[0]][:most]
    hint = (f"Did you mean {', '.join(map(repr, near))}?" if near else
            f"Ids are 'NN.name', NN a notebook from {min(EXERCISES)[:2]} to {max(EXERCISES)[:2]}.")
    return f"Unknown exercise {exercise_id!r}. {hint} (Copy the id from the cell that asks the question.)"


def check(exercise_id, answer):
    """Say whether ``answer`` is right, with feedback on a wrong one, and return True or False."""
    exercise = _exercise(exercise_id)
    if answer is None or answer is Ellipsis:
        _say(Feedback(exercise_id, "open", "Not answered yet.", exercise.question,
                      textwrap.indent(exercise.how_to_answer(), "  ").splitlines()))
        return False
    verdict, detail = exercise.judge(answer)
    if verdict == "unwritten":
        _say(Feedback(exercise_id, "open", "", detail))
        return False
    _TRIED.add(exercise_id)
    if verdict == "right":
        _say(Feedback(exercise_id, "right", "Correct!", exercise.why))
        return True
    _WRONG_TRIES[exercise_id] += 1
    if verdict == "raised":
        _say(Feedback(exercise_id, "raised", "", detail))
        return False
    shown = getattr(answer, "__name__", repr(answer))
    more = []
    if exercise.hints and verdict == "wrong":  # a common mistake's own feedback is worth more than a hint
        more.append(f"  Hint: {exercise.hints[min(_HINTS_SHOWN[exercise_id], len(exercise.hints) - 1)]}")
        _HINTS_SHOWN[exercise_id] += 1
    if _WRONG_TRIES[exercise_id] >= max(len(exercise.hints), 1) + 1:
        more.append(f'  Stuck? vitlib.solution("{exercise_id}") shows a worked answer.')
    if hasattr(exercise, "options"):  # a multiple-choice question: its choices again, to pick another
        more.extend(["  The choices again:", *exercise.how_to_answer().splitlines()[:-1]])
    _say(Feedback(exercise_id, "wrong", "Not yet:", f"{shown} is not right." + (f" {detail}" if detail else ""), more))
    return False


def solution(exercise_id):
    """Show the worked answer: after a first try, or when asked a second time."""
    exercise = _exercise(exercise_id)
    if exercise_id not in _TRIED and exercise_id not in _SOLUTION_ASKED:
        _SOLUTION_ASKED.add(exercise_id)
        _say(Feedback(exercise_id, "open", "Try it first:",
                      "an answer of your own, even a wrong one, teaches more than reading one. "
                      f"(Run vitlib.solution({exercise_id!r}) again to see it anyway.)"))
        return
    _say(Feedback(exercise_id, "solution", "Solution.", exercise.solution))

