// Keyboard shortcuts: ← → head, ↑ ↓ layer (outside the matrix), / search, Esc clear the
// selection. They move the URL state like any control.

/** atlas(): the atlas on screen or null; focusSearch(): put the caret in the search box. */
export function bindKeys(store, atlas, focusSearch) {
  document.addEventListener("keydown", (e) => {
    const tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || e.metaKey || e.ctrlKey || e.altKey) return;
    const s = store.get();
    const a = atlas();
    if (e.key === "/") {
      e.preventDefault();
      focusSearch();
    } else if (e.key === "Escape") {
      store.set({ token: null });
    } else if (a && s.view !== "matrix" && ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(e.key)) {
      e.preventDefault();
      const dh = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      const dl = e.key === "ArrowDown" ? 1 : e.key === "ArrowUp" ? -1 : 0;
      store.set({
        head: (s.head + dh + a.heads) % a.heads,
        layer: Math.min(a.layers - 1, Math.max(0, s.layer + dl)),
      });
    }
  });
}
