"""vitlib.progress: one line that shows while work runs and stays behind as its last state."""
import io
import sys

import keras
import numpy as np
import pytest

from vitlib.training import progress


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.backend_independent
def test_a_line_in_a_pipe_prints_only_its_last_state(monkeypatch, capsys):
    with progress.Line("grid") as line:
        for i in range(3):
            line.update(f"{i + 1} of 3 runs")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("grid: 3 of 3 runs  (")


@pytest.mark.backend_independent
def test_a_line_in_a_terminal_rewrites_itself(monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    with progress.Line() as line:
        line.update("one")
        line.update("two")
    text = terminal.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert text.split("\r")[-1].startswith("two  (")


@pytest.mark.backend_independent
def test_a_line_in_a_notebook_updates_one_display(monkeypatch):
    shown = []

    class Handle:
        def update(self, data, raw):
            shown[-1] = data["text/plain"]

    def display(data, raw, display_id):
        assert raw and display_id
        shown.append(data["text/plain"])
        return Handle()

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr("IPython.display.display", display)
    with progress.Line("fit") as line:
        for i in range(5):
            line.update(f"epoch {i + 1}/5")
    assert len(shown) == 1 and shown[0].startswith("fit: epoch 5/5")


def test_epoch_line_reports_every_epoch_and_keeps_the_last(capsys):
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, epochs=3, verbose=0, validation_data=(x, y), callbacks=[progress.EpochLine("toy")])
    out = capsys.readouterr().out.strip()
    assert out.startswith("toy: epoch 3/3  ") and "val_accuracy" in out and "%" in out and "\n" not in out


@pytest.mark.backend_independent
def test_in_notebook_asks_whether_a_jupyter_kernel_runs_the_code(monkeypatch):
    import types

    from vitlib import _notebook

    class Kernel:  # IPython's shell in a Jupyter kernel (ZMQInteractiveShell, Colab's) has a `kernel`
        kernel = object()

    for shell, expected in ((Kernel(), True), (object(), False), (None, False)):  # a kernel, an IPython console, none
        monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda shell=shell: shell))
        assert _notebook.in_notebook() is expected
    monkeypatch.delitem(sys.modules, "IPython")
    assert _notebook.in_notebook() is False  # no IPython loaded: a script, and nothing is imported to find out
    assert "IPython" not in sys.modules
    from vitlib.exercises import checker

    assert progress.in_notebook is checker.in_notebook is _notebook.in_notebook  # one test for the live line and HTML


@pytest.mark.backend_independent
def test_runs_reports_each_run_to_a_function_and_each_model_once_done(capsys):
    seen = []
    runs = progress.Runs(lambda done, total, row: seen.append((done, total, row["seed"])), 3)
    for seed in (0, 1, 2):
        runs.add({"model": "ViT", "seed": seed, "seconds": 1.0, "test_accuracy": 0.5})
    runs.done("ViT")
    assert seen == [(1, 3, 0), (2, 3, 1), (3, 3, 2)] and capsys.readouterr().out == ""
    printed = progress.Runs(True, 3)
    printed.add({"model": "CNN", "seconds": 2.0, "test_accuracy": 0.75})
    printed.done("CNN")
    printed.add({"seconds": 1.0, "test_accuracy": 0.25})  # a row without a model belongs to the name it is done under
    printed.done("FlexiViT")
    assert capsys.readouterr().out.splitlines() == [
        "CNN: 1 runs, 2 s; mean test accuracy 75.0% (1 of 3 runs done)",
        "FlexiViT: 1 runs, 1 s; mean test accuracy 25.0% (2 of 3 runs done)"]
    progress.Runs(False, 1).done("ViT")
    assert capsys.readouterr().out == ""
