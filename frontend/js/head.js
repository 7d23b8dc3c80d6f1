// Head view: one head's joint query/key space large (scattergl in 2-D, scatter3d in 3-D),
// with hover provenance, colour modes, search highlights, and a clicked token's top
// attended keys (or attending queries) drawn as lines and listed with scores.

import * as api from "./api.js";
import { colourModes, K, legendHTML, markerColour, MATCH, Q, range } from "./colors.js";
import { clear, fill, errorBox, fmt, h, headKey, headLabel, hideTooltip, layerHeadSelects, loading, notBuilt, painted, showTooltip, trackPointer } from "./dom.js";
import { plotly } from "./plotly.js";
import { LABELS } from "./state.js";
import { View } from "./view.js";

const AXIS = { zeroline: false, gridcolor: "#1c222a", linecolor: "#2a313c", tickfont: { size: 10, color: "#6b7682" } };
const AXIS3D = { ...AXIS, backgroundcolor: "#0f1216", showbackground: true, showspikes: false, title: { text: "" } };
const CAMERA = { eye: { x: 1.45, y: 1.45, z: 1.1 } };

/**
 * One head drawn large: corpus points of one layout plus overlays. Used by the head view
 * and by the "your input" view (which adds the new sentence's points).
 */
export class HeadPlot {
  constructor(el, ctx, { onHover, onClick } = {}) {
    this.el = el;
    this.ctx = ctx;
    this.onHover = onHover;
    this.onClick = onClick;
    this.pts = null;
    this.opts = { color: "qk", show: "both", selection: null, neighbours: [], extra: [], dimCorpus: false };
    this.rowsOf = []; // curveNumber -> Int32Array of point rows (null: not a corpus trace)
    this.bound = false;
    this.pointer = trackPointer(el);
    this.ring = document.body.appendChild(h("div", { class: "hover-ring", hidden: true }));
    el.addEventListener("pointerleave", () => (this.ring.hidden = true));
  }

  /** Load one head's layout: {layer, head, method, dim}. Throws ApiError. */
  async load(spec, onProgress) {
    const { id } = this.ctx.atlas;
    const p = await api.points(id, spec.layer, spec.head, spec.method, spec.dim, onProgress);
    const T = p.rows / 2;
    const split = (from) => {
      const axes = [];
      for (let d = 0; d < p.dim; d++) {
        const a = new Float32Array(T);
        for (let i = 0; i < T; i++) a[i] = p.coords[(from + i) * p.dim + d];
        axes.push(a);
      }
      return axes;
    };
    this.spec = spec;
    this.pts = { T, dim: p.dim, q: split(0), k: split(T) };
    this.identity = this.identity?.length === T ? this.identity : Int32Array.from({ length: T }, (_, i) => i);
    this.norms = null;
    return this.pts;
  }

  async ensureNorms() {
    if (this.norms || !this.spec) return;
    const { layer, head } = this.spec;
    this.norms = await api.norms(this.ctx.atlas.id, layer, head);
    this.normRange = range(this.norms);
  }

  set(opts) {
    Object.assign(this.opts, opts);
  }

  coordsOfRow(row) {
    const { T, q, k } = this.pts;
    const axes = row < T ? q : k;
    const i = row < T ? row : row - T;
    return axes.map((a) => a[i]);
  }

