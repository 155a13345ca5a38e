"""The README's picture: what notebook 07's trained ViT learned in its position embeddings, beside the same model
before training. Reads the committed models (nothing is trained) and writes docs/images/position_grid.png.

    .venv/bin/python scripts/readme_figure.py

Trained: the "translated" arm, seed 0 (digits placed anywhere on the canvas), its table read from
notebooks/models/07/translated_0/last.keras with h5py, its test accuracy from MANIFEST.json. Untrained: the same
run's table before its first step, which the run kept in layout.npz (``epoch_0``). Each panel tiles every patch's
similarity map at the patch's place (vitlib's ``similarity_snapshots_figure``, as in notebook 07), one colour scale.
"""
import json
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "notebooks/models/07"
RUN = "translated_0"
OUT = ROOT / "docs/images/position_grid.png"


def position_table(keras_file):
    """The position embeddings of a saved vitlib ViT, read from the .keras zip (no model is built)."""
    import h5py

    with zipfile.ZipFile(keras_file) as archive, archive.open("model.weights.h5") as weights:
        with h5py.File(weights) as h5:
            found = []
            h5.visititems(lambda name, item: found.append(item[()]) if "position_embedding" in name
                          and isinstance(item, h5py.Dataset) else None)
    (table,) = found
    return table


def main():
    from vitlib.inspection import analysis, figures

    run = next(r for r in json.loads((MODELS / "MANIFEST.json").read_text())["runs"] if r["folder"] == RUN)
    trained = position_table(MODELS / RUN / "last.keras")
    untrained = analysis.read_snapshots(MODELS / RUN / "layout.npz")["epoch_0"]
    grid = (6, 6)  # the recipe's 12x12 canvas in 2x2 patches
    panels = {
        f"trained: digits anywhere on the canvas\ntest accuracy {100 * run['test_accuracy']:.0f} %":
            analysis.position_similarity(trained, grid, num_prefix_tokens=1),
        "untrained: the same model\nbefore its first step": analysis.position_similarity(untrained, grid, num_prefix_tokens=1),
    }
    figure = figures.similarity_snapshots_figure(
        panels, "position-embedding similarity: each patch's map at its place")
    figure.set_size_inches(6.4, 3.4)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(OUT, dpi=110)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
