"""mkdocs hooks of the site (mkdocs.yml: `hooks:`): tidy each notebook page's HTML before the theme and the search
index read it.

- The table of contents is rebuilt from the page's own headings: mkdocs-jupyter drops inline code from the headings
  it lists, so a heading such as "Route 1: `tf.image.extract_patches`" got a label without its code and a link to an
  id the page does not have.
- Each code cell's source is kept once: mkdocs-jupyter adds a hidden copy for its copy button, which the search index
  then showed beside the highlighted code; the button copies the highlighted code instead.
- The copy button's "Copied!" comes from the style sheet, and cell tags (test machinery) are dropped, so that neither
  shows up in search results.
"""
import html
import re
from html.parser import HTMLParser

from mkdocs.structure.toc import get_toc

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


def on_page_content(page_html, page, config, files):
    if not page.file.src_path.endswith(".ipynb"):
        return page_html
    page_html = tidy(page_html)
    page.toc = get_toc(toc_tokens(page_html))
    return page_html
