// Head view: one head's joint query/key space large (plot.js) with its toolbar (layer, head,
// which sides, layout quality), the colour picker and legend, the head's numbers, and the
// neighbours panel (neighbours.js) for a clicked token, and what the head does (its label and
// statistics, headstats.js).

import * as api from "./api.js";
import { clear, duration, errorBox, fill, fmt, h, headKey, headLabel, layerHeadSelects, loading, notBuilt, painted } from "./dom.js";
import { colourModes, legendHTML } from "./encodings.js";
import { HeadStats, labelLine, statsList, statsUnavailable } from "./headstats.js";
import { kvShare } from "./kv.js";
import { NeighboursPanel } from "./neighbours.js";
import { HeadPlot } from "./plot.js";
import { plotly } from "./plotly.js";
import { kindColour } from "./theme.js";
import { hideTooltip, showTooltip, tokenTooltip } from "./tooltip.js";
import { View } from "./view.js";

// The state fields that only move the selection: the points stay, the overlay is redrawn.
const SELECTION = new Set(["token", "side", "item", "by", "k"]);

const AGREEMENT_TITLE = "How far nearness in this layout follows attention: for each query, the rank correlation between closeness to the keys it sees and its attention score for them, averaged over queries (1: its nearest keys are the ones it attends to most, in order; docs/faithful.md)";
const JOINT_METHODS = { qkatlas: "faithful to attention (qkatlas)", attentionviz: "AttentionViz's", raw: "raw q/k" };

export class HeadView extends View {
  constructor(ctx, el, side) {
    super(ctx, el, side, "head");
    this.plotEl = h("div", { class: "head-plot" });
    this.body = h("div", { class: "head-body" }, this.plotEl);
    this.el.append(this.toolbar, this.body);
    this.plot = new HeadPlot(this.plotEl, ctx, {
      onHover: (hit, at) => hit.token !== undefined && showTooltip(at.x, at.y, tokenTooltip(ctx, hit.token, hit.side)),
      onClick: (hit) => hit.token !== undefined && ctx.store.set({ token: hit.token, side: hit.side, item: null }),
    });
    this.plot.onPainted = () => this.firstPaint ??= performance.now(); // a share of a big head's points comes first
    this.colorSelect = h("select", { class: "color-select", "aria-label": "Colour points by", onchange: (e) => ctx.store.set({ color: e.target.value }) });
    this.legend = h("div", { class: "legend" });
    const selectionCard = h("div", { class: "card selection" });
    this.neighbours = new NeighboursPanel(ctx, selectionCard);
    this.headCard = h("div", { class: "card muted small" });
    this.statsCard = h("div", { class: "card head-stats" });
    side.append(
      h("label", { class: "field stacked" }, h("span", { class: "field-label" }, "Colour by"), this.colorSelect),
      this.legend,
      selectionCard,
      this.statsCard,
      this.headCard,
    );
  }

  get atlas() {
    return this.ctx.atlas;
  }

  /** The key of the state's layout in the atlas's projections and quality ("pca-2d"). */
  layoutKey(state) {
    return this.ctx.layouts.key(state.method, state.dim);
  }

  async show(state, changed) {
    const selectionOnly = [...changed].every((k) => SELECTION.has(k));
    if (!selectionOnly) {
      this.renderToolbar(state);
      this.renderColorSelect(state);
    }
    const key = `${this.atlas.id}|${state.layer}|${state.head}|${state.method}|${state.dim}`;
    if (key !== this.key) {
      this.key = key;
      await this.load(state);
      return;
    }
    if (!this.plot.pts) return;
    if (["token", "side", "by", "k"].some((k) => changed.has(k))) await this.loadSelection(state);
    this.plot.set({ color: this.mode, show: state.show });
    if (selectionOnly) await this.plot.renderOverlay();
    else await this.redraw();
    if (changed.has("view")) this.plot.resize();
    if (changed.has("view") && this.headInfo && !this.headInfo.stats) await this.refreshStats(state); // computed meanwhile?
  }

  onProgress(state) {
    if (this.failed && this.failed.status === 409 && state.view === "head") {
      this.key = null;
      this.show(state, new Set());
    }
  }

  renderColorSelect(state) {
    const modes = colourModes(this.ctx.corpus);
    this.mode = modes.some((m) => m.id === state.color) ? state.color : "qk";
    clear(this.colorSelect);
    for (const m of modes) this.colorSelect.append(h("option", { value: m.id }, m.label));
    this.colorSelect.value = this.mode;
    this.legend.innerHTML = legendHTML(this.mode, this.ctx.corpus, { normRange: this.plot.normRange });
  }

