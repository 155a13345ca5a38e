"""What each part of the speed layer (vitlib.speed) buys on what a learner waits for: each part on and off.

    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/speed_parts.py --repeats 3

Configurations: ``all off`` (``VITLIB_SPEED=off``: plain Keras), ``all on`` (what the recipes run), and ``all on``
without one part, for each of the four parts (``VITLIB_SPEED_PARTS``, see ``vitlib/speed/__init__.py``), so that a
part's contribution is ``all on`` against ``all on`` without it. Workloads (TensorFlow backend, float32, the CPU),
the first three by default:

- ``notebook06``: notebook 06's two trainings, as its cells run them: the digits recipe with the validation images held
  out, then the final run, each ``vitlib.training.loop.train`` at the recipe's 20 epochs (``--epochs-nb``).
- ``mnist_5k``: the ``mnist_5k`` recipe through ``loop.train`` for ``--epochs-mnist`` epochs, twice in one process
  (seed 0, then seed 1: a rerun with another seed, where a kept compiled model is reused).
- ``grid``: ``vitlib.training.experiments.run_grid`` as notebooks 08 and 10 run many short runs: two architectures
  (the digits recipe's ViT with the paper's patches and with shifted patches) x ``--grid-seeds`` seeds x
  ``--grid-steps`` steps.
- ``digits``: as ``mnist_5k``, the digits recipe for ``--epochs`` epochs.

Timed: each ``train`` call (data, model, compile, fit, test: what a learner waits for; ``wall_s`` is their sum), the
first run's first epoch (tracing included) and its steady step (the later epochs' median per step); for the grid the
whole call, its first run and the others.

Every (configuration, workload) runs in a fresh process; within a repeat the workloads go in turn, and for each all
configurations back to back in an order rotated by one every repeat, so that a change of the machine's load falls on
all of them alike. Prints one JSON line per process, then Markdown tables: the median over repeats, the ratios of the
medians to ``all on`` and ``all off``, and for each ``all on`` without a part the per-repeat ratio to the same
repeat's ``all on`` (median and range), in wall seconds and in CPU seconds (``cpu_s``: the workload's process time,
all threads, which other jobs on a shared machine inflate less). Each row records /proc/loadavg before and after its
process.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PARTS = ("gradients", "adamw", "compiled", "seeding")
CONFIGS = {"all off": {"VITLIB_SPEED": "off"}, "all on": {"VITLIB_SPEED": "on", "VITLIB_SPEED_PARTS": "all"},
           **{f"no {part}": {"VITLIB_SPEED": "on", "VITLIB_SPEED_PARTS": ",".join(p for p in PARTS if p != part)}
              for part in PARTS}}
WORKLOADS = ("notebook06", "mnist_5k", "grid", "digits")
DEFAULT_WORKLOADS = "notebook06,mnist_5k,grid"
# What a learner waits for in each workload (the keep/remove reading), then the finer timings.
MAIN = {"digits": "wall_s", "mnist_5k": "wall_s", "grid": "wall_s", "notebook06": "wall_s"}
ALSO_PAIRED = ("cpu_s",)  # the same workload in CPU seconds, less sensitive to other jobs on the machine
RUNS = ("run1_s", "run2_s", "first_epoch_s", "step_ms")
DETAIL = {"digits": RUNS, "mnist_5k": RUNS, "grid": ("first_run_s", "later_runs_s"), "notebook06": RUNS}
DETAIL = {workload: (*ALSO_PAIRED, *metrics) for workload, metrics in DETAIL.items()}


def loadavg():
    return open("/proc/loadavg").read().split()[0]


def epoch_timer():
    """Wrap ``keras.Model.fit`` so that every fit records each epoch's seconds and step count (its timer is the first
    callback: the others' end-of-epoch work, saving models, is not counted). Returns the list of fits' records."""
    import keras

    fits, fit = [], keras.Model.fit

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.steps, self.last = [], [], -1

        def on_epoch_begin(self, epoch, logs=None):
            self.start, self.last = time.perf_counter(), -1

        def on_train_batch_end(self, batch, logs=None):
            self.last = max(self.last, batch)

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)
            self.steps.append(self.last + 1)

    def timed_fit(self, *args, callbacks=None, **kwargs):
        timer = EpochTimer()
        fits.append(timer)
        return fit(self, *args, callbacks=[timer, *(callbacks or [])], **kwargs)

    keras.Model.fit = timed_fit
    return fits


def recipe_runs(name, runs, epochs):
    """``runs``: a list of (seed, train_on_validation); each one ``loop.train`` of the recipe, timed."""
    import numpy as np

    from vitlib.training import loop, recipes

    fits, out, row = epoch_timer(), {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for k, (seed, on_validation) in enumerate(runs, 1):
            overrides = {"seed": seed, "train_on_validation": on_validation, "keep": "last"}
            if epochs:
                overrides.update(epochs=epochs, warmup_epochs=min(3, epochs - 1))
            config = recipes.recipe(name, **overrides)
            done = len(fits)
            start = time.perf_counter()
            result = loop.train(config, f"{folder}/run{k}", verbose=0)
            out[f"run{k}_s"] = time.perf_counter() - start
            timer = fits[done]  # the run's fit (no teacher in these recipes)
            row[f"run{k}_test_accuracy"] = result["test_accuracy"]
            row[f"run{k}_loss"] = result["history"]["loss"][-1]
            if k == 1:
                out["first_epoch_s"] = timer.seconds[0]
                if len(timer.seconds) > 1:
                    out["step_ms"] = 1000 * float(np.median([s / n for s, n in zip(timer.seconds[1:], timer.steps[1:])]))
                row["steps_per_epoch"] = timer.steps[0]
    out["wall_s"] = sum(v for k, v in out.items() if k.startswith("run"))
    return {**{k: round(v, 4 if k == "step_ms" else 3) for k, v in out.items()}, **row}


def grid(steps, seeds):
    import vitlib
    from vitlib.training import experiments, recipes

    data = vitlib.load_dataset("digits")
    model = recipes.RECIPES["digits"]["model"]
    shape = dict(image_size=data.image_shape[:2], channels=data.image_shape[2], num_classes=data.num_classes)
    builders = {stem: (lambda seed, stem=stem: vitlib.build_vit(**{**model, **shape, "stem": stem}))
                for stem in ("patch", "shifted")}
    seconds = []
    start = time.perf_counter()
    rows = experiments.run_grid(builders, data, seeds=seeds, steps=steps,
                                progress=lambda done, total, row: seconds.append(time.perf_counter()))
    wall = time.perf_counter() - start
    per_run = [b - a for a, b in zip([start, *seconds], seconds)]  # each run: build, compile or reuse, fit, test
    return {"wall_s": round(wall, 3), "first_run_s": round(per_run[0], 3), "later_runs_s": round(sum(per_run[1:]), 3),
            "runs": len(rows), "test_accuracy": [round(r["test_accuracy"], 4) for r in rows]}


def one(workload, args):
    """The workload's timings, and ``cpu_s``: the CPU seconds of the whole workload (all threads), which other jobs
    on the machine inflate less than the wall time."""
    start = time.process_time()
    row = _workload(workload, args)
    return {**row, "cpu_s": round(time.process_time() - start, 3)}


def _workload(workload, args):
    import keras

    assert keras.backend.backend() == "tensorflow", "the speed layer acts on TensorFlow only"
    if workload == "digits":
        return recipe_runs("digits", [(0, True), (1, True)], args.epochs)
    if workload == "mnist_5k":
        return recipe_runs("mnist_5k", [(0, True), (1, True)], args.epochs_mnist)
    if workload == "notebook06":  # the watched run (validation held out), then the final one: 06's cells
        return recipe_runs("digits", [(0, False), (0, True)], args.epochs_nb)
    return grid(args.grid_steps, tuple(range(args.grid_seeds)))


def run_process(config, workload, args):
    env = {k: v for k, v in os.environ.items() if k not in ("VITLIB_SPEED", "VITLIB_SPEED_PARTS")}
    env.update(KERAS_BACKEND="tensorflow", **CONFIGS[config])
    cmd = [sys.executable, __file__, "--one", workload, "--epochs", str(args.epochs), "--epochs-mnist",
           str(args.epochs_mnist), "--epochs-nb", str(args.epochs_nb), "--grid-steps", str(args.grid_steps),
           "--grid-seeds", str(args.grid_seeds)]
    before, start = loadavg(), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = next((text for text in out.stdout.splitlines() if text.startswith("RESULT ")), None)
    if line is None:
        print(out.stderr[-3000:], file=sys.stderr)
        return None
    return {"config": config, "workload": workload, **json.loads(line[7:]),
            "process_s": round(time.perf_counter() - start, 1), "loadavg": [before, loadavg()]}


def table(rows, workloads, configs):
    lines = ["| workload | time | " + " | ".join(configs) + " |", "|---|---|" + "---|" * len(configs)]
    paired = ["| workload | time | part left out | all on without it / all on: median (range over repeats) | verdict |",
              "|---|---|---|---|---|"]
    for workload in workloads:
        for metric in (MAIN[workload], *DETAIL[workload]):
            by = {c: [r[metric] for r in rows if r["workload"] == workload and r["config"] == c and metric in r]
                  for c in configs}
            med = {c: statistics.median(v) for c, v in by.items() if v}
            if "all on" not in med:
                continue
            cells = [f"{med[c]:.3g} ({med[c] / med['all on']:.2f}"
                     + (f", {med[c] / med['all off']:.2f})" if "all off" in med else ")") if c in med else ""
                     for c in configs]
            lines.append(f"| {workload} | {metric}{' (waited for)' if metric == MAIN[workload] else ''} | "
                         + " | ".join(cells) + " |")
            for part in PARTS if metric in (MAIN[workload], *ALSO_PAIRED) else ():
                ratios = [r[metric] / on[metric] for r in rows for on in rows
                          if r["workload"] == on["workload"] == workload and r["config"] == f"no {part}"
                          and on["config"] == "all on" and r["repeat"] == on["repeat"]]
                if ratios:
                    verdict = "gains >= 10 %" if statistics.median(ratios) >= 1.10 else "< 10 %"
                    paired.append(f"| {workload} | {metric} | {part} | {statistics.median(ratios):.3f} "
                                  f"({min(ratios):.3f}-{max(ratios):.3f}) | {verdict} |")
    return "\n".join(lines), "\n".join(paired)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", default=DEFAULT_WORKLOADS, help=f"of {', '.join(WORKLOADS)}")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--epochs", type=int, default=5, help="digits: epochs per run (0: the recipe's)")
    parser.add_argument("--epochs-mnist", type=int, default=2, help="mnist_5k: epochs per run (0: the recipe's 20)")
    parser.add_argument("--epochs-nb", type=int, default=0, help="notebook06: epochs per run (0: the recipe's 20)")
    parser.add_argument("--grid-steps", type=int, default=100, help="grid: optimiser steps per run (a multiple of 10)")
    parser.add_argument("--grid-seeds", type=int, default=3)
    parser.add_argument("--rows", help="print the tables of the JSON lines an earlier run printed (a file) instead")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(args.one, args)), flush=True)
        return
    workloads, configs = args.workloads.split(","), args.configs.split(",")
    if args.rows:
        rows = [json.loads(line) for line in open(args.rows) if line.startswith('{"config"')]
        print("\n\n".join(table(rows, [w for w in WORKLOADS if any(r["workload"] == w for r in rows)],
                                [c for c in CONFIGS if any(r["config"] == c for r in rows)])))
        return
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    avx512 = any("avx512f" in line for line in open("/proc/cpuinfo") if line.startswith("flags"))
    print(json.dumps({"cpu": cpu, "cores": os.cpu_count(), "avx512": avx512, "loadavg": loadavg(),
                      "args": vars(args)}), flush=True)
    rows, start = [], time.perf_counter()
    for repeat in range(args.repeats):
        order = configs[repeat % len(configs):] + configs[:repeat % len(configs)]
        for workload in workloads:
            for config in order:
                row = run_process(config, workload, args)
                if row is not None:
                    rows.append({**row, "repeat": repeat})
                    print(json.dumps(rows[-1]), flush=True)
    loads = [float(x) for r in rows for x in r["loadavg"]]
    print(f"\n{len(rows)} processes in {time.perf_counter() - start:.0f} s; CPU {cpu}, {os.cpu_count()} cores, "
          f"AVX-512 {'yes' if avx512 else 'no'}; 1-minute loadavg {min(loads, default=0):.2f}-"
          f"{max(loads, default=0):.2f} (median {statistics.median(loads) if loads else 0:.2f})\n")
    medians, paired = table(rows, workloads, configs)
    print("Seconds (step: milliseconds), median over repeats (ratio to all on, ratio to all off):\n")
    print(medians + "\n\n" + paired)


if __name__ == "__main__":
    main()
