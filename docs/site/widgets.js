// The site of the collection (make site): above every widget output, say what it is and where it moves.
// A static page shows a widget in its saved state at most (when unpkg.com, the widget viewer's home, can be
// reached); moving it needs a running kernel.
document.addEventListener("DOMContentLoaded", () => {
  for (const view of document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')) {
    const note = document.createElement("div");
    note.className = "vit-widget-note";
    note.textContent = "Interactive widget: on this page it shows at most its saved state. " +
      "To move it, run the notebook in JupyterLab (make lab).";
    view.parentElement.insertBefore(note, view);
  }
});