  renderToolbar(state) {
    const a = this.atlas;
    const set = (patch) => this.ctx.store.set(patch);
    const step = (d) => {
      const flat = state.layer * a.heads + state.head + d;
      const n = a.layers * a.heads;
      const f = ((flat % n) + n) % n;
      set({ layer: Math.floor(f / a.heads), head: f % a.heads });
    };
    const toggle = (side, label) => h("label", { class: `check ${side}` },
      h("input", {
        type: "checkbox",
        checked: state.show === "both" || state.show === side,
        onchange: (e) => {
          const other = side === "query" ? "key" : "query";
          const otherOn = state.show === "both" || state.show === other;
          set({ show: e.target.checked ? (otherOn ? "both" : side) : otherOn ? other : "both" });
        },
      }), label);
    fill(this.toolbar,
      h("button", { class: "btn ghost", title: "Previous head (←)", onclick: () => step(-1) }, "‹"),
      h("div", { class: "title", dataset: { head: headLabel(state.layer, state.head) } }, headLabel(state.layer, state.head)),
      h("button", { class: "btn ghost", title: "Next head (→)", onclick: () => step(1) }, "›"),
      ...layerHeadSelects(a, state, set),
      this.kvLine(state),
      h("span", { class: "sep" }),
      toggle("query", "queries"), toggle("key", "keys"),
      h("button", { class: "btn ghost", title: "Reset zoom / camera", onclick: () => this.plot.resetView() }, "Reset view"),
      h("span", { class: "grow" }),
      h("span", { class: "quality", title: "Share of each point's 10 nearest neighbours in the joint space that stay among its 10 nearest in this layout" },
        `${this.ctx.layouts.label(state.method)} ${state.dim}-D · knn recall@10 `, h("b", { class: "quality-value" }, fmt(this.quality(state), 3))),
      h("span", { class: "quality", title: AGREEMENT_TITLE }, "· attention agreement ",
        h("b", { class: "agreement-value" }, fmt(this.quality(state, "attention_agreement"), 3))),
    );
  }

  /** "shares keys with H3, H5 (KV head 1 of 3)", each head a link; null without grouping. */
  kvLine(state) {
    const info = this.headInfo;
    const share = info?.layer === state.layer && info?.head === state.head ? kvShare(this.atlas, info) : null;
    if (!share) return null;
    const links = share.others.flatMap((head, i) => [i ? ", " : "",
      h("button", { class: "link", dataset: { head }, onclick: () => this.ctx.store.set({ head }) }, `H${head}`)]);
    return h("span", { class: "kv-share", title: `Grouped-query attention: ${share.others.length + 1} query heads use the same keys and values` },
      "shares keys with ", ...links, ` (KV head ${share.kv} of ${share.of})`);
  }

  /** One of the layout's quality numbers for the head (knn recall by default), from the head or the atlas. */
  quality(state, name = "knn_recall@10") {
    const key = this.layoutKey(state);
    return this.headInfo?.projections?.[key]?.quality?.[name]
      ?? this.atlas.quality?.[key]?.[headKey(state.layer, state.head)]?.[name];
  }

  async load(state) {
    const key = this.key;
    const label = this.ctx.layouts.label(state.method);
    this.failed = null;
    this.body.querySelector(".error-box")?.remove();
    this.body.querySelector(".loading")?.remove();
    const wait = loading(`Loading ${headLabel(state.layer, state.head)}…`);
    this.body.append(wait.el);
    const t0 = performance.now();
    this.firstPaint = null;
    if (state.dim === 3) plotly().catch(() => {}); // load plotly.js while the points arrive
    try {
      const [, info] = await Promise.all([
        this.plot.load({ layer: state.layer, head: state.head, method: state.method, dim: state.dim }, (got, all) => wait.progress(got / all)),
        api.headInfo(this.atlas.id, state.layer, state.head).catch(() => null),
      ]);
      if (key !== this.key) return;
      this.headInfo = info;
      this.renderToolbar(state);
      this.renderHeadCard(state);
      await this.renderStatsCard(state);
      if (key !== this.key) return;
      this.plotEl.hidden = false;
      await this.loadSelection(state);
      if (key !== this.key) return;
      this.plot.set({ color: this.mode, show: state.show });
      wait.el.remove(); // gone in the frame that shows the points
      await this.redraw();
      if (state.dim === 3) await painted(); // the 2-D canvas answers once its frame is on screen
      this.announceDrawn(performance.now() - t0, this.firstPaint === null ? {} : { headFirstPaint: this.firstPaint });
    } catch (e) {
      if (key !== this.key) return;
      wait.el.remove();
      this.failed = e;
      this.plot.pts = null;
      this.plot.purge();
      this.plotEl.hidden = true;
      const started = this.atlas.projections?.[this.layoutKey(state)] !== undefined;
      if (e.status === 409 && !started) {
        this.body.append(notBuilt(this.atlas, state.method, label, state.dim));
      } else {
        const box = errorBox(e, `Could not show ${headLabel(state.layer, state.head)} (${label} ${state.dim}-D)`);
        if (e.status === 409) box.append(h("div", { class: "muted" }, "It appears here as soon as it is computed."));
        this.body.append(box);
      }
      clear(this.neighbours.el);
    }
  }

