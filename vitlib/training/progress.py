"""Progress that shows while work runs and leaves one line behind: for notebook cells and the terminal.

In a notebook the line is an IPython display that is updated in place, so the saved notebook keeps only its last
state (no flood of per-step lines); in a terminal it is rewritten with a carriage return; elsewhere (a pipe, a log
file) only the last state is printed. :class:`Runs` reports a series of runs (``run_grid``, ``train_flexible``).

    with vitlib.training.progress.Line("grid") as line:        # any loop
        for i in range(n):
            ...; line.update(f"{i + 1} of {n} runs")
    model.fit(..., verbose=0, callbacks=[vitlib.training.progress.EpochLine("ViT")])   # Keras: one live line per fit
"""
import sys
import time

import keras
import numpy as np

from vitlib._notebook import in_notebook


class Line:
    """One line of progress: ``update(text)`` replaces it; the elapsed time is added. Use as a context manager."""

    def __init__(self, label=""):
        self.label, self.text, self._handle, self._start = label, "", None, time.perf_counter()
        self._notebook, self._tty = in_notebook(), sys.stdout.isatty()

    def _render(self):
        return f"{self.label + ': ' if self.label else ''}{self.text}  ({time.perf_counter() - self._start:.0f} s)"

    def update(self, text):
        self.text = text
        if self._notebook:
            from IPython.display import display

            if self._handle is None:
                self._handle = display({"text/plain": self._render()}, raw=True, display_id=True)
            else:
                self._handle.update({"text/plain": self._render()}, raw=True)
        elif self._tty:
            sys.stdout.write("\r" + self._render() + "\033[K")
            sys.stdout.flush()

    def close(self):
        if not self._notebook:
            if self._tty:
                sys.stdout.write("\n")
            elif self.text:
                print(self._render())
            sys.stdout.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class EpochLine(keras.callbacks.Callback):
    """A Keras callback: one live line per ``fit`` ("epoch 7/20  loss 0.612  val_accuracy 97.2%"), the final
    state kept. ``fit(..., verbose=0, callbacks=[EpochLine("ViT")])``."""

    def __init__(self, label=""):
        super().__init__()
        self.label = label

    def on_train_begin(self, logs=None):
        self.line = Line(self.label)
        self.epochs = self.params.get("epochs", 0)

    def on_epoch_end(self, epoch, logs=None):
        parts = [f"epoch {epoch + 1}/{self.epochs}"]
        for name, value in (logs or {}).items():
            if name in ("learning_rate",):
                continue
            parts.append(f"{name} {value:.1%}" if "accuracy" in name else f"{name} {value:.3f}")
        self.line.update("  ".join(parts))

    def on_train_end(self, logs=None):
        self.line.close()


class Runs:
    """The progress of a series of runs, each a row with ``seconds`` and ``test_accuracy``. ``progress``: True prints one
    line per model once its runs are done (:meth:`done`), False nothing, a function ``progress(done, total, row)`` is
    called after every run (:meth:`add`)."""

    def __init__(self, progress, total):
        self.progress, self.total, self.rows = progress, total, []

    def add(self, row):
        self.rows.append(row)
        if callable(self.progress):
            self.progress(len(self.rows), self.total, row)

    def done(self, name):
        """The runs of ``name`` (the rows whose ``model`` is ``name``, or that name no model) are done."""
        if self.progress is True:
            mine = [r for r in self.rows if r.get("model", name) == name]
            print(f"{name}: {len(mine)} runs, {sum(r['seconds'] for r in mine):.0f} s; mean test accuracy "
                  f"{np.mean([r['test_accuracy'] for r in mine]):.1%} ({len(self.rows)} of {self.total} runs done)",
                  flush=True)