  traces() {
    const { T, dim, q, k } = this.pts;
    const is3d = dim === 3;
    const type = is3d ? "scatter3d" : "scattergl";
    const o = this.opts;
    const corpus = this.ctx.corpus;
    const mask = this.ctx.search?.active ? this.ctx.search.mask : null;
    const size = is3d ? (T > 5000 ? 1.6 : 2.6) : T > 20000 ? 2.5 : T > 5000 ? 3.2 : 4.5;
    const extra = { norms: this.norms, T, mask, normRange: this.normRange };
    const xyz = (axes) => (is3d ? { x: axes[0], y: axes[1], z: axes[2] } : { x: axes[0], y: axes[1] });
    const base = (side, axes) => {
      const colour = markerColour(o.color, corpus, this.identity, side, extra);
      return {
        type, mode: "markers", name: side === "query" ? "queries" : "keys", ...xyz(axes),
        visible: o.show === "both" || o.show === side,
        marker: { size, opacity: o.dimCorpus ? 0.25 : is3d ? 0.75 : 0.7, ...colour, line: { width: 0 } },
        hoverinfo: "none",
      };
    };
    const traces = [base("key", k), base("query", q)];
    const rowsOf = [{ offset: T }, { offset: 0 }]; // keys are drawn first, under the queries
    const overlay = (name, rows, marker, extraProps = {}) => {
      const axes = Array.from({ length: dim }, () => new Float32Array(rows.length));
      rows.forEach((r, i) => this.coordsOfRow(r).forEach((v, d) => (axes[d][i] = v)));
      traces.push({ type, mode: "markers", name, ...xyz(axes), marker, hoverinfo: "none", ...extraProps });
      rowsOf.push({ rows });
    };
    if (mask) {
      const rows = [];
      for (let t = 0; t < T; t++) {
        if (!mask[t]) continue;
        if (o.show !== "key") rows.push(t);
        if (o.show !== "query") rows.push(T + t);
      }
      if (rows.length) overlay("matches", Int32Array.from(rows), { size: size + 3, color: MATCH, opacity: 0.95, line: { color: "#111", width: 0.6 } });
    }
    const sel = is3d ? this.selectionGeometry() : null;
    if (sel) {
      // In 3-D the selection is drawn as traces; in 2-D as layout shapes (see overlayLayout).
      for (const n of sel.neighbours) {
        traces.push({
          type, mode: "lines", x: [sel.from[0], n.to[0]], y: [sel.from[1], n.to[1]], z: [sel.from[2], n.to[2]],
          line: { color: n.colour, width: 1 + 2.5 * n.rel }, opacity: 0.25 + 0.7 * n.rel, hoverinfo: "none", showlegend: false,
        });
        rowsOf.push(null);
      }
      if (sel.neighbours.length) {
        overlay("neighbours", Int32Array.from(sel.neighbours.map((n) => n.row)), {
          size: size + 6, color: sel.neighbours.map((n) => n.colour), line: { color: "#fff", width: 1 },
        }, { mode: "markers+text", text: sel.neighbours.map((n) => n.label), textposition: "top center", textfont: { color: "#e6edf3", size: 11 } });
      }
      overlay("selected", Int32Array.of(o.selection), { size: size + 12, color: "#ffffff", symbol: "circle-open", line: { color: "#ffffff", width: 2.5 } });
    }
    for (const e of o.extra) {
      traces.push({ type, hoverinfo: "none", ...e.trace(is3d) });
      rowsOf.push({ extra: e });
    }
    this.rowsOf = rowsOf;
    return traces;
  }

  /** The selected point and its neighbours in layout coordinates, or null. */
  selectionGeometry() {
    const o = this.opts;
    const T = this.pts.T;
    if (o.selection === null || o.selection === undefined || o.selection >= 2 * T) return null;
    const list = o.neighbours.filter((n) => n.row < 2 * T);
    const scores = list.map((n) => n.score);
    const lo = Math.min(...scores);
    const hi = Math.max(...scores);
    return {
      from: this.coordsOfRow(o.selection),
      neighbours: list.map((n) => {
        let rel = hi > lo ? (n.score - lo) / (hi - lo) : 1;
        if (o.by !== "attention") rel = 1 - rel; // distances: nearer is stronger
        return { row: n.row, to: this.coordsOfRow(n.row), rel, colour: n.row < T ? Q : K, label: n.label };
      }),
    };
  }

