"""Can this Python run vitlib? If not, say in one line which Python to install (the Makefile runs this first).

    python3 scripts/check_python.py                  # the README's first command without make
    python3 scripts/check_python.py NAME [VENV]      # the Makefile's: how it called this Python, the venv it is in

The supported range is pyproject.toml's ``requires-python`` (">=3.11,<3.14"). Written to run on any Python, 2.7
included, so that an old one gets this line rather than a syntax error or a page of resolver output.
"""
from __future__ import print_function

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def supported_range(pyproject_text):
    """``((3, 11), (3, 14))`` from ``requires-python = ">=3.11,<3.14"``: the lowest minor version, the first one above."""
    match = re.search(r'^requires-python\s*=\s*"\s*>=\s*(\d+)\.(\d+)\s*,\s*<\s*(\d+)\.(\d+)\s*"', pyproject_text, re.M)
    if not match:
        raise ValueError('pyproject.toml: write requires-python as ">=3.X,<3.Y", which this check reads.')
    numbers = [int(n) for n in match.groups()]
    return tuple(numbers[:2]), tuple(numbers[2:])


def problem(version, low, high, name=None, venv=None):
    """None when ``version`` (a ``sys.version_info``-like tuple) is in [low, high), else the one line to print.
    ``name``: the Python as the Makefile calls it (the line then says how to run make), None without make."""
    if low <= tuple(version[:2]) < high:
        return None
    newest = "%d.%d" % (high[0], high[1] - 1)
    if name is None:
        then = " and make the venv with it: python%s -m venv .venv (on Windows: py -%s -m venv .venv)" % (newest, newest)
    else:
        then = "%s and run make again with PYTHON=python%s" % (", delete " + venv if venv else "", newest)
    return ("%s is Python %s; vitlib and its pinned TensorFlow need Python %d.%d to %s. Install Python %s (python.org, "
            "your package manager, or `uv python install %s`)%s"
            % (name or sys.executable, ".".join(str(n) for n in version[:3]), low[0], low[1], newest, newest, newest,
               then))


def main(argv):
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        low, high = supported_range(f.read())
    line = problem(tuple(sys.version_info), low, high, *argv[:2])
    if line:
        print(line, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
