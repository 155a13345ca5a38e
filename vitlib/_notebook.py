"""Whether vitlib runs in a Jupyter kernel: the one test that the exercise checker (feedback as HTML) and the
training's progress (one line updated in place) ask."""
import sys


def in_notebook():
    """True inside a Jupyter kernel (JupyterLab, nbval, Colab), where output can be HTML and updated in place; False in
    a terminal, an IPython console or a script. A kernel has imported IPython already, so nothing is imported here."""
    ipython = sys.modules.get("IPython")
    return ipython is not None and getattr(ipython.get_ipython(), "kernel", None) is not None
