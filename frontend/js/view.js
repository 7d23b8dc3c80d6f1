// The base classes of the view modules: View holds what app.js hands every view (context,
// pane, side pane), the hooks it may call, and the "view:drawn" event every view dispatches
// when what it shows is painted; ItemView is the part of the one-item views (sentence.js,
// image.js) that picks the item, steps through items and loads its attention.

import * as api from "./api.js";
import { clear, errorBox, fill, h, headModeSwitch, layerHeadSelects, loading, painted } from "./dom.js";

export class View {
  constructor(ctx, el, side, name) {
    this.ctx = ctx;
    this.el = el;
    this.side = side;
    this.name = name;
    this.key = null; // what is drawn; a view reloads when its state's key differs
    this.toolbar = h("div", { class: "toolbar" });
  }

  /**
   * Tell whoever listens (the app, tests, benchmarks) that this view has drawn: a
   * "view:drawn" event bubbling from the view's element, detail {view, ms, ...timings}.
   */
  announceDrawn(ms, timings = {}) {
    this.el.dispatchEvent(new CustomEvent("view:drawn", { bubbles: true, detail: { view: this.name, ms, ...timings } }));
  }

  onProgress() {}

  exportTarget() {
    return null;
  }

  hide() {}

  destroy() {}
}

/**
 * One item (a sentence or an image) at a time: a toolbar to step through items, layers and
 * heads, a status line and a body with the item's attention. Subclasses provide
 * draw(res, state, item) (into the emptied body), reselect(state, item, changed) (the same
 * attention, another selection: true when handled without a reload), itemTitle(item, go)
 * and renderSide(state, item).
 */
export class ItemView extends View {
  constructor(ctx, el, side, name) {
    super(ctx, el, side, name);
    this.status = h("div", { class: "status-line" }, "\u00a0");
    this.body = h("div", { class: `${name}-body` });
    this.el.append(this.toolbar, this.status, this.body);
  }

  /** The item the state points at: its item, else the selected token's, else the first. */
  itemOf(state) {
    const c = this.ctx.corpus;
    if (state.item !== null) return state.item;
    if (state.token !== null && state.token < c.n) return c.item[state.token];
    return 0;
  }

  async show(state, changed) {
    const item = this.itemOf(state);
    const key = this.attentionKey(state, item);
    this.renderToolbar(state, item);
    this.renderSide(state, item);
    if (key === this.key && this.reselect(state, item, changed)) return;
    await this.loadAttention(key, state, item);
  }

  /** Names what loadAttention draws: atlas, item, layer and head (or all heads). */
  attentionKey(state, item) {
    return `${this.ctx.atlas.id}|${item}|${state.layer}|${state.mode === "all" ? "all" : state.head}`;
  }

  /** The selected token's position within this item, or null when it lies elsewhere. */
  pinnedPosition(state, item) {
    const c = this.ctx.corpus;
    if (state.token === null || state.token >= c.n || c.item[state.token] !== item) return null;
    return c.position[state.token];
  }

  /**
   * Fetch the item's attention for the state's head (or every head of the layer) and draw
   * it into the emptied body; an answer that comes after another load began is dropped, a
   * failure shows as an error in the body.
   */
  async loadAttention(key, state, item) {
    const name = this.ctx.corpus.itemName(item);
    this.key = key;
    clear(this.body);
    this.status.textContent = "\u00a0";
    this.body.append(loading(`Loading attention of ${name}…`).el);
    const t0 = performance.now();
    try {
      const res = await api.itemAttention(this.ctx.atlas.id, item, state.layer, state.mode === "all" ? null : state.head);
      if (key !== this.key) return;
      clear(this.body);
      this.draw(res, state, item);
      await painted();
      this.announceDrawn(performance.now() - t0);
    } catch (e) {
      if (key !== this.key) return;
      this.key = null;
      fill(this.body, errorBox(e, `Could not load the attention of ${name}`));
    }
  }

  renderToolbar(state, item) {
    const c = this.ctx.corpus;
    const set = (patch, push = false) => this.ctx.store.set(patch, { push });
    const go = (i) => set({ item: Math.max(0, Math.min(c.items - 1, i)), token: null });
    fill(this.toolbar,
      h("button", { class: "btn ghost", title: `Previous ${this.name}`, onclick: () => go(item - 1) }, "‹"),
      this.itemTitle(item, go),
      h("button", { class: "btn ghost", title: `Next ${this.name}`, onclick: () => go(item + 1) }, "›"),
      h("span", { class: "sep" }),
      ...layerHeadSelects(this.ctx.atlas, state, set, { headDisabled: state.mode === "all" }),
      headModeSwitch(state, (patch) => set(patch, true)),
      h("span", { class: "grow" }),
      h("button", { class: "btn ghost", onclick: () => set({ view: "head" }, true) }, "Back to head view"),
    );
  }
}
