// The head plot: one head's joint query/key layout drawn large, with search highlights, a
// selected point and its neighbours as lines, and hover/click hit-testing. 2-D layouts are
// drawn on a WebGL canvas (plot2d.js: every point, a million of them included, with no wait
// for plotly.js); 3-D layouts with plotly's scatter3d. The same points as a plotly figure are
// what export.js saves as vectors. Used by the head view and the "your input" view.

import * as api from "./api.js";
import { markerColour, range, rgbaArray } from "./encodings.js";
import { h } from "./dom.js";
import { SVG_VECTOR_POINTS } from "./export.js";
import { FlatPlot } from "./plot2d.js";
import { plotly } from "./plotly.js";
import { evenOrder } from "./points.js";
import { BG, FONT, HOVER_BG, K, LABEL, LINE, MATCH, OUTLINE, PLOT_GRID, PLOT_TEXT, PLOT_TICKS, Q, TRANSPARENT, WHITE } from "./theme.js";
import { hideTooltip, trackPointer } from "./tooltip.js";

const AXIS = { zeroline: false, gridcolor: PLOT_GRID, linecolor: LINE, tickfont: { size: 10, color: PLOT_TICKS } };
const AXIS3D = { ...AXIS, backgroundcolor: BG, showbackground: true, showspikes: false, title: { text: "" } };
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
    this.flat = null; // the 2-D renderer, made when a 2-D layout is first drawn
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
    this.pts = { T, dim: p.dim, q: split(0), k: split(T), coords: p.coords };
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
    const size = markerSize(T, dim);
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
      if (rows.length) overlay("matches", Int32Array.from(rows), { size: size + 3, color: MATCH, opacity: 0.95, line: { color: OUTLINE, width: 0.6 } });
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
          size: size + 6, color: sel.neighbours.map((n) => n.colour), line: { color: WHITE, width: 1 },
        }, { mode: "markers+text", text: sel.neighbours.map((n) => n.label), textposition: "top center", textfont: { color: LABEL, size: 11 } });
      }
      overlay("selected", Int32Array.of(o.selection), { size: size + 12, color: WHITE, symbol: "circle-open", line: { color: WHITE, width: 2.5 } });
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

  /** The 2-D selection as plotly layout shapes (the figure export.js saves; on screen it is plot2d.js's SVG). */
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
        fillcolor: n.colour, line: { color: WHITE, width: 1 },
        label: labelled ? { text: escapeText(n.label), textposition: "top center", font: { size: 11, color: LABEL }, padding: 4 } : undefined,
      }));
    }
    shapes.push(dot(x0, y0, 9, { line: { color: WHITE, width: 2.5 } }));
    return { shapes };
  }

  /** Redraw only the selection: in 2-D the SVG layer (the points stay), in 3-D the figure. */
  async renderOverlay() {
    if (this.pts.dim === 2 && this.flat && this.flatKey) {
      this.flat.setOverlay({ selection: this.selectionGeometry(), extras: this.opts.extra.map(flatExtra) });
      return;
    }
    await this.render();
  }

  layout() {
    const is3d = this.pts.dim === 3;
    const { layer, head, method, dim } = this.spec;
    const common = {
      margin: is3d ? { l: 0, r: 0, t: 0, b: 0 } : { l: 44, r: 12, t: 8, b: 28 },
      paper_bgcolor: TRANSPARENT,
      plot_bgcolor: BG,
      font: { color: PLOT_TEXT, family: FONT },
      showlegend: false,
      hovermode: "closest",
      uirevision: `${this.ctx.atlas.id}|${layer}|${head}|${method}|${dim}`,
      dragmode: is3d ? "orbit" : "pan",
      hoverlabel: { bgcolor: HOVER_BG },
    };
    if (is3d) return { ...common, scene: { xaxis: AXIS3D, yaxis: AXIS3D, zaxis: AXIS3D, aspectmode: "data", camera: CAMERA, bgcolor: BG } };
    return { ...common, ...this.overlayLayout(), xaxis: { ...AXIS }, yaxis: { ...AXIS, scaleanchor: "x", scaleratio: 1 } };
  }

  async render() {
    if (!this.pts) return;
    if (this.opts.color === "norm") await this.ensureNorms();
    if (this.pts.dim === 2) {
      await this.renderFlat();
      return;
    }
    this.flat?.layer.remove();
    this.flatKey = null;
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

  /** Draw a 2-D layout on the WebGL canvas: points (once per layout), colours, matches, the SVG layer. */
  async renderFlat() {
    if (this.figure) this.purgePlotly();
    if (!this.flat) {
      this.flat = new FlatPlot(this.el, {
        hover: (hit, at) => this.showHover(hit, at),
        unhover: () => {
          hideTooltip();
          this.ring.hidden = true;
        },
        click: (hit) => this.onClick?.(hit),
        painted: () => this.onPainted?.(),
      });
    }
    if (!this.flat.layer.isConnected) this.el.append(this.flat.layer);
    const { T, coords } = this.pts;
    const { layer, head, method, dim } = this.spec;
    const key = `${this.ctx.atlas.id}|${layer}|${head}|${method}|${dim}|${T}`;
    const o = this.opts;
    if (key !== this.flatKey) {
      this.flatKey = key;
      this.colours = null;
      this.flatPts = flatPoints(coords, T);
      this.flat.setPoints({ ...this.flatPts, T, key });
    }
    const mask = this.ctx.search?.active ? this.ctx.search.mask : null;
    const colours = { color: o.color, search: this.ctx.search, norms: this.norms }; // what the colours depend on
    if (!this.colours || Object.keys(colours).some((k) => colours[k] !== this.colours[k])) {
      this.colours = colours;
      this.flat.recolour(this.flatColours(mask));
    }
    const size = markerSize(T, 2);
    this.flat.setStyle({
      diameter: size,
      opacity: o.dimCorpus ? 0.25 : 0.7,
      show: o.show,
      match: { diameter: size + 3, colour: MATCH, outline: OUTLINE },
    });
    this.flat.setMatches(mask ? this.matchXY(mask) : null);
    this.flat.setOverlay({ selection: this.selectionGeometry(), extras: o.extra.map(flatExtra) });
    await this.flat.redraw();
  }

  /** RGBA of every point in the 2-D renderer's order (keys, then queries). */
  flatColours(mask) {
    const { T } = this.pts;
    const extra = { norms: this.norms, T, mask, normRange: this.normRange };
    const side = (name) => rgbaArray(markerColour(this.opts.color, this.ctx.corpus, this.identity, name, extra), T);
    const q = side("query");
    const k = side("key");
    const { rowOf } = this.flatPts;
    const out = new Uint8Array(4 * rowOf.length);
    for (let i = 0; i < rowOf.length; i++) {
      const r = rowOf[i];
      const src = r < T ? q : k;
      const at = 4 * (r < T ? r : r - T);
      out[4 * i] = src[at];
      out[4 * i + 1] = src[at + 1];
      out[4 * i + 2] = src[at + 2];
      out[4 * i + 3] = src[at + 3];
    }
    return out;
  }

  /** World coordinates of the search matches on the sides shown: queries, then keys. */
  matchXY(mask) {
    const { T, coords } = this.pts;
    const show = this.opts.show;
    const rows = [];
    if (show !== "key") for (let t = 0; t < T; t++) if (mask[t]) rows.push(t);
    if (show !== "query") for (let t = 0; t < T; t++) if (mask[t]) rows.push(T + t);
    const xy = new Float32Array(2 * rows.length);
    rows.forEach((r, i) => {
      xy[2 * i] = coords[2 * r];
      xy[2 * i + 1] = -coords[2 * r + 1];
    });
    return xy;
  }

  /** The hover ring on the point and the caller's tooltip. */
  showHover(hit, at) {
    if (hit.px) {
      const r = this.el.getBoundingClientRect();
      Object.assign(this.ring.style, { left: `${r.left + hit.px.x}px`, top: `${r.top + hit.px.y}px` });
      this.ring.hidden = false;
    }
    this.onHover?.(hit, at);
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
    return this.pixelAt(this.coordsOfRow(row));
  }

  /** Where layout coordinates [x, y] are drawn, in client pixels (2-D layouts). */
  pixelAt([x, y]) {
    if (this.pts.dim === 2 && this.flat) return this.flat.pixelAt([x, y]);
    const { xaxis, yaxis } = this.el._fullLayout;
    const r = this.el.getBoundingClientRect();
    return { x: r.left + xaxis._offset + xaxis.l2p(x), y: r.top + yaxis._offset + yaxis.l2p(y) };
  }

  /**
   * What export.js downloads: a plotly figure on the page background at the plot's size (its
   * points saved as vectors up to export.js's limit), or, for a 2-D layout of more points, a
   * picture of every point with the SVG layer over it.
   */
  exportTarget() {
    if (!this.pts) return null;
    const width = this.el.clientWidth;
    const height = this.el.clientHeight;
    if (this.pts.dim === 2 && this.flat) {
      if (2 * this.pts.T > SVG_VECTOR_POINTS) {
        return { picture: { width, height, layers: (scale) => this.flat.picture(scale) } };
      }
      const layout = this.layout();
      const [x0, y0] = [this.flat.view.x, -this.flat.view.y];
      const { w, h: ht } = this.flat.area();
      layout.xaxis.range = [x0, x0 + w / this.flat.view.scale];
      layout.yaxis.range = [y0 - ht / this.flat.view.scale, y0];
      return { figure: { data: this.traces(), layout: { ...layout, paper_bgcolor: BG } }, width, height };
    }
    if (!this.figure) return null;
    return { plotly: this.el, figure: { data: this.figure.data, layout: { ...this.figure.layout, paper_bgcolor: BG } } };
  }

  resetView() {
    if (!this.pts) return;
    if (this.pts.dim === 2 && this.flat) {
      this.flat.resetView();
      return;
    }
    if (!this.figure) return;
    if (this.pts.dim === 3) window.Plotly.relayout(this.el, { "scene.camera": CAMERA });
    else window.Plotly.relayout(this.el, { "xaxis.autorange": true, "yaxis.autorange": true });
  }

  resize() {
    if (this.pts?.dim === 2 && this.flat) this.flat.resize();
    else if (this.figure && this.el.offsetParent) window.Plotly.Plots.resize(this.el);
  }

  /** Empty the plot (both renderers). */
  purge() {
    this.ring.hidden = true;
    this.purgePlotly();
    this.flat?.destroy();
    this.flat = null;
    this.flatKey = null;
  }

  purgePlotly() {
    this.figure = null;
    if (window.Plotly) {
      window.Plotly.purge(this.el);
      this.el.querySelector(".plot-container")?.remove();
    }
    this.bound = false;
  }

  destroy() {
    this.purge();
    this.ring.remove();
  }
}

