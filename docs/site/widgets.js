// The site of the collection (make site). Every widget output comes after a still picture of the widget as it opened
// (scripts/build_site.py). When the widget viewer (from unpkg.com, pinned to one @jupyter-widgets/html-manager release
// by scripts/site_hooks.py) can be reached, it renders the widget in its saved state: the still is then hidden, so
// that the picture shows once. A widget output without a still gets a note.
document.addEventListener("DOMContentLoaded", () => {
  for (const view of document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')) {
    const output = view.closest(".jp-OutputArea-child");
    const before = output && output.previousElementSibling;
    const still = before && before.querySelector(".vit-widget-still");
    if (!still) {
      const note = document.createElement("div");
      note.className = "vit-widget-note";
      note.textContent = "Interactive widget: on this page it shows at most its saved state. " +
        "To move it, run the notebook in JupyterLab (make lab).";
      view.parentElement.insertBefore(note, view);
      continue;
    }
    const rendered = () => [...view.parentElement.querySelectorAll(".widget-subarea")].some(a => a.childElementCount);
    const watcher = new MutationObserver(() => {
      if (rendered()) {
        before.hidden = true;
        watcher.disconnect();
      }
    });
    watcher.observe(view.parentElement, {childList: true, subtree: true});
  }
});
