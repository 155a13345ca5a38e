"""Progress that shows while work runs and leaves one line behind: for notebook cells and the terminal.

In a notebook the line is an IPython display that is updated in place, so the saved notebook keeps only its last
state (no flood of per-step lines); in a terminal it is rewritten with a carriage return; elsewhere (a pipe, a log
file) only the last state is printed.

    with vitlib.training.progress.Line("grid") as line:        # any loop
        for i in range(n):
            ...; line.update(f"{i + 1} of {n} runs")
    model.fit(..., verbose=0, callbacks=[vitlib.training.progress.EpochLine("ViT")])   # Keras: one live line per fit
"""
import sys
import time

import keras


def in_notebook():
    """Whether this runs in a Jupyter kernel (JupyterLab, nbval)."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


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
