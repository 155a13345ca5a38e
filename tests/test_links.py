"""The project's Markdown leads somewhere: README.md, CONTRIBUTING.md, benchmarks/RESULTS.md and docs/.

Every relative link and picture names a file in the repository; every #anchor into a Markdown file names one of its
headings, by GitHub's rule and by the site's (Python-Markdown's, as mkdocs builds the same pages); every list starts
after a blank line (without one, the site renders it as one run-on line). Every picture in docs/images is one that a
script or test writes (it names the path), so none is committed by hand and left to go stale.
"""
import re
import unicodedata
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "benchmarks" / "RESULTS.md",
         *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"(!?)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"([^\"]+)\"")
LIST_ITEM = re.compile(r"\s*(?:[-*+]|\d+[.)])\s")


def prose_lines(text, code=False):
    """The lines outside fenced code blocks (a fenced line becomes ""), inline code removed unless ``code`` (a link
    written as code is not a link; a heading keeps its code)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else line if code else re.sub(r"`[^`]*`", "", line))
    return lines


def links(page):
    """(is_image, target) of every link and picture of a Markdown page."""
    text = "\n".join(prose_lines(page.read_text()))
    return [(bool(bang), target) for bang, target in LINK.findall(text)] + \
           [(False, target) for target in HTML_LINK.findall(text)]


def plain(heading):
    """A heading's text as it renders: no code marks, emphasis, links or tags."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    heading = re.sub(r"<[^>]+>", "", heading)
    return heading.replace("`", "").replace("**", "").replace("__", "").strip()


def github_slug(heading):
    """GitHub's anchor: lowercase, punctuation dropped except - and _, each space a -."""
    return re.sub(r"[^\w\- ]", "", plain(heading).lower()).replace(" ", "-")


def site_slug(heading):
    """Python-Markdown's toc anchor (the site's): ASCII, punctuation dropped, runs of spaces and - one -."""
    text = unicodedata.normalize("NFKD", plain(heading)).encode("ascii", "ignore").decode()
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", text).strip().lower())


def anchors(page):
    """The anchors of a Markdown page's headings: (GitHub's, the site's), repeated headings numbered as each does."""
    headings = [m[2] for line in prose_lines(page.read_text(), code=True) if (m := re.match(r"(#{1,6})\s+(.*?)\s*#*\s*$", line))]
    found = {"github": set(), "site": set()}
    for kind, slug, mark in (("github", github_slug, "-"), ("site", site_slug, "_")):
        seen = {}
        for heading in headings:
            anchor = slug(heading)
            found[kind].add(f"{anchor}{mark}{seen[anchor]}" if anchor in seen else anchor)
            seen[anchor] = seen.get(anchor, 0) + 1
    return found["github"], found["site"]


def is_relative(target):
    return not re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) and not target.startswith("//")


def test_the_pages_are_there():
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "CONTRIBUTING.md", "benchmarks/RESULTS.md"} <= names and len(names) > 3, names
    assert all(links(page) for page in PAGES if page.parent.name == "docs"), "a reference page without links"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_names_a_file_and_every_anchor_a_heading(page):
    broken = []
    for _, target in links(page):
        if not is_relative(target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or ROOT not in file.parents:
            broken.append(f"{target}: no such file in the repository")
        elif anchor and file.suffix == ".md":
            github, site = anchors(file)
            if anchor not in github:
                broken.append(f"{target}: no heading of {file.name} has the anchor #{anchor}")
            elif anchor not in site:
                broken.append(f"{target}: GitHub finds #{anchor}, the site does not (simplify the heading)")
    assert not broken, f"{page.relative_to(ROOT)}:\n" + "\n".join(broken)


def test_anchor_rules_follow_github_and_the_site():
    # headings as they occur in these pages
    heading = 'Notebook 10: its models and run time (CPU, 2-core "AMD EPYC" host, 2026-12-05)'
    assert github_slug(heading) == site_slug(heading) == "notebook-10-its-models-and-run-time-cpu-2-core-amd-epyc-host-2026-12-05"
    assert github_slug("`vitlib` at a glance") == "vitlib-at-a-glance"
    assert github_slug("Ti/S/B × 2 - one") == "tisb--2---one" and site_slug("Ti/S/B × 2 - one") == "tisb-2-one"
    assert github_slug("`scripts/train_notebook_models.py`") == "scriptstrain_notebook_modelspy"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_list_starts_after_a_blank_line(page):
    lines = prose_lines(page.read_text())
    run_on = [f"line {n + 1}: {line.strip()[:60]}" for n, (before, line) in enumerate(zip([""] + lines, lines))
              if LIST_ITEM.match(line) and not line.startswith(" ") and before.strip()
              and not before.startswith((" ", "|", "#", "<!--")) and not LIST_ITEM.match(before)]
    assert not run_on, f"{page.relative_to(ROOT)}: a list right after a paragraph line (add a blank line):\n" + \
        "\n".join(run_on)


def test_every_picture_the_pages_show_is_in_docs_images():
    for page in PAGES:
        for is_image, target in links(page):
            if is_image and is_relative(target):
                picture = (page.parent / target).resolve()
                assert picture.exists() and picture.parent == IMAGES, (page.name, target)
    readme = [target for is_image, target in links(ROOT / "README.md") if is_image]
    assert readme, "the README shows no picture"


def test_every_picture_in_docs_images_is_written_by_a_script_or_test_and_is_small():
    writers = {p: p.read_text() for p in [*ROOT.glob("scripts/*.py"), *ROOT.glob("tests/*.py")] if p != Path(__file__)}
    pictures = sorted(p for p in IMAGES.iterdir() if not p.name.startswith("."))
    assert pictures
    for picture in pictures:
        path = f"docs/images/{picture.name}"
        assert any(path in text for text in writers.values()), f"{path}: no script or test writes it (name the path)"
        assert picture.stat().st_size < 150_000, f"{path}: {picture.stat().st_size // 1000} KB, keep it under 150 KB"
