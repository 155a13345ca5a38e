"""The notebooks' exercises.

- :mod:`vitlib.exercises.questions`: what an exercise is (``Exercise``, ``Choice``) and how it judges an answer;
- :mod:`vitlib.exercises.bank`: the questions of every notebook (``EXERCISES``);
- :mod:`vitlib.exercises.checker`: ``check`` and ``solution``, the feedback a learner sees (also ``vitlib.check``).
"""
