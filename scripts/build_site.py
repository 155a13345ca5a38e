"""Build the static site of the collection from the committed, executed notebooks (nothing is re-run).

    python scripts/build_site.py [--out DIR]      # default build/site; `make site` runs this

Stages the pages into build/site-src (the README as the landing page, its sections in a learner-first order and its
links pointed at the pages; the notebooks, each widget output with a still picture before it; CONTRIBUTING and the
benchmark results; MathJax from the jupyter-server-mathjax package, so equations render offline), checks that
mkdocs.yml's navigation lists every notebook, then runs `mkdocs build` (scripts/site_hooks.py tidies the notebook
pages on the way).
"""
import argparse
import json
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
    "Each widget (the patch explorer, the similarity and attention explorers) shows as a still picture of the view it "
    "opened with; to move it, run the notebook in JupyterLab (`make lab`).\n"
)
# The landing page puts the learner first: what you will learn and how to start, then the library and training; the
# README's sections for contributors (and its paragraphs about testing) follow under one heading.
FIRST_SECTIONS = ("The notebooks", "Quick start", "Binder", "Conda", "GPUs")
CONTRIBUTOR_SECTIONS = ("Tests", "Testing", "The site", "Versions and platforms", "Layout")
LAST_SECTIONS = ("Licence and citing",)
CONTRIBUTOR_WORDS = ("make test", "nbval", "ruff")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
STILL_CAPTION = ("A still picture of this widget as it opened. To move it, run the notebook in JupyterLab "
                 "(<code>make lab</code>).")

# The packaged MathJax 2 carries the STIX-Web fonts only (not its default TeX fonts): say so, or it asks for files
# it does not have. mkdocs.yml loads this file after MathJax's own configuration (`config=...,vit-site`).
MATHJAX_FONTS = """MathJax.Hub.Config({
  "HTML-CSS": {availableFonts: ["STIX-Web"], preferredFont: "STIX-Web", webFont: "STIX-Web", imageFont: null},
  SVG: {font: "STIX-Web"}
});
MathJax.Ajax.loadComplete("[MathJax]/config/vit-site.js");
"""


def blocks(text):
    """Paragraphs and fenced code blocks of markdown text (a code block is one block, blank lines and all)."""
    found, current, fenced = [], [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not line.strip() and not fenced:
            if current:
                found.append("\n".join(current))
            current = []
        else:
            current.append(line)
    return found + (["\n".join(current)] if current else [])


def sections(text):
    """(preamble, [(title, body)]) of markdown text split at its level-2 headings (outside code blocks)."""
    parts, fenced = [["", []]], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if line.startswith("## ") and not fenced:
            parts.append([line[3:].strip(), []])
        else:
            parts[-1][1].append(line)
    return "\n".join(parts[0][1]), [(title, "\n".join(lines)) for title, lines in parts[1:]]


def for_contributors(block):
    return any(word in block for word in CONTRIBUTOR_WORDS)


def split_learner_part(body):
    """A section's blocks for learners, and those about testing (a code block loses only its testing lines)."""
    learner, testing = [], []
    for block in blocks(body):
        if block.startswith("```"):
            lines = block.splitlines()
            kept = [line for line in lines[1:-1] if not for_contributors(line)]
            moved = [line for line in lines[1:-1] if for_contributors(line)]
            if kept:
                learner.append("\n".join([lines[0], *kept, lines[-1]]))
            if moved:
                testing.append("\n".join([lines[0], *moved, lines[-1]]))
        else:
            (testing if for_contributors(block) else learner).append(block)
    return learner, testing


def demote(body):
    """Headings one level down (## -> ###), outside code blocks."""
    out, fenced = [], False
    for line in body.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        out.append("#" + line if line.startswith("#") and not fenced else line)
    return "\n".join(out)


def landing_page(readme):
    """The README in a learner-first order (what you learn, how to start, the library, then contributors' material),
    with its links pointed at the site's pages and files."""
    text = readme.replace("](notebooks/", "](").replace("](docs/images/", "](images/")
    text = text.replace("](benchmarks/RESULTS.md", "](RESULTS.md")
    preamble, parts = sections(text)
    order = {title: i for i, title in enumerate(FIRST_SECTIONS)}
    learners = sorted((p for p in parts if p[0] not in CONTRIBUTOR_SECTIONS + LAST_SECTIONS),
                      key=lambda p: order.get(p[0], len(order)))  # stable: the rest keep the README's order
    page, testing = [preamble.rstrip() + "\n", WIDGET_NOTE], []
    for title, body in learners:
        kept, moved = split_learner_part(body) if title in FIRST_SECTIONS else (blocks(body), [])
        page.append(f"## {title}\n\n" + "\n\n".join(kept) + "\n")
        testing += moved
    page.append("## For contributors\n\nHow the collection is tested and built; [Contributing](CONTRIBUTING.md) says "
                "how to add to it.\n")
    if testing:
        page.append("### Tests\n\n" + "\n\n".join(testing) + "\n")
    page += [f"### {title}\n{demote(body)}" for title, body in parts if title in CONTRIBUTOR_SECTIONS]
    page += [f"## {title}\n{body}" for title, body in parts if title in LAST_SECTIONS]
    return "\n".join(page)


def saved_picture(state, model_id):
    """The PNG (base64) of the first Image widget inside widget ``model_id``, from a notebook's saved widget state."""
    model = state.get(model_id)
    if model is None:
        return None
    if model.get("model_name") == "ImageModel":
        return next((b["data"] for b in model.get("buffers", []) if b.get("path") == ["value"]), None)
    children = model.get("state", {}).get("children", [])
    return next((png for child in children if (png := saved_picture(state, child.removeprefix("IPY_MODEL_")))), None)


def with_stills(notebook):
    """The notebook (JSON text) with a still picture before every widget output: the output's own ``image/png``
    (vitlib's widgets add one), else the first picture in the widget's saved state. nbconvert shows a widget output
    by its widget view alone, which needs the widget viewer from unpkg.com; docs/site/widgets.js hides the still
    once the live widget has rendered."""
    nb = json.loads(notebook)
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb["cells"]:
        outputs = []
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            png = view and (output["data"].get("image/png") or saved_picture(state, view.get("model_id")))
            if png:
                png = "".join(png.split()) if isinstance(png, str) else "".join(png).replace("\n", "")
                outputs.append({"output_type": "display_data", "metadata": {}, "data": {
                    "text/html": f'<figure class="vit-widget-still"><img src="data:image/png;base64,{png}" '
                                 f'alt="A still picture of the widget"><figcaption>{STILL_CAPTION}</figcaption></figure>',
                    "text/plain": "A still picture of the widget."}})
            outputs.append(output)
        if "outputs" in cell:
            cell["outputs"] = outputs
    return json.dumps(nb)


def stage():
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    (STAGE / "index.md").write_text(landing_page((ROOT / "README.md").read_text()))
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for notebook in notebooks:
        (STAGE / notebook.name).write_text(with_stills(notebook.read_text()))
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
