// Two head views side by side, one per atlas of a comparison: atlas A's head (the URL's layer
// and head) and atlas B's (blayer and bhead, A's when not given), each a head plot (plot.js)
// over its own corpus, with the item's tokens under its header. The token picked in either is
// the URL's `token` (a token of A); GET /api/compare/tokens names the tokens of B that are
// that token (the same characters for any two tokenizers, the same image region for any two
// patch grids), and both sides highlight and ring what matched. Used by compare.js.

import * as api from "./api.js";
import { errorBox, fill, h, headLabel, layerHeadSelects, loading, notBuilt } from "./dom.js";
import { labelLine } from "./headstats.js";
import { HeadPlot } from "./plot.js";
import { kindColour } from "./theme.js";
import { hideTooltip, showTooltip, tokenTooltip } from "./tooltip.js";

const STRIP_TOKENS = 80; // tokens of a long item shown around the picked one

/** B's layer and head for a state: blayer/bhead, else A's, kept inside B's model. */
export function headOfB(state, b) {
  const clamp = (v, n) => Math.max(0, Math.min(n - 1, v));
  return { layer: clamp(state.blayer ?? state.layer, b.layers), head: clamp(state.bhead ?? state.head, b.heads) };
}

/** A search-like highlight of `tokens` (ids) for a plot's corpus of n tokens. */
function highlight(tokens, n) {
  const mask = new Uint8Array(n);
  for (const t of tokens) if (t >= 0 && t < n) mask[t] = 1;
  return { mask, count: tokens.length, items: 1, active: tokens.length > 0 };
}

class Side {
  /** which: "a" or "b"; ctx: {atlas, corpus, store, layouts}; pick(token, side): a token of this side was clicked. */
  constructor(which, ctx, pick) {
    this.which = which;
    this.ctx = { ...ctx, search: null }; // the plot's own ctx: its "search" is the matched tokens
    this.head = h("div", { class: "pair-head" });
    this.strip = h("div", { class: "token-strip" });
    this.plotEl = h("div", { class: "pair-plot" });
    this.body = h("div", { class: "pair-body" }, this.plotEl);
    this.el = h("div", { class: `pair-side side-${which}`, dataset: { side: which } }, this.head, this.strip, this.body);
    this.plot = new HeadPlot(this.plotEl, this.ctx, {
      onHover: (hit, at) => hit.token !== undefined && showTooltip(at.x, at.y, tokenTooltip(this.ctx, hit.token, hit.side)),
      onClick: (hit) => hit.token !== undefined && pick(hit.token, hit.side),
    });
    this.pick = pick;
    this.key = null;
    this.info = null;
  }

  /** Load the head's layout when `spec` ({layer, head, method, dim}) changed; -> false when it failed. */
  async load(spec) {
    const key = `${this.ctx.atlas.id}|${spec.layer}|${spec.head}|${spec.method}|${spec.dim}`;
    if (key === this.key && this.plot.pts) return true;
    this.key = key;
    this.body.querySelector(".error-box")?.remove();
    const wait = loading(`Loading ${headLabel(spec.layer, spec.head)}…`);
    this.body.append(wait.el);
    try {
      const [, info] = await Promise.all([
        this.plot.load(spec),
        api.headInfo(this.ctx.atlas.id, spec.layer, spec.head).catch(() => null),
      ]);
      if (key !== this.key) return false;
      this.info = info;
      this.plotEl.hidden = false;
      return true;
    } catch (e) {
      if (key !== this.key) return false;
      this.plot.pts = null;
      this.plot.purge();
      this.plotEl.hidden = true;
      this.key = null;
      const label = this.ctx.layouts.label(spec.method);
      this.body.append(e.status === 409 && this.ctx.atlas.projections?.[this.ctx.layouts.key(spec.method, spec.dim)] === undefined
        ? notBuilt(this.ctx.atlas, spec.method, label, spec.dim)
        : errorBox(e, `Could not show ${headLabel(spec.layer, spec.head)} of ${this.ctx.atlas.id}`));
      return false;
    } finally {
      wait.el.remove();
    }
  }

  /** The header: the atlas, the layer/head pickers (set(patch) moves them), the head's label. */
  renderHead(spec, set, extra = null) {
    const a = this.ctx.atlas;
    const s = this.info?.stats;
    fill(this.head,
      h("div", { class: "pair-title" }, h("span", { class: "side-letter" }, this.which.toUpperCase()), a.model?.label || a.id,
        a.model?.random ? h("span", { class: "badge warn" }, "random init") : null),
      h("div", { class: "pair-controls" }, ...layerHeadSelects(a, spec, set), extra),
      s ? labelLine(s.kind, s.label, kindColour(s.kind)) : h("div", { class: "muted small" }, "(no statistics for this head yet)"));
  }

  /** Highlight and ring `tokens` (of this side), on `side` (query or key). */
  async mark(tokens, side) {
    if (!this.plot.pts) return;
    const T = this.plot.pts.T;
    this.ctx.search = tokens.length ? highlight(tokens, T) : null;
    const first = tokens.find((t) => t < T);
    this.plot.set({ selection: first === undefined ? null : side === "key" ? T + first : first, neighbours: [] });
    await this.plot.render();
    this.plotEl.dataset.marked = tokens.join(",");
  }

