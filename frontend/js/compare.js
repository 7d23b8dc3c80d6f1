// Compare view: the atlas on screen (A) beside another (B, the URL's `b`): two models on the
// same corpus (a trained model and its random-init twin, two model families) or one model on
// two corpora. Two panes: the two maps of heads with their statistics tables ("heads"), or
// two head views with the same token highlighted in both ("head", comparehead.js). What the
// two atlases share and how their tokens match comes from GET /api/compare.

import * as api from "./api.js";
import { Corpus } from "./corpus.js";
import { errorBox, fill, h, loading, painted } from "./dom.js";
import { HeadMapPlot, extent } from "./headmap.js";
import { HeadStats, headCard, statsUnavailable } from "./headstats.js";
import { keeper } from "./overlays.js";
import { overlayControls } from "./overlaypanel.js";
import { PairedHeads } from "./comparehead.js";
import { StatsTable, downloadButtons } from "./statstable.js";
import { hideTooltip, showTooltip } from "./tooltip.js";
import { View } from "./view.js";


/**
 * The atlas to put beside `a` when the URL names none: one on the same corpus first (a
 * random-init twin of a trained model before another model), then the same model on another
 * corpus, then any other; null when there is no other atlas.
 */
export function partnerFor(a, list) {
  const others = list.filter((x) => x.id !== a.id && x.status !== "damaged" && Object.values(x.projections || {}).some((n) => n > 0));
  const sameCorpus = (x) => x.corpus?.id === a.corpus?.id && x.corpus?.items === a.corpus?.items;
  const rank = (x) => (sameCorpus(x) ? (Boolean(x.model?.random) !== Boolean(a.model?.random) ? 0 : 1) : x.model?.id === a.model?.id ? 2 : 3);
  return others.sort((x, y) => rank(x) - rank(y))[0] ?? null;
}

/** One line on what A and B share (GET /api/compare's answer). */
function comparisonNote(c) {
  const items = (s) => `${s.items} ${s.modality === "image" ? "images" : "sentences"}`;
  const corpus = c.same_corpus
    ? `the same corpus (${c.a.corpus}, ${items(c.a)})`
    : `different corpora (A: ${c.a.corpus}, ${items(c.a)}; B: ${c.b.corpus}, ${items(c.b)})`;
  const name = (s) => `${s.label}${s.random && !/random/i.test(s.label) ? " (random init)" : ""}`;
  const model = c.same_model ? "the same model" : `${name(c.a)} vs ${name(c.b)}`;
  let tokens = "tokens cannot be matched (text beside images)";
  if (c.token_match && c.same_corpus) tokens = `tokens matched by ${c.token_match}`;
  else if (c.token_match) tokens = `tokens match only in items that hold the same sentence in both (by ${c.token_match}); elsewhere they do not map`;
  return `${model} on ${corpus}: ${tokens}.`;
}

/** One atlas's map of heads and statistics table, in the heads pane. */
class MapSide {
  constructor(which, store, open) {
    this.which = which;
    this.store = store;
    this.title = h("div", { class: "pair-title" });
    this.mapEl = h("div", { class: "headmap compare-map" });
    this.tableEl = h("div", { class: "stats-table-wrap" });
    this.el = h("div", { class: `pair-side side-${which}`, dataset: { side: which } }, this.title, this.mapEl, this.tableEl);
    this.map = new HeadMapPlot(this.mapEl, {
      onHover: (p, at) => (p ? showTooltip(at.x, at.y, headCard(this.stats, p, { nearest: p.nearest })) : hideTooltip()),
      onClick: (p) => open(p.layer, p.head),
    });
    this.table = new StatsTable(this.tableEl, { onOpen: open, onSort: (sort) => store.set({ sort }) });
    this.id = null;
  }

