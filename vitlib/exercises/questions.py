"""What an exercise is and how it judges an answer: :class:`Exercise` (one right answer: a value, a string, a predicate
or a reference function) and :class:`Choice` (multiple choice, with feedback on every option). Each has a ``why``: the
one-line reason a right answer is right, shown with the verdict. The questions are in :mod:`vitlib.exercises.bank`,
the feedback a learner sees in :mod:`vitlib.exercises.checker`.
"""
import dataclasses
import os
import traceback

import numpy as np
from keras import ops


@dataclasses.dataclass(frozen=True)
class Exercise:
    """A question with one right answer: a number, a string, a predicate ``answer -> bool``, or (with ``inputs``)
    a reference function the learner's function must match on ``inputs()``, a list of argument tuples. ``why`` (keyword
    only) is the one-line reason shown with a right answer."""

    question: str
    expected: object
    hints: tuple  # one more is shown with each wrong attempt
    solution: str
    mistakes: tuple = ()  # ((wrong answer, predicate or, for a code exercise, wrong function; what it was), ...)
    inputs: object = None
    why: str = dataclasses.field(kw_only=True)

    def __post_init__(self):
        if not isinstance(self.why, str) or not self.why.strip():
            raise ValueError(f"Exercise {self.question[:40]!r}...: why={self.why!r}; expected the one-line reason a "
                             "right answer is right, shown with the verdict (why=\"...\").")

    def how_to_answer(self):
        if self.inputs is not None:
            return "Write the function in the cell, then pass it instead of None."
        if isinstance(self.expected, str):
            return 'Answer with a string in quotes, e.g. "my answer".'
        return "Replace None with your answer."

    def judge(self, answer):
        """(verdict, detail): verdict is "right", "wrong", "mistake" (a common one, explained), "raised" or
        "unwritten"."""
        if self.inputs is not None:
            verdict, detail = _judge_function(answer, self.expected, self.inputs)
            for wrong, feedback in self.mistakes if verdict == "wrong" and callable(answer) else ():
                if _judge_function(answer, wrong, self.inputs)[0] == "right":  # it computes this wrong function
                    return "mistake", feedback
            return verdict, detail
        if isinstance(self.expected, (int, float)) and isinstance(answer, tuple) and answer \
                and all(isinstance(a, int) for a in answer):
            joined = "".join(f"{a:03d}" if i else str(a) for i, a in enumerate(answer))
            return "unwritten", (f"Python reads {', '.join(map(str, answer))} as a tuple of {len(answer)} numbers: write "
                                 f"the number without commas, e.g. {joined}, or with underscores.")
        if _matches(self.expected, answer):
            return "right", None
        for wrong, feedback in self.mistakes:
            if _matches(wrong, answer):
                return "mistake", feedback
        return "wrong", None


@dataclasses.dataclass(frozen=True)
class Choice:
    """A multiple-choice question: ``options`` maps a letter to (text, feedback on choosing it). The right option's
    feedback is the reason it is right (``why``); every wrong option's names the misconception behind it."""

    question: str
    options: dict
    right: str
    solution: str = ""

    def __post_init__(self):
        if self.right not in self.options:
            raise ValueError(f"Choice {self.question[:40]!r}...: right={self.right!r} is not among the options "
                             f"{', '.join(map(repr, self.options))}; give the letter of the right option.")
        empty = [letter for letter, (text, feedback) in self.options.items() if not text.strip() or not feedback.strip()]
        if empty:
            raise ValueError(f"Choice {self.question[:40]!r}...: option(s) {', '.join(map(repr, empty))} lack a text or "
                             "feedback; every option needs both (the right one's feedback is its reason).")

    @property
    def why(self):
        return self.options[self.right][1]

    @property
    def hints(self):
        return ()

    def how_to_answer(self):
        listed = "\n".join(f"  ({letter}) {text}" for letter, (text, _) in self.options.items())
        return f'{listed}\nAnswer with the letter in quotes, e.g. "{next(iter(self.options))}".'

    def judge(self, answer):
        letter = answer.strip().strip("()").lower() if isinstance(answer, str) else None
        if letter not in self.options:
            return "unwritten", f"Answer with one of the letters {', '.join(map(repr, self.options))}, in quotes."
        return ("right" if letter == self.right else "wrong"), self.options[letter][1]


def _matches(expected, answer):
    if callable(expected):
        return bool(expected(answer))
    if isinstance(expected, str):
        return isinstance(answer, str) and answer.strip().lower() == expected
    try:
        return bool(np.isclose(float(answer), float(expected), rtol=1e-6, atol=0))
    except (TypeError, ValueError):
        return False


def _judge_function(answer, reference, make_inputs):
    if not callable(answer):
        return "wrong", f"Pass the function itself (its name, without brackets), not {type(answer).__name__}."
    for args in make_inputs():
        try:
            got = answer(*args)
        except NotImplementedError:
            return "unwritten", "Your function raises NotImplementedError: write its body first."
        except Exception as error:  # the learner's code: show what went wrong and where
            return "raised", _describe(error)
        if got is None:
            return "unwritten", "Your function returns None: write its body (and its return statement) first."
        got = np.asarray(ops.convert_to_numpy(got))
        want = np.asarray(ops.convert_to_numpy(reference(*args)))
        shapes = ", ".join(str(np.shape(a)) for a in args if hasattr(a, "shape"))
        if got.shape != want.shape:
            return "wrong", f"For inputs of shape {shapes} it returns shape {got.shape}; expected {want.shape}."
        if not np.allclose(got, want, atol=1e-5):
            return "wrong", f"For inputs of shape {shapes} the shape is right ({got.shape}) but the values are not."
    return "right", None


def _describe(error):
    """The exception's type and message, and the last line of the learner's code it passed through."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # vitlib's own frames are not the learner's
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not os.path.abspath(f.filename).startswith(here) and "site-packages" not in f.filename]
    where = f"\n  in your line {frames[-1].lineno}: {frames[-1].line}" if frames and frames[-1].line else ""
    return f"Your function raised {type(error).__name__}: {error}{where}"