  /** The item's tokens as chips (text) or the marked patches (images); a chip click picks its token. */
  renderStrip(item, marked, side) {
    const c = this.ctx.corpus;
    if (item === null || item >= c.items) {
      fill(this.strip);
      return;
    }
    const start = c.itemOffset[item];
    const len = c.itemTokens[item];
    if (c.isImage) {
      fill(this.strip, h("span", { class: "muted" }, `${c.itemName(item)}: `),
        marked.length ? marked.map((t) => h("span", { class: "chip marked", dataset: { token: t } },
          c.row[t] < 0 ? c.text[t] : `r${c.row[t]} c${c.col[t]}`,
          c.row[t] < 0 ? null : h("img", { class: "patch-thumb", src: api.patchImageUrl(this.ctx.atlas.id, item, c.position[t], 48), width: 48, height: 48, alt: "" })))
          : h("span", { class: "muted" }, "no patch picked"));
      return;
    }
    const centre = marked.length ? marked[0] : start;
    const from = Math.max(start, Math.min(centre - (STRIP_TOKENS >> 1), start + len - STRIP_TOKENS));
    const to = Math.min(start + len, from + STRIP_TOKENS);
    const chips = [];
    for (let t = from; t < to; t++) {
      chips.push(h("button", {
        class: `chip${marked.includes(t) ? " marked" : ""}${c.special[t] ? " special" : ""}`,
        dataset: { token: t }, title: `token ${c.position[t]} of ${c.itemName(item)}: ${JSON.stringify(c.text[t])}`,
        onclick: () => this.pick(t, side || "query"),
      }, c.display(t)));
    }
    fill(this.strip, h("span", { class: "muted" }, `${c.itemName(item)}: `), from > start ? "… " : null, chips, to < start + len ? " …" : null);
  }
}

export class PairedHeads {
  /** ctxA: the view's context (atlas A); status: where to say how tokens matched. */
  constructor(ctxA, status) {
    this.ctxA = ctxA;
    this.status = status;
    this.a = new Side("a", ctxA, (token, side) => ctxA.store.set({ token, side, item: null }));
    this.b = null;
    this.el = h("div", { class: "pair-cols" }, this.a.el);
  }

  /** Atlas B's context ({atlas, corpus, store, layouts}); its side is made anew. */
  setB(ctxB) {
    this.b?.plot.destroy();
    this.b?.el.remove();
    this.ctxB = ctxB;
    this.b = new Side("b", ctxB, (token, side) => this.pickInB(token, side));
    this.el.append(this.b.el);
  }

  /** A token of B was picked: pick the first token of A that it is (GET /api/compare/tokens from B to A). */
  async pickInB(token, side) {
    try {
      const m = await api.tokenMatches(this.ctxB.atlas.id, this.ctxA.atlas.id, token);
      if (m.matches.length) this.ctxA.store.set({ token: m.matches[0].token, side, item: null });
      else this.say(`Token "${this.ctxB.corpus.display(token)}" of B is no token of A.`);
    } catch (e) {
      this.say(`Tokens do not map: ${e.detail || e.message}`, true);
    }
  }

  say(text, warn = false) {
    fill(this.status, text);
    this.status.classList.toggle("warn-text", warn);
  }

  /** Draw both heads for the state; -> whether both plots drew. */
  async show(state) {
    const specA = { layer: state.layer, head: state.head, method: state.method, dim: state.dim };
    const hb = headOfB(state, this.ctxB.atlas);
    const specB = { ...hb, method: state.method, dim: state.dim };
    const colour = ["qk", "position", "item"].includes(state.color) ? state.color : "qk";
    for (const side of [this.a, this.b]) side.plot.set({ color: colour, show: state.show });
    this.renderHeads(state, specA, specB);
    const [okA, okB] = await Promise.all([this.a.load(specA), this.b.load(specB)]);
    this.renderHeads(state, specA, specB); // again: the heads' labels came with their info
    await this.pair(state);
    return okA && okB;
  }

  /** Both headers; B's pickers set blayer and bhead, and a button makes B follow A again. */
  renderHeads(state, specA, specB) {
    const set = (patch) => this.ctxA.store.set(patch);
    const following = state.blayer === null && state.bhead === null;
    this.a.renderHead(specA, set);
    this.b.renderHead(specB, (patch) => set({ blayer: patch.layer ?? specB.layer, bhead: patch.head ?? specB.head }),
      following
        ? h("span", { class: "muted small" }, "same layer and head as A")
        : h("button", { class: "btn small follow", title: "Show in B the layer and head shown in A", onclick: () => set({ blayer: null, bhead: null }) }, "follow A"));
  }

  /** Mark the state's token in A and the tokens of B that are that token. */
  async pair(state) {
    const cA = this.ctxA.corpus;
    const token = state.token !== null && state.token < cA.n ? state.token : null;
    const side = state.side;
    if (token === null) {
      const item = state.item ?? 0;
      this.a.renderStrip(item, [], side);
      this.b.renderStrip(item, [], side);
      await Promise.all([this.a.mark([], side), this.b.mark([], side)]);
      this.say("Click a point of either plot, or a token above it, to pick a token: the other atlas highlights the same token.");
      return;
    }
    const item = cA.item[token];
    this.a.renderStrip(item, [token], side);
    let matches = [];
    try {
      const m = await api.tokenMatches(this.ctxA.atlas.id, this.ctxB.atlas.id, token);
      matches = m.matches.map((t) => t.token);
      const names = m.matches.map((t) => JSON.stringify(this.ctxB.corpus.display(t.token))).join(", ");
      this.say(matches.length
        ? `"${cA.display(token)}" of A is ${names} in B (${m.how}).`
        : `"${cA.display(token)}" of A matches no token of B (${m.how}).`);
      this.b.renderStrip(matches.length ? m.matches[0].item : item, matches, side);
    } catch (e) {
      this.say(`Tokens do not map: ${e.detail || e.message}`, true);
      this.b.renderStrip(null, [], side);
    }
    await Promise.all([this.a.mark([token], side), this.b.mark(matches, side)]);
    this.status.dataset.matches = matches.join(",");
  }

  hide() {
    hideTooltip();
  }

  destroy() {
    this.a.plot.destroy();
    this.b?.plot.destroy();
  }
}
