"""Build the static site of the collection from the committed, executed notebooks (nothing is re-run).

    python scripts/build_site.py [--out DIR]      # default build/site; `make site` runs this

Stages the pages into build/site-src (the README as the landing page, with its links pointed at the pages; the
notebooks; CONTRIBUTING and the benchmark results; MathJax from the jupyter-server-mathjax package, so equations
render offline), checks that mkdocs.yml's navigation lists every notebook, then runs `mkdocs build`.
"""
import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "build" / "site-src"
WIDGET_NOTE = (
    "\n> **On this site** the notebooks are shown as committed: figures, tables and equations as they were run. "
    "The widgets (the patch explorer, the similarity and attention explorers) appear in their saved state where "
    "the browser can reach unpkg.com for the widget viewer; to move them, run the notebook in JupyterLab "
    "(`make lab`).\n"
)

# The packaged MathJax 2 carries the STIX-Web fonts only (not its default TeX fonts): say so, or it asks for files
# it does not have. mkdocs.yml loads this file after MathJax's own configuration (`config=...,vit-site`).
MATHJAX_FONTS = """MathJax.Hub.Config({
  "HTML-CSS": {availableFonts: ["STIX-Web"], preferredFont: "STIX-Web", webFont: "STIX-Web", imageFont: null},
  SVG: {font: "STIX-Web"}
});
MathJax.Ajax.loadComplete("[MathJax]/config/vit-site.js");
"""


def landing_page(readme):
    """The README with its links pointed at the site's pages and files."""
    text = readme.replace("](notebooks/", "](").replace("](docs/images/", "](images/")
    text = text.replace("](benchmarks/RESULTS.md", "](RESULTS.md")
    first_section = text.index("\n## ")
    return text[:first_section] + "\n" + WIDGET_NOTE + text[first_section:]


def stage():
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    (STAGE / "index.md").write_text(landing_page((ROOT / "README.md").read_text()))
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for notebook in notebooks:
        shutil.copy(notebook, STAGE / notebook.name)
    for page in ("CONTRIBUTING.md", "benchmarks/RESULTS.md", "LICENSE", "CITATION.cff"):
        shutil.copy(ROOT / page, STAGE / Path(page).name)
    shutil.copytree(ROOT / "docs" / "images", STAGE / "images")
    for asset in (ROOT / "docs" / "site").iterdir():  # the site's own style sheet and script
        shutil.copy(asset, STAGE / asset.name)
    try:
        import jupyter_server_mathjax
    except ImportError:
        sys.exit("The site needs its tools: pip install -e '.[site]' (make site does this).")
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", STAGE / "mathjax")
    (STAGE / "mathjax" / "config" / "vit-site.js").write_text(MATHJAX_FONTS)
    nav = (ROOT / "mkdocs.yml").read_text()
    missing = [n.name for n in notebooks if n.name not in nav]
    if missing:
        sys.exit(f"mkdocs.yml's nav does not list {', '.join(missing)}: add a line for each, in order.")
    links = set(re.findall(r"\]\(([^)#]+)", (STAGE / "index.md").read_text()))
    broken = sorted(link for link in links if "://" not in link and not (STAGE / link).exists())
    if broken:
        sys.exit(f"The landing page links to files the site does not have: {', '.join(broken)}.")
    return notebooks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site", help="where to write the site")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    notebooks = stage()
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--quiet", "--clean", "-f", str(ROOT / "mkdocs.yml"),
                    "--site-dir", str(args.out.resolve())], check=True, cwd=ROOT)
    print(f"Built {len(notebooks)} notebooks into {args.out} in {time.perf_counter() - start:.0f} s; "
          f"open {args.out / 'index.html'}")


if __name__ == "__main__":
    main()