/** Plotly's marker size (px across) for a layout of T tokens; the 2-D canvas draws points as large. */
function markerSize(T, dim) {
  if (dim === 3) return T > 5000 ? 1.6 : 2.6;
  return T > 20000 ? 2.5 : T > 5000 ? 3.2 : 4.5;
}

/**
 * One head's 2-D layout (coords: rows x 2, queries then keys) in the 2-D renderer's order: the
 * keys, then the queries over them, each side in an even order (a share of it is an even
 * sample). -> {xy: world units (x, -y), rowOf: the layout row of each point, runs}.
 */
function flatPoints(coords, T) {
  const order = evenOrder(T);
  const xy = new Float32Array(4 * T);
  const rowOf = new Int32Array(2 * T);
  for (let s = 0; s < 2; s++) {
    const from = s === 0 ? T : 0; // keys first
    for (let j = 0; j < T; j++) {
      const i = s * T + j;
      const row = from + order[j];
      rowOf[i] = row;
      xy[2 * i] = coords[2 * row];
      xy[2 * i + 1] = -coords[2 * row + 1];
    }
  }
  return { xy, rowOf, runs: [[0, T], [T, T]] };
}

/** A live input's overlay as the 2-D renderer draws it. */
function flatExtra(e) {
  return { name: e.name, side: e.side, coords: e.coords, labels: e.labels ?? null };
}

/** Token text for plotly annotations, which read a few HTML tags and entities. */
function escapeText(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