  async redraw() {
    await this.plot.render();
    if (this.mode === "norm") this.legend.innerHTML = legendHTML(this.mode, this.ctx.corpus, { normRange: this.plot.normRange });
    this.el.dataset.points = String(2 * this.plot.pts.T);
    this.el.dataset.matches = String(this.matchCount());
  }

  matchCount() {
    const s = this.ctx.search;
    if (!s?.active || !this.plot.pts) return 0;
    const show = this.plot.opts.show;
    return s.count * (show === "both" ? 2 : 1);
  }

  renderHeadCard(state) {
    const info = this.headInfo;
    const proj = info?.projections?.[this.layoutKey(state)];
    const T = this.plot.pts?.T ?? this.atlas.tokens;
    fill(this.headCard,
      h("div", { class: "card-title" }, `${headLabel(state.layer, state.head)} · ${this.ctx.layouts.label(state.method)} ${state.dim}-D`),
      h("dl", { class: "kv" },
        h("dt", {}, "points"), h("dd", {}, `${(2 * T).toLocaleString()} (${T.toLocaleString()} queries + keys)`),
        h("dt", {}, "knn recall@10"), h("dd", {}, fmt(proj?.quality?.["knn_recall@10"], 3)),
        h("dt", {}, "trustworthiness@10"), h("dd", {}, fmt(proj?.quality?.["trustworthiness@10"], 3)),
        h("dt", { title: AGREEMENT_TITLE }, "attention agreement"), h("dd", {}, fmt(proj?.quality?.attention_agreement, 3)),
        h("dt", { title: "Pearson correlation of query–key distance in this layout with q·k, over the pairs of each item pooled (−1 is perfect)" }, "distance–dot Pearson"),
        h("dd", {}, fmt(proj?.quality?.distance_dot_pearson, 3)),
        info?.joint?.joint ? [h("dt", { title: "The same agreement in the joint space this layout was fitted to, and with raw q/k for comparison" }, "joint space agreement"),
          h("dd", { class: "joint-agreement" }, `${fmt(info.joint.joint.attention_agreement, 3)} (raw q/k ${fmt(info.joint.raw?.attention_agreement, 3)})`)] : null,
        info?.joint ? [h("dt", {}, "joint space"), h("dd", {}, JOINT_METHODS[info.joint.method] ?? info.joint.method)] : null,
        info?.joint ? [h("dt", {}, "joint scale s"), h("dd", {}, fmt(info.joint.scale, 3))] : null,
        info?.joint ? [h("dt", {}, "key shift ‖t‖"), h("dd", {}, fmt(info.joint.translation_norm, 3))] : null,
        proj?.seconds !== undefined ? [h("dt", {}, "computed in"), h("dd", {}, duration(proj.seconds))] : null),
      h("div", {}, "Hover a point for its token; click it for the keys its query attends to most (or the queries that attend to a key)."),
    );
  }

  /** What the head does: its label and statistics (definitions as tooltips), or how to compute them. */
  async renderStatsCard(state) {
    const id = this.atlas.id;
    const info = this.headInfo;
    const title = h("div", { class: "card-title" }, `What ${headLabel(state.layer, state.head)} does`,
      h("button", { class: "btn small", title: "Every head of this atlas on the map of heads", onclick: () => this.ctx.store.set({ view: "heads" }, { push: true }) }, "All heads"));
    const retry = () => this.refreshStats(state);
    if (!info) {
      fill(this.statsCard);
      return;
    }
    if (!info.stats) {
      fill(this.statsCard, title, statsUnavailable({ status: 409 }, id, retry));
      return;
    }
    let stats;
    try {
      stats = new HeadStats(await api.stats(id));
    } catch (e) {
      fill(this.statsCard, title, statsUnavailable(e, id, retry));
      return;
    }
    const s = info.stats;
    fill(this.statsCard, title,
      labelLine(s.kind, s.label, kindColour(s.kind, stats.kinds)),
      statsList(stats, (name) => s[name] ?? null),
      h("div", { class: "muted small" }, "Hover a name for its definition; docs/stats.md has the rules behind the label."));
  }

  /** Ask for the head's info again (its statistics may have been computed since) and show them. */
  async refreshStats(state) {
    const key = this.key;
    const info = await api.headInfo(this.atlas.id, state.layer, state.head).catch(() => this.headInfo);
    if (key !== this.key) return;
    this.headInfo = info;
    await this.renderStatsCard(state);
  }

  /** The selected point and its neighbours, in the panel and on the plot. */
  async loadSelection(state) {
    const T = this.plot.pts.T;
    const row = NeighboursPanel.selectedRow(state, T);
    if (row === null) {
      this.plot.set({ selection: null, neighbours: [] });
      this.neighbours.showNone(state, T);
      return;
    }
    this.plot.set({ selection: row, neighbours: [], by: state.by });
    const list = await this.neighbours.load(state, T);
    if (list) this.plot.set({ neighbours: list });
  }

  exportTarget() {
    return this.plot.exportTarget();
  }

  hide() {
    hideTooltip();
  }

  destroy() {
    this.plot.destroy();
  }
}
