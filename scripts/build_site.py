"""Build the static site of the collection from the committed, executed notebooks (nothing is re-run).

    python scripts/build_site.py [--out DIR]      # default build/site; `make site` runs this

Stages the pages into build/site-src (the README as the landing page; the notebooks, each widget output with a still
picture before it; the reference pages of docs/, CONTRIBUTING and the benchmark results, every relative link pointed
at the site's own copy of its target; MathJax from the jupyter-server-mathjax package, so equations render offline),
checks that mkdocs.yml's navigation lists every notebook and page and that no staged link is broken, then runs
`mkdocs build` (scripts/site_hooks.py tidies the notebook pages on the way and puts the banner on each).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "build" / "site-src"
# The Markdown pages of the site: repository path -> the page's name on the site (and in mkdocs.yml's nav).
PAGES = {"README.md": "index.md", "CONTRIBUTING.md": "CONTRIBUTING.md", "benchmarks/RESULTS.md": "RESULTS.md",
         **{f"docs/{p.name}": p.name for p in sorted((ROOT / "docs").glob("*.md"))}}
OTHER_FILES = {"LICENSE": "LICENSE", "CITATION.cff": "CITATION.cff"}  # linked from the README, copied as they are
LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")  # [text](target) and ![alt](target)
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


def site_path(repo_path):
    """Where a repository file lives on the site, or None if the site has no copy of it."""
    if repo_path in PAGES:
        return PAGES[repo_path]
    if repo_path in OTHER_FILES:
        return OTHER_FILES[repo_path]
    if re.fullmatch(r"notebooks/\d\d_[^/]+\.ipynb", repo_path):
        return repo_path.removeprefix("notebooks/")
    if repo_path.startswith("docs/images/"):
        return repo_path.removeprefix("docs/")
    return None


def with_site_links(text, page):
    """The Markdown text of repository file ``page`` with every relative link pointed at the site's copy of its
    target (a target the site does not have is left as it is: stage() then refuses to build)."""
    def point(match):
        target = match[2]
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            return match[0]
        path, hash_, anchor = target.partition("#")
        found = site_path(os.path.normpath(os.path.join(os.path.dirname(page), path)))
        return match[1] + found + hash_ + anchor + match[3] if found else match[0]
    return LINK.sub(point, text)


def broken_links(stage):
    """Relative links of the staged Markdown pages whose file the site does not have: (page, link)."""
    found = []
    for page in sorted(stage.glob("*.md")):
        for _, target, _ in LINK.findall(page.read_text()):
            path = target.partition("#")[0]
            if path and not re.match(r"[a-z]+:", target) and not (stage / path).exists():
                found.append((page.name, target))
    return found


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
    for page, name in PAGES.items():
        (STAGE / name).write_text(with_site_links((ROOT / page).read_text(), page))
    for page, name in OTHER_FILES.items():
        shutil.copy(ROOT / page, STAGE / name)
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for notebook in notebooks:
        (STAGE / notebook.name).write_text(with_stills(notebook.read_text()))
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
    missing = [name for name in [n.name for n in notebooks] + list(PAGES.values()) if f": {name}" not in nav]
    if missing:
        sys.exit(f"mkdocs.yml's nav does not list {', '.join(missing)}: add a line for each, in order.")
    broken = broken_links(STAGE)
    if broken:
        sys.exit("Pages link to files the site does not have: "
                 + ", ".join(f"{page} -> {link}" for page, link in broken) + ".")
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
