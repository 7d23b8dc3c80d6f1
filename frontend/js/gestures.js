// Pan, zoom and hover on an element, the same for the matrix and the 2-D head plot: the wheel
// zooms at the pointer, a press that moves drags (and is then no click), and the pointer's
// position reaches hover() at most once a frame.

const DRAG_PX = 4; // a press that moves less than this is a click
const WHEEL_ZOOM = 0.0015; // zoom factor per pixel of wheel: exp(-deltaY * this)

/**
 * on: {zoom(clientX, clientY, factor) -> false when there is nothing to zoom, drag(dx, dy)
 * (client px since the press), tap({x, y}) (a press that did not move), hover({x, y}),
 * leave()}; every one optional. -> a function that unbinds what listens on the window.
 */
export function bindGestures(el, on) {
  el.addEventListener("wheel", (e) => {
    const lines = e.deltaMode === 1 ? 40 : e.deltaMode === 2 ? 800 : 1;
    if (!on.zoom || on.zoom(e.clientX, e.clientY, Math.exp(-e.deltaY * lines * WHEEL_ZOOM)) === false) return;
    e.preventDefault();
  }, { passive: false });
  let press = null;
  let swallow = false;
  el.addEventListener("pointerdown", (e) => {
    if (e.button === 0) press = { x: e.clientX, y: e.clientY, dragging: false };
  });
  const move = (e) => {
    if (!press) return;
    const dx = e.clientX - press.x;
    const dy = e.clientY - press.y;
    if (!press.dragging && Math.hypot(dx, dy) < DRAG_PX) return;
    press.dragging = true;
    el.classList.add("dragging");
    on.drag?.(dx, dy);
  };
  const up = (e) => {
    const was = press;
    press = null;
    el.classList.remove("dragging");
    if (was?.dragging) swallow = true; // the click that ends a drag
    else if (was) on.tap?.({ x: e.clientX, y: e.clientY });
  };
  window.addEventListener("pointermove", move);
  window.addEventListener("pointerup", up);
  el.addEventListener("click", (e) => {
    if (!swallow) return;
    swallow = false;
    e.stopPropagation();
    e.preventDefault();
  }, { capture: true });
  let at = null;
  el.addEventListener("pointermove", (e) => {
    if (press?.dragging || !on.hover) return;
    const pending = at !== null;
    at = { x: e.clientX, y: e.clientY };
    if (!pending) {
      requestAnimationFrame(() => {
        const where = at;
        at = null;
        if (!press?.dragging) on.hover(where);
      });
    }
  });
  el.addEventListener("pointerleave", () => on.leave?.());
  return () => {
    window.removeEventListener("pointermove", move);
    window.removeEventListener("pointerup", up);
  };
}