  /** Load atlas `atlas`'s statistics and map; -> false when they are not there (the side says why). */
  async load(atlas) {
    if (this.id === atlas.id && this.data) return true;
    this.id = atlas.id;
    this.data = null;
    fill(this.title, h("span", { class: "side-letter" }, this.which.toUpperCase()), atlas.model?.label || atlas.id,
      atlas.model?.random ? h("span", { class: "badge warn" }, "random init") : null, h("span", { class: "grow" }), downloadButtons(atlas.id));
    const wait = loading(`Loading the map of heads of ${atlas.id}…`);
    fill(this.mapEl, wait.el);
    this.tableEl.hidden = true;
    try {
      const [table, map] = await Promise.all([api.stats(atlas.id), api.headMap(atlas.id)]);
      if (this.id !== atlas.id) return false;
      this.stats = new HeadStats(table);
      this.data = map;
      fill(this.mapEl, this.map.svg);
      this.tableEl.hidden = false;
      return true;
    } catch (e) {
      if (this.id !== atlas.id) return false;
      this.id = null; // asked again next time
      fill(this.mapEl, statsUnavailable(e, atlas.id));
      return false;
    }
  }

  /** selected: {layer, head} of this side; span: what both maps fit (one scale for both). */
  draw(state, selected, span) {
    if (!this.data) return;
    const size = this.stats.has(state.size) ? state.size : "";
    const keep = keeper(this.stats, state);
    this.map.draw(this.data, { stats: this.stats, colour: state.mapcolor, size, keep, selected, span });
    this.table.render(this.stats, { sort: state.sort, keep, selected });
  }
}

export class CompareView extends View {
  constructor(ctx, el, side) {
    super(ctx, el, side, "compare");
    this.note = h("div", { class: "compare-note muted" });
    this.status = h("div", { class: "status-line pair-status" }, "\u00a0");
    this.body = h("div", { class: "compare-body" });
    this.el.append(this.toolbar, this.note, this.body);
    this.controls = h("div", { class: "card" });
    side.append(h("h3", {}, "Two atlases"),
      h("p", { class: "muted small" }, "The atlas picked at the top (A) beside another (B). Maps and statistics: every head of both; head views: one head of each, with the token you pick in one highlighted in the other."),
      h("p", { class: "muted small" }, "Both maps share one scale (the distance between two heads' attention): a random-init model's heads, which all attend alike, gather in one small cloud."),
      this.controls);
    this.maps = null;
    this.pair = null;
    this.bKey = null;
  }

  async show(state, changed) {
    const a = this.ctx.atlas;
    if (!this.list || changed.has("view") || changed.has("b")) this.list = await api.atlases().catch(() => []);
    const list = this.list;
    if (!state.b || state.b === a.id) {
      const partner = partnerFor(a, list);
      if (partner) {
        this.ctx.store.set({ b: partner.id }); // shows again with it
        return;
      }
      this.renderToolbar(state, list);
      fill(this.body, h("div", { class: "error-box info" },
        h("div", { class: "error-title" }, "There is no second atlas to compare with"),
        h("div", { class: "error-detail" }, "Build another model on the same corpus, e.g. its random-init twin:"),
        h("pre", {}, `qkatlas build --model ${a.model?.id || "MODEL"}-random --corpus ${a.corpus?.id || "default"}`)));
      return;
    }
    this.renderToolbar(state, list);
    const t0 = performance.now();
    if ((state.b !== this.bKey || !this.bctx) && !(await this.loadB(state.b, a))) return;
    if (state.panes === "head") await this.showHeads(state, t0);
    else await this.showMaps(state, t0);
  }

  /** Atlas B's summary, corpus and what it shares with A; -> false (with a message) when it cannot be opened. */
  async loadB(b, a) {
    this.bKey = b;
    this.bctx = null;
    this.pair?.destroy();
    this.pair = null;
    for (const m of this.maps || []) m.map.destroy();
    this.maps = null;
    const wait = loading(`Loading atlas ${b}…`);
    fill(this.body, wait.el);
    try {
      const [summary, tokens, items, comparison] = await Promise.all([api.atlas(b), api.tokens(b), api.items(b), api.comparison(a.id, b)]);
      if (this.bKey !== b) return false;
      this.bctx = { store: this.ctx.store, layouts: this.ctx.layouts, atlas: summary, corpus: new Corpus(tokens, items, summary) };
      this.comparison = comparison;
      fill(this.note, comparisonNote(comparison));
      this.el.dataset.b = b;
      return true;
    } catch (e) {
      if (this.bKey !== b) return false;
      this.bKey = null;
      fill(this.note);
      fill(this.body, errorBox(e, `Could not open atlas "${b}" beside ${a.id}`));
      return false;
    }
  }