  /**
   * 2-D selection overlay as layout shapes and annotations: updating it redraws only SVG,
   * never the WebGL points, so a click answers at once.
   */
  overlayLayout() {
    const sel = this.pts.dim === 2 ? this.selectionGeometry() : null;
    if (!sel) return { shapes: [] };
    const [x0, y0] = sel.from;
    const dot = (x, y, r, props) => ({ type: "circle", xref: "x", yref: "y", xsizemode: "pixel", ysizemode: "pixel", xanchor: x, yanchor: y, x0: -r, x1: r, y0: -r, y1: r, ...props });
    const shapes = [];
    for (const n of sel.neighbours) {
      shapes.push({ type: "line", xref: "x", yref: "y", x0, y0, x1: n.to[0], y1: n.to[1], line: { color: n.colour, width: 1 + 2.5 * n.rel }, opacity: 0.3 + 0.7 * n.rel, layer: "above" });
    }
    const labelled = sel.neighbours.length <= 20;
    for (const n of sel.neighbours) {
      shapes.push(dot(n.to[0], n.to[1], 5, {
        fillcolor: n.colour, line: { color: "#fff", width: 1 },
        label: labelled ? { text: escapeText(n.label), textposition: "top center", font: { size: 11, color: "#e6edf3" }, padding: 4 } : undefined,
      }));
    }
    shapes.push(dot(x0, y0, 9, { line: { color: "#fff", width: 2.5 } }));
    return { shapes };
  }

  /** Redraw only the 2-D selection overlay: shapes redraw as SVG, the WebGL points stay. */
  async renderOverlay() {
    if (!this.figure || this.pts.dim !== 2) return this.render();
    const { shapes } = this.overlayLayout();
    this.figure.layout.shapes = shapes;
    const Plotly = await plotly();
    await Plotly.relayout(this.el, { shapes });
  }

