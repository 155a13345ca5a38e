"""mkdocs hooks of the site (mkdocs.yml: `hooks:`): tidy each notebook page's HTML before the theme and the search
index read it, and pin the scripts the pages load.

- Each notebook page opens with a banner that says how to get and run the notebook: clone the repository and
  `make lab`, or Binder (mybinder.org builds environment.yml). With `extra.github_repository` set in mkdocs.yml the
  banner links to the repository and to the notebook on Binder.
- The table of contents is rebuilt from the page's own headings: mkdocs-jupyter drops inline code from the headings
  it lists, so a heading such as "Route 1: `tf.image.extract_patches`" got a label without its code and a link to an
  id the page does not have.
- Each code cell's source is kept once: mkdocs-jupyter adds a hidden copy for its copy button, which the search index
  then showed beside the highlighted code; the button copies the highlighted code instead.
- The copy button's "Copied!" comes from the style sheet, and cell tags (test machinery) are dropped, so that neither
  shows up in search results.
- The widget viewer that nbconvert's pages load from unpkg.com is pinned to one release (nbconvert asks for any
  version, "@*"): the @jupyter-widgets/html-manager that goes with the ipywidgets of constraints.txt.
"""
import html
import re
from html.parser import HTMLParser
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.toc import get_toc

CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"
# ipywidgets -> the @jupyter-widgets/html-manager release built with it: the one whose dependencies
# (`npm view @jupyter-widgets/html-manager@VERSION dependencies`) ask for the @jupyter-widgets/base, controls and
# base-manager releases that ipywidgets' JupyterLab extension has (share/jupyter/labextensions/.../package.json).
HTML_MANAGER = {"8.1.9": "1.0.15"}
# nbconvert's fallback viewer, for widget state older than ipywidgets 7 (never the case here): its last release.
OLD_EMBED = "2.1.5"
UNPINNED = {"@jupyter-widgets/html-manager@*/": "@jupyter-widgets/html-manager@{manager}/",
            "jupyter-js-widgets@*/": f"jupyter-js-widgets@{OLD_EMBED}/"}
BANNER = """<div class="vit-run-banner">
<p><strong>Run this notebook yourself.</strong> {get}, then run <code>make lab</code> in its folder: it installs
everything and opens JupyterLab, where this notebook is <code>notebooks/{name}</code>. {binder}
<a href="setup.html">Other ways to install</a>.</p>
<p>On this page the notebook is shown as committed: its figures and numbers as they were run, each widget as a still
picture.</p>
</div>
"""

HIDDEN_COPY = re.compile(r'(<div class="highlight-ipynb[^"]*"><pre)(>.*?</pre></div>)\s*'
                         r'<div class="clipboard-copy-txt" id="(cell-\d+)">.*?</div>', re.S)
CELL_TAGS = re.compile(r'<div class="celltoolbar">(?:\s*<div class="button_container tags_button_container">.*?</div>)*'
                       r'\s*</div>', re.S)
COPIED = re.compile(r'<span class="notice" hidden(?:="")?>Copied!</span>')


class Headings(HTMLParser):
    """The headings that carry an anchor link (those of markdown cells): (level, id, text)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found, self._open, self._in_anchor = [], None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if re.fullmatch(r"h[1-6]", tag) and attrs.get("id"):
            self._open = [int(tag[1]), attrs["id"], "", False]
        elif self._open and tag == "a" and "anchor-link" in (attrs.get("class") or ""):
            self._in_anchor, self._open[3] = True, True

    def handle_endtag(self, tag):
        if tag == "a":
            self._in_anchor = False
        elif self._open and tag == f"h{self._open[0]}":
            level, anchor, text, linked = self._open
            if linked:
                self.found.append((level, anchor, " ".join(text.split())))
            self._open = None

    def handle_data(self, data):
        if self._open and not self._in_anchor:
            self._open[2] += data


def toc_tokens(page_html):
    """Nested table-of-contents tokens, as Python-Markdown's toc extension gives them to mkdocs."""
    parser = Headings()
    parser.feed(page_html)
    root = {"level": 0, "children": []}
    stack = [root]
    for level, anchor, text in parser.found:
        token = {"level": level, "id": anchor, "name": html.escape(text), "children": []}
        while stack[-1]["level"] >= level:
            stack.pop()
        stack[-1]["children"].append(token)
        stack.append(token)
    return root["children"]


def tidy(page_html):
    page_html = HIDDEN_COPY.sub(r'\1 id="\3"\2', page_html)
    page_html = CELL_TAGS.sub("", page_html)
    return COPIED.sub('<span class="notice" hidden></span>', page_html)


def html_manager_version(constraints):
    """The @jupyter-widgets/html-manager release for the ipywidgets pinned in ``constraints`` (constraints.txt)."""
    pinned = re.search(r"^ipywidgets==(\S+)", constraints, re.M)
    if pinned is None or pinned[1] not in HTML_MANAGER:
        raise PluginError(f"constraints.txt pins ipywidgets {pinned and pinned[1]}: add its @jupyter-widgets/html-manager "
                          "release to HTML_MANAGER in scripts/site_hooks.py.")
    return HTML_MANAGER[pinned[1]]


def binder_url(repository, notebook):
    """mybinder.org's address that opens ``notebook`` of GitHub repository ``repository`` (OWNER/NAME) in JupyterLab."""
    return f"https://mybinder.org/v2/gh/{repository}/HEAD?urlpath=lab/tree/notebooks/{notebook}"


def banner(notebook, repository=""):
    """How to get and open ``notebook``: clone and make lab, or Binder (linked when the repository is known)."""
    if repository:
        get = f"Clone the repository, <code>git clone https://github.com/{repository}</code>"
        binder = (f'Or open it on <a class="vit-binder" href="{binder_url(repository, notebook)}">Binder</a>, '
                  "which builds <code>environment.yml</code> (the first start takes a few minutes).")
    else:
        get = "Clone the repository with <code>git clone</code>"
        binder = ('Or open it on <a class="vit-binder" href="https://mybinder.org">Binder</a>: give it the '
                  "repository's GitHub address, and it builds <code>environment.yml</code>.")
    return BANNER.format(get=get, name=html.escape(notebook), binder=binder)


def with_banner(page_html, notebook, repository=""):
    """The banner after the page's first heading (the notebook's title), or at the top."""
    title_end = page_html.find("</h1>")
    at = title_end + len("</h1>") if title_end >= 0 else 0
    return page_html[:at] + "\n" + banner(notebook, repository) + page_html[at:]


def pinned(page_html, manager):
    for unpinned, exact in UNPINNED.items():
        page_html = page_html.replace(unpinned, exact.format(manager=manager))
    return page_html


def on_config(config):
    config.extra["html_manager"] = html_manager_version(CONSTRAINTS.read_text())
    return config


def on_page_content(page_html, page, config, files):
    if not page.file.src_path.endswith(".ipynb"):
        return page_html
    page_html = tidy(page_html)
    page.toc = get_toc(toc_tokens(page_html))
    return with_banner(page_html, page.file.src_path, config.extra.get("github_repository") or "")


def on_post_page(output, page, config):
    return pinned(output, config.extra["html_manager"])