  renderToolbar(state, list) {
    const set = (patch) => this.ctx.store.set(patch, { push: true });
    const a = this.ctx.atlas;
    const pick = h("select", { class: "b-picker", "aria-label": "Atlas B", onchange: (e) => set({ b: e.target.value, blayer: null, bhead: null }) });
    for (const x of list) {
      if (x.id === a.id) continue;
      const damaged = x.status === "damaged";
      pick.append(h("option", { value: x.id, disabled: damaged, title: damaged ? x.detail : null },
        damaged ? `${x.id} (damaged)` : `${x.model?.label || x.id}${x.model?.random && !/random/i.test(x.model?.label || "") ? " (random init)" : ""} · ${x.corpus?.id} (${x.corpus?.items})`));
    }
    if (state.b && !list.some((x) => x.id === state.b)) pick.append(h("option", { value: state.b }, `${state.b} (not found)`));
    pick.value = state.b;
    fill(this.toolbar,
      h("div", { class: "title" }, "A beside B"),
      h("span", { class: "sep" }),
      h("label", { class: "field" }, h("span", { class: "field-label" }, "B"), pick),
      h("div", { class: "seg small panes" }, [["heads", "Maps and statistics"], ["head", "Head views"]].map(([id, label]) =>
        h("button", { class: `seg-btn${state.panes === id ? " active" : ""}`, dataset: { panes: id }, onclick: () => set({ panes: id }) }, label))),
      h("span", { class: "grow" }));
  }

  /** The two maps of heads and statistics tables (drawn again on every state change: a few hundred heads). */
  async showMaps(state, t0) {
    const open = (patch) => this.ctx.store.set({ panes: "head", ...patch }, { push: true });
    this.maps ??= [new MapSide("a", this.ctx.store, (layer, head) => open({ layer, head })),
      new MapSide("b", this.ctx.store, (blayer, bhead) => open({ blayer, bhead }))];
    if (!this.body.contains(this.maps[0].el)) fill(this.body, h("div", { class: "pair-cols maps" }, this.maps.map((m) => m.el)));
    const [ma, mb] = this.maps;
    const loaded = await Promise.all([ma.load(this.ctx.atlas), mb.load(this.bctx.atlas)]);
    state = this.ctx.store.get(); // what it is now that both have loaded
    if (state.view !== "compare" || state.panes !== "heads") return;
    const bHead = { layer: state.blayer ?? state.layer, head: state.bhead ?? state.head };
    // One scale for both maps: the distance between heads means the same on both sides (a
    // random-init model's heads, which all attend alike, gather in a small cloud).
    const spans = this.maps.filter((m) => m.data).map((m) => extent(m.data));
    const span = { w: Math.max(0, ...spans.map((e) => e.w)), h: Math.max(0, ...spans.map((e) => e.h)) };
    ma.draw(state, { layer: state.layer, head: state.head }, span);
    mb.draw(state, bHead, span);
    const stats = ma.stats ?? mb.stats;
    fill(this.controls, stats ? [h("div", { class: "card-title" }, "Order and filter both"), overlayControls(stats, state, (patch) => this.ctx.store.set(patch), { tint: false })] : null);
    await painted();
    if (loaded.some(Boolean)) this.announceDrawn(performance.now() - t0);
  }

  /** The two head views (each loads its head only when it changed; the pairing is drawn again). */
  async showHeads(state, t0) {
    if (!this.pair) {
      this.pair = new PairedHeads(this.ctx, this.status);
      this.pair.setB(this.bctx);
    }
    if (!this.body.contains(this.pair.el)) fill(this.body, this.status, this.pair.el);
    fill(this.controls);
    const ok = await this.pair.show(state);
    await painted();
    if (ok) this.announceDrawn(performance.now() - t0);
  }

  exportTarget() {
    if (this.ctx.store.get().panes === "head") return this.pair?.a.plot.exportTarget() ?? null;
    return this.maps?.[0].map.exportTarget() ?? null;
  }

  hide() {
    hideTooltip();
  }

  destroy() {
    for (const m of this.maps || []) m.map.destroy();
    this.pair?.destroy();
  }
}