  layout() {
    const is3d = this.pts.dim === 3;
    const { layer, head, method, dim } = this.spec;
    const common = {
      margin: is3d ? { l: 0, r: 0, t: 0, b: 0 } : { l: 44, r: 12, t: 8, b: 28 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#0f1216",
      font: { color: "#c9d1d9", family: "system-ui, sans-serif" },
      showlegend: false,
      hovermode: "closest",
      uirevision: `${this.ctx.atlas.id}|${layer}|${head}|${method}|${dim}`,
      dragmode: is3d ? "orbit" : "pan",
      hoverlabel: { bgcolor: "#161b22" },
    };
    if (is3d) return { ...common, scene: { xaxis: AXIS3D, yaxis: AXIS3D, zaxis: AXIS3D, aspectmode: "data", camera: CAMERA, bgcolor: "#0f1216" } };
    return { ...common, ...this.overlayLayout(), xaxis: { ...AXIS }, yaxis: { ...AXIS, scaleanchor: "x", scaleratio: 1 } };
  }

  async render() {
    if (!this.pts) return;
    if (this.opts.color === "norm") await this.ensureNorms();
    const traces = this.traces();
    this.figure = { data: traces, layout: this.layout() };
    const Plotly = await plotly();
    await Plotly.react(this.el, traces, this.figure.layout, {
      scrollZoom: true,
      displaylogo: false,
      plotGlPixelRatio: Math.min(2, window.devicePixelRatio || 1),
      responsive: true,
      modeBarButtonsToRemove: ["select2d", "lasso2d", "toImage", "autoScale2d"],
    });
    if (!this.bound) this.bind();
  }

  bind() {
    this.bound = true;
    this.el.on("plotly_hover", (e) => {
      const hit = this.hit(e);
      if (!hit) return;
      if (hit.row !== undefined && this.pts.dim === 2) {
        const p = this.pixelOf(hit.row);
        Object.assign(this.ring.style, { left: `${p.x}px`, top: `${p.y}px` });
        this.ring.hidden = false;
      }
      if (this.onHover) this.onHover(hit, e.event ? { x: e.event.clientX, y: e.event.clientY } : this.pointer);
    });
    this.el.on("plotly_unhover", () => {
      hideTooltip();
      this.ring.hidden = true;
    });
    this.el.on("plotly_click", (e) => {
      const hit = this.hit(e);
      if (hit && this.onClick) this.onClick(hit);
    });
  }

  /** -> {row, token, side} for a corpus point, {extra, index} for an overlay point, or null. */
  hit(e) {
    const p = e?.points?.[0];
    if (!p || !this.pts) return null;
    const info = this.rowsOf[p.curveNumber];
    const i = p.pointNumber ?? p.pointIndex;
    if (!info || i === undefined) return null;
    if (info.extra) return { extra: info.extra, index: i };
    const row = info.rows ? info.rows[i] : info.offset + i;
    const T = this.pts.T;
    return { row, token: row % T, side: row < T ? "query" : "key" };
  }

  /** Where a point is drawn, in client pixels (2-D layouts), e.g. to hover it from a test. */
  pixelOf(row) {
    const [x, y] = this.coordsOfRow(row);
    const { xaxis, yaxis } = this.el._fullLayout;
    const r = this.el.getBoundingClientRect();
    return { x: r.left + xaxis._offset + xaxis.l2p(x), y: r.top + yaxis._offset + yaxis.l2p(y) };
  }

  resetView() {
    if (!this.pts) return;
    if (!this.figure) return;
    if (this.pts.dim === 3) window.Plotly.relayout(this.el, { "scene.camera": CAMERA });
    else window.Plotly.relayout(this.el, { "xaxis.autorange": true, "yaxis.autorange": true });
  }

  resize() {
    if (this.figure && this.el.offsetParent) window.Plotly.Plots.resize(this.el);
  }

  purge() {
    this.ring.hidden = true;
    window.Plotly?.purge(this.el);
    this.bound = false;
  }

  destroy() {
    this.purge();
    this.ring.remove();
  }
}

/** Token text for plotly annotations, which read a few HTML tags and entities. */
function escapeText(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** The tooltip for a corpus token: its text in its sentence, or its image patch. */
export function tokenTooltip(ctx, token, side) {
  const c = ctx.corpus;
  const item = c.item[token];
  const pos = c.position[token];
  const badge = h("span", { class: `side-badge ${side}` }, side === "query" ? "Q" : "K");
  if (c.isImage) {
    const special = c.row[token] < 0;
    return h("div", { class: "tip" },
      h("div", { class: "tip-head" }, badge, h("b", {}, special ? c.text[token] : `patch r${c.row[token]} c${c.col[token]}`)),
      special ? null : h("img", { class: "patch-thumb", src: api.patchImageUrl(ctx.atlas.id, item, pos, 96), width: 96, height: 96, alt: "" }),
      h("div", { class: "tip-meta" }, `${c.itemName(item)} · token ${pos} of ${c.itemTokens[item]}`));
  }
  return h("div", { class: "tip" },
    h("div", { class: "tip-head" }, badge, h("b", {}, c.display(token))),
    h("div", { class: "tip-sentence" }, c.sentenceNode(token)),
    h("div", { class: "tip-meta" }, `${c.itemName(item)} · position ${pos} of ${c.itemTokens[item]}`));
}

export class HeadView extends View {
  constructor(ctx, el, side) {
    super(ctx, el, side);
    this.by = "attention";
    this.k = 10;
    this.plotEl = h("div", { class: "head-plot" });
    this.body = h("div", { class: "head-body" }, this.plotEl);
    this.el.append(this.toolbar, this.body);
    this.plot = new HeadPlot(this.plotEl, ctx, {
      onHover: (hit, at) => hit.token !== undefined && showTooltip(at.x, at.y, tokenTooltip(ctx, hit.token, hit.side)),
      onClick: (hit) => hit.token !== undefined && ctx.store.set({ token: hit.token, side: hit.side, item: null }),
    });
    this.colorSelect = h("select", { class: "color-select", "aria-label": "Colour points by", onchange: (e) => ctx.store.set({ color: e.target.value }) });
    this.legend = h("div", { class: "legend" });
    this.selectionCard = h("div", { class: "card selection" });
    this.headCard = h("div", { class: "card muted small" });
    side.append(
      h("label", { class: "field stacked" }, h("span", { class: "field-label" }, "Colour by"), this.colorSelect),
      this.legend,
      this.selectionCard,
      this.headCard,
    );
  }

  get atlas() {
    return this.ctx.atlas;
  }

  async show(state, changed) {
    const selectionOnly = [...changed].every((k) => k === "token" || k === "side" || k === "item");
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
    const selection = changed.has("token") || changed.has("side");
    if (selection) await this.loadSelection(state);
    this.plot.set({ color: this.mode, show: state.show });
    if (selectionOnly) await this.plot.renderOverlay();
    else await this.redraw();
    if (changed.has("view")) this.plot.resize();
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
    const q = this.quality(state);
    fill(this.toolbar, 
      h("button", { class: "btn ghost", title: "Previous head (←)", onclick: () => step(-1) }, "‹"),
      h("div", { class: "title", dataset: { head: headLabel(state.layer, state.head) } }, headLabel(state.layer, state.head)),
      h("button", { class: "btn ghost", title: "Next head (→)", onclick: () => step(1) }, "›"),
      ...layerHeadSelects(a, state, set),
      h("span", { class: "sep" }),
      toggle("query", "queries"), toggle("key", "keys"),
      h("button", { class: "btn ghost", title: "Reset zoom / camera", onclick: () => this.plot.resetView() }, "Reset view"),
      h("span", { class: "grow" }),
      h("span", { class: "quality", title: "Share of each point's 10 nearest neighbours in the joint space that stay among its 10 nearest in this layout" },
        `${LABELS[state.method]} ${state.dim}-D · knn recall@10 `, h("b", { class: "quality-value" }, fmt(q, 3))),
    );
  }

  quality(state) {
    return this.headInfo?.projections?.[`${state.method}-${state.dim}d`]?.quality?.["knn_recall@10"]
      ?? this.atlas.quality?.[`${state.method}-${state.dim}d`]?.[headKey(state.layer, state.head)]?.["knn_recall@10"];
  }

  async load(state) {
    const key = this.key;
    this.failed = null;
    this.body.querySelector(".error-box")?.remove();
    this.body.querySelector(".loading")?.remove();
    const wait = loading(`Loading ${headLabel(state.layer, state.head)}…`);
    this.body.append(wait.el);
    const t0 = performance.now();
    plotly().catch(() => {});
    try {
      const [, info] = await Promise.all([
        this.plot.load({ layer: state.layer, head: state.head, method: state.method, dim: state.dim }, (got, all) => wait.progress(got / all)),
        api.headInfo(this.atlas.id, state.layer, state.head).catch(() => null),
      ]);
      if (key !== this.key) return;
      this.headInfo = info;
      this.renderToolbar(state);
      this.renderHeadCard(state);
      this.plotEl.hidden = false;
      await this.loadSelection(state);
      if (key !== this.key) return;
      this.plot.set({ color: this.mode, show: state.show });
      await this.redraw();
      wait.el.remove();
      await painted();
      this.ctx.app.drawn("head", { headMs: performance.now() - t0 });
    } catch (e) {
      if (key !== this.key) return;
      wait.el.remove();
      this.failed = e;
      this.plot.pts = null;
      this.plot.purge();
      this.plotEl.hidden = true;
      const started = this.atlas.projections?.[`${state.method}-${state.dim}d`] !== undefined;
      if (e.status === 409 && !started) {
        this.body.append(notBuilt(this.atlas, state.method, state.dim));
      } else {
        const box = errorBox(e, `Could not show ${headLabel(state.layer, state.head)} (${LABELS[state.method]} ${state.dim}-D)`);
        if (e.status === 409) box.append(h("div", { class: "muted" }, "It appears here as soon as it is computed."));
        this.body.append(box);
      }
      clear(this.selectionCard);
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
    const proj = info?.projections?.[`${state.method}-${state.dim}d`];
    const T = this.plot.pts?.T ?? this.atlas.tokens;
    fill(this.headCard, 
      h("div", { class: "card-title" }, `${headLabel(state.layer, state.head)} · ${LABELS[state.method]} ${state.dim}-D`),
      h("dl", { class: "kv" },
        h("dt", {}, "points"), h("dd", {}, `${(2 * T).toLocaleString()} (${T.toLocaleString()} queries + keys)`),
        h("dt", {}, "knn recall@10"), h("dd", {}, fmt(proj?.quality?.["knn_recall@10"], 3)),
        h("dt", {}, "trustworthiness@10"), h("dd", {}, fmt(proj?.quality?.["trustworthiness@10"], 3)),
        info?.joint ? [h("dt", {}, "joint scale s"), h("dd", {}, fmt(info.joint.scale, 3))] : null,
        info?.joint ? [h("dt", {}, "key shift ‖t‖"), h("dd", {}, fmt(info.joint.translation_norm, 3))] : null,
        proj?.seconds !== undefined ? [h("dt", {}, "computed in"), h("dd", {}, `${fmt(proj.seconds, 2)} s`)] : null),
      h("div", {}, "Hover a point for its token; click it for the keys its query attends to most (or the queries that attend to a key)."),
    );
  }

  async loadSelection(state) {
    const T = this.plot.pts.T;
    if (state.token === null || state.token >= T) {
      this.plot.set({ selection: null, neighbours: [] });
      fill(this.selectionCard, h("div", { class: "muted" }, state.token !== null ? `Token ${state.token} does not exist (this atlas has ${T} tokens).` : "No token selected."));
      return;
    }
    const row = state.side === "key" ? T + state.token : state.token;
    this.plot.set({ selection: row, neighbours: [], by: this.by });
    this.renderSelection(state, null);
    try {
      const res = await api.neighbours(this.atlas.id, state.layer, state.head, {
        token: state.token, side: state.side, k: this.k, by: this.by, method: state.method, dim: state.dim,
      });
      const cur = this.ctx.store.get();
      if (cur.token !== state.token || cur.side !== state.side || cur.layer !== state.layer || cur.head !== state.head) return;
      const list = res.neighbours.map((n) => ({ ...n, row: n.side === "key" ? T + n.token : n.token, label: this.ctx.corpus.display(n.token) }));
      this.plot.set({ neighbours: list, by: this.by });
      this.renderSelection(state, res, list);
    } catch (e) {
      this.renderSelection(state, null, null, e);
    }
  }

  renderSelection(state, res, list, err) {
    const c = this.ctx.corpus;
    const t = state.token;
    const set = (patch, push) => this.ctx.store.set(patch, { push });
    const bySel = h("select", { "aria-label": "Neighbours by", onchange: async (e) => { this.by = e.target.value; await this.loadSelection(this.ctx.store.get()); await this.plot.renderOverlay(); } },
      h("option", { value: "attention" }, state.side === "query" ? "attention: keys it attends to" : "attention: queries attending to it"),
      h("option", { value: "joint" }, "nearest in joint space"),
      h("option", { value: "projection" }, "nearest in this layout"));
    bySel.value = this.by;
    const kSel = h("select", { "aria-label": "How many", onchange: async (e) => { this.k = Number(e.target.value); await this.loadSelection(this.ctx.store.get()); await this.plot.renderOverlay(); } },
      ...[5, 10, 20, 50].map((k) => h("option", { value: k }, `top ${k}`)));
    kSel.value = this.k;
    const list_el = h("ol", { class: "neighbours", dataset: { count: list ? list.length : 0 } });
    if (list) {
      const scores = list.map((n) => n.score);
      const lo = Math.min(0, ...scores);
      const hi = Math.max(...scores);
      for (const n of list) {
        const rel = this.by === "attention" ? (hi > lo ? (n.score - lo) / (hi - lo) : 1) : hi > 0 ? 1 - n.score / (hi * 1.05) : 1;
        list_el.append(h("li", {
          class: "neighbour",
          dataset: { token: n.token, side: n.side },
          title: c.isImage ? `${c.itemName(n.item)}` : c.itemText[n.item],
          onclick: () => set({ token: n.token, side: n.side, item: null }, true),
          onmouseenter: (e) => showTooltip(e.clientX, e.clientY, tokenTooltip(this.ctx, n.token, n.side)),
          onmouseleave: hideTooltip,
        },
        h("span", { class: `side-badge ${n.side}` }, n.side === "query" ? "Q" : "K"),
        h("span", { class: "n-text" }, c.isImage && c.row[n.token] >= 0 ? `r${c.row[n.token]} c${c.col[n.token]}` : (n.text ?? c.display(n.token)).trim() || "␣"),
        h("span", { class: "n-meta" }, `${c.isImage ? "img" : "s"}${n.item} p${n.position}`),
        h("span", { class: "n-bar" }, h("i", { style: { width: `${Math.round(100 * Math.max(0.03, rel))}%` } })),
        h("span", { class: "n-score" }, fmt(n.score, 3))));
      }
    }
    const itemView = c.isImage ? "image" : "sentence";
    fill(this.selectionCard, 
      h("div", { class: "card-title selected-token" },
        h("span", { class: `side-badge ${state.side}` }, state.side === "query" ? "Q" : "K"),
        h("b", { class: "selected-text" }, c.isImage && c.row[t] >= 0 ? `patch r${c.row[t]} c${c.col[t]}` : c.display(t)),
        h("button", { class: "btn ghost small", title: "Clear the selection (Esc)", onclick: () => set({ token: null }) }, "✕")),
      c.isImage
        ? h("div", { class: "sel-image" }, c.row[t] >= 0 ? h("img", { class: "patch-thumb", src: api.patchImageUrl(this.atlas.id, c.item[t], c.position[t], 64), width: 64, height: 64, alt: "" }) : null, h("span", { class: "muted" }, c.itemName(c.item[t])))
        : h("div", { class: "sel-sentence" }, c.sentenceNode(t, { maxTokens: 40 })),
      h("div", { class: "muted small" }, `${c.itemName(c.item[t])} · position ${c.position[t]} · token #${t}`),
      h("div", { class: "row-actions" },
        h("button", { class: "btn small", onclick: () => set({ view: itemView, item: c.item[t] }, true) }, `Open ${itemView} view`),
        h("button", { class: "btn ghost small", onclick: () => set({ side: state.side === "query" ? "key" : "query" }) }, `Show its ${state.side === "query" ? "key" : "query"}`)),
      h("div", { class: "neighbour-controls" }, bySel, kSel),
      err ? errorBox(err, "Could not load the neighbours") : res ? list_el : h("div", { class: "muted small" }, "Loading neighbours…"),
      res ? h("div", { class: "muted small" }, res.metric ? `score: ${res.metric}` : this.by === "attention" ? "score: scaled dot product q·k (before softmax)" : "score: Euclidean distance") : null,
    );
  }

  exportTarget() {
    if (!this.plot.pts) return null;
    const layout = { ...this.plot.figure.layout, paper_bgcolor: "#0f1216" };
    return { plotly: this.plotEl, figure: { data: this.plot.figure.data, layout } };
  }

  hide() {
    hideTooltip();
  }

  destroy() {
    this.plot.destroy();
  }
}
