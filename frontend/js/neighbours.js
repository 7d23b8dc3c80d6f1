// The neighbours panel of the head view: the selected token (its text in its sentence, or
// its patch), how its neighbours are ranked (`by`, `k`: URL state) and the list the API
// answers, each neighbour with its score; clicking one selects it.

import * as api from "./api.js";
import { errorBox, fill, fmt, h } from "./dom.js";
import { NEIGHBOUR_COUNTS, NEIGHBOURS_BY } from "./state.js";
import { hideTooltip, showTooltip, tokenTooltip } from "./tooltip.js";

const byLabel = (by, side) => ({
  attention: side === "query" ? "attention: keys it attends to" : "attention: queries attending to it",
  joint: "nearest in joint space",
  projection: "nearest in this layout",
})[by];

/** Which neighbours a state asks for: a load for another one is dropped when it answers. */
const askedFor = (s) => `${s.atlas}|${s.layer}|${s.head}|${s.method}|${s.dim}|${s.token}|${s.side}|${s.by}|${s.k}`;

export class NeighboursPanel {
  constructor(ctx, el) {
    this.ctx = ctx;
    this.el = el;
  }

  /** The selected point's row in a layout of T tokens (queries first, then keys), or null. */
  static selectedRow(state, T) {
    if (state.token === null || state.token >= T) return null;
    return state.side === "key" ? T + state.token : state.token;
  }

  /** Nothing selected (or a token this atlas lacks). */
  showNone(state, T) {
    fill(this.el, h("div", { class: "muted" }, state.token !== null ? `Token ${state.token} does not exist (this atlas has ${T} tokens).` : "No token selected."));
  }

  /**
   * Show the selected token, fetch its neighbours and list them. Resolves to the neighbours
   * with their rows in the layout ([{token, side, score, row, label, ...}]), or null when
   * the load failed or the state moved on meanwhile.
   */
  async load(state, T) {
    this.render(state, {});
    try {
      const res = await api.neighbours(this.ctx.atlas.id, state.layer, state.head, {
        token: state.token, side: state.side, k: state.k, by: state.by, method: state.method, dim: state.dim,
      });
      if (askedFor(this.ctx.store.get()) !== askedFor(state)) return null;
      const list = res.neighbours.map((n) => ({ ...n, row: n.side === "key" ? T + n.token : n.token, label: this.ctx.corpus.display(n.token) }));
      this.render(state, { res, list });
      return list;
    } catch (e) {
      if (askedFor(this.ctx.store.get()) === askedFor(state)) this.render(state, { err: e });
      return null;
    }
  }

  render(state, { res, list, err }) {
    const c = this.ctx.corpus;
    const t = state.token;
    const set = (patch, push) => this.ctx.store.set(patch, { push });
    const itemView = c.isImage ? "image" : "sentence";
    fill(this.el,
      h("div", { class: "card-title selected-token" },
        h("span", { class: `side-badge ${state.side}` }, state.side === "query" ? "Q" : "K"),
        h("b", { class: "selected-text" }, c.isImage && c.row[t] >= 0 ? `patch r${c.row[t]} c${c.col[t]}` : c.display(t)),
        h("button", { class: "btn ghost small", title: "Clear the selection (Esc)", onclick: () => set({ token: null }) }, "✕")),
      c.isImage
        ? h("div", { class: "sel-image" }, c.row[t] >= 0 ? h("img", { class: "patch-thumb", src: api.patchImageUrl(this.ctx.atlas.id, c.item[t], c.position[t], 64), width: 64, height: 64, alt: "" }) : null, h("span", { class: "muted" }, c.itemName(c.item[t])))
        : h("div", { class: "sel-sentence" }, c.sentenceNode(t, { maxTokens: 40 })),
      h("div", { class: "muted small" }, `${c.itemName(c.item[t])} · position ${c.position[t]} · token #${t}`),
      h("div", { class: "row-actions" },
        h("button", { class: "btn small", onclick: () => set({ view: itemView, item: c.item[t] }, true) }, `Open ${itemView} view`),
        h("button", { class: "btn ghost small", onclick: () => set({ side: state.side === "query" ? "key" : "query" }) }, `Show its ${state.side === "query" ? "key" : "query"}`)),
      this.controls(state),
      err ? errorBox(err, "Could not load the neighbours") : list ? this.list(state, list) : h("div", { class: "muted small" }, "Loading neighbours…"),
      res ? h("div", { class: "muted small" }, res.metric ? `score: ${res.metric}` : state.by === "attention" ? "score: scaled dot product q·k (before softmax)" : "score: Euclidean distance") : null,
    );
  }

  /** The `by` and `k` pickers: they move the URL state. */
  controls(state) {
    const set = (patch) => this.ctx.store.set(patch);
    const by = h("select", { class: "neighbours-by", "aria-label": "Neighbours by", onchange: (e) => set({ by: e.target.value }) },
      ...NEIGHBOURS_BY.map((b) => h("option", { value: b }, byLabel(b, state.side))));
    by.value = state.by;
    const k = h("select", { class: "neighbours-k", "aria-label": "How many", onchange: (e) => set({ k: Number(e.target.value) }) },
      ...NEIGHBOUR_COUNTS.map((n) => h("option", { value: n }, `top ${n}`)));
    k.value = state.k;
    return h("div", { class: "neighbour-controls" }, by, k);
  }

  list(state, list) {
    const c = this.ctx.corpus;
    const el = h("ol", { class: "neighbours", dataset: { count: list.length } });
    const scores = list.map((n) => n.score);
    const lo = Math.min(0, ...scores);
    const hi = Math.max(...scores);
    for (const n of list) {
      const rel = state.by === "attention" ? (hi > lo ? (n.score - lo) / (hi - lo) : 1) : hi > 0 ? 1 - n.score / (hi * 1.05) : 1;
      el.append(h("li", {
        class: "neighbour",
        dataset: { token: n.token, side: n.side },
        title: c.isImage ? `${c.itemName(n.item)}` : c.itemText[n.item],
        onclick: () => this.ctx.store.set({ token: n.token, side: n.side, item: null }, { push: true }),
        onmouseenter: (e) => showTooltip(e.clientX, e.clientY, tokenTooltip(this.ctx, n.token, n.side)),
        onmouseleave: hideTooltip,
      },
      h("span", { class: `side-badge ${n.side}` }, n.side === "query" ? "Q" : "K"),
      h("span", { class: "n-text" }, c.isImage && c.row[n.token] >= 0 ? `r${c.row[n.token]} c${c.col[n.token]}` : (n.text ?? c.display(n.token)).trim() || "␣"),
      h("span", { class: "n-meta" }, `${c.isImage ? "img" : "s"}${n.item} p${n.position}`),
      h("span", { class: "n-bar" }, h("i", { style: { width: `${Math.round(100 * Math.max(0.03, rel))}%` } })),
      h("span", { class: "n-score" }, fmt(n.score, 3))));
    }
    return el;
  }
}
