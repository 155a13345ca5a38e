"""Execute notebooks top to bottom in a fresh kernel and save them with their outputs.

Used by `make notebooks` so that the committed outputs come from one deterministic run of the project's
own command. Prints each notebook's wall time.
"""
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYTHONHASHSEED", "0")

total = 0.0
for path in map(Path, sys.argv[1:]):
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    total += seconds
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # per-cell timestamps would change on every run
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nbformat.write(nb, path)
    print(f"{path}: {seconds:.1f} s", flush=True)
print(f"total: {total:.1f} s")
