// The 2-D head plot: one head's points on a WebGL canvas (points.js) with an SVG layer over it
// for what is few and drawn crisp (axes, the selected point and its neighbours, a live input's
// points with their labels). The wheel zooms at the pointer, a drag pans, and the point under
// the pointer is found in a grid index (pick.js), so a head of a million points hovers at once.
// plot.js decides what is drawn; this module only draws it and says what lies where.

import { h } from "./dom.js";
import { bindGestures } from "./gestures.js";
import { NearestIndex } from "./pick.js";
import { PointCanvas } from "./points.js";
import { K, K_LABEL, LABEL, PLOT_GRID, PLOT_TICKS, Q, Q_LABEL, WHITE, glColour } from "./theme.js";

const MARGIN = { l: 44, r: 12, t: 8, b: 28 }; // CSS px around the points, for the tick labels
const HIT_PX = 4; // a point hovers when the pointer is this close to its edge
const EXTRA_SIZE = 11; // a live input's markers, CSS px across

export class FlatPlot {
  /** el: the plot's element; on: {hover(hit, at), unhover(), click(hit), painted({drawn, full})}; hit as locate() returns. */
  constructor(el, on) {
    this.el = el;
    this.on = on;
    this.layer = h("div", { class: "flat-layer" });
    this.canvas = h("canvas", { class: "points" });
    this.under = h("svg", { svg: true, class: "plot-overlay under" }); // the axes, under the points
    this.svg = h("svg", { svg: true, class: "plot-overlay" });
    this.layer.append(this.under, this.canvas, this.svg);
    el.append(this.layer);
    this.points = new PointCanvas(this.canvas, () => this.frameSpec(), { transparent: true });
    this.points.onPainted = ({ drawn, full }) => {
      this.el.dataset.drawn = String(drawn);
      this.on.painted?.({ drawn, full });
    };
    this.view = null; // {x, y, scale}: world at the canvas's top-left, CSS px per unit
    this.data = null;
    this.overlay = { selection: null, extras: [] };
    this.bind();
    this.resizes = new ResizeObserver(() => this.resize());
    this.resizes.observe(el);
  }

  /**
   * The head's points. xy: Float32Array of world units (x, -y of the layout) in drawing
   * order; rowOf: Int32Array, the layout row of each; runs: [[first, count]] of keys then
   * queries; key: names the layout (a new key fits the view to the points).
   */
  setPoints({ xy, rowOf, runs, T, key }) {
    this.points.put("points", { xy, runs });
    this.data = { xy, rowOf, runs, T };
    this.index = null;
    if (key !== this.key) {
      this.key = key;
      this.fit();
    }
    // Index the points for hovering once they are drawn, before the pointer asks.
    const data = this.data;
    setTimeout(() => this.data === data && this.nearestIndex(), 0);
  }

  recolour(rgba) {
    this.points.recolour("points", rgba);
  }

  /** Search matches drawn over the points: xy in world units, or null for none. */
  setMatches(xy) {
    if (xy?.length) this.points.put("matches", { xy });
    else this.points.drop("matches");
  }

  /** style: {diameter, opacity, show: "both"|"query"|"key", match: {diameter, colour, outline}}. */
  setStyle(style) {
    this.style = style;
    this.points.style("points", { diameter: style.diameter, opacity: style.opacity });
    const m = style.match;
    this.points.style("matches", { diameter: m.diameter, opacity: 0.95, tint: glColour(m.colour), outline: glColour(m.outline).slice(0, 3), outlineWidth: 0.6 });
  }

  /** What the SVG layer shows: {selection: plot.js's selection geometry or null, extras: [{name, side, coords, labels}]}. */
  setOverlay(overlay) {
    this.overlay = overlay;
    this.drawOverlay();
  }

  redraw(moving = false) {
    return this.points.redraw({ moving });
  }

  // --- the view ------------------------------------------------------------------------------

  area() {
    return { w: Math.max(1, this.el.clientWidth - MARGIN.l - MARGIN.r), h: Math.max(1, this.el.clientHeight - MARGIN.t - MARGIN.b) };
  }

  /** Show every point (plus 5% around), one unit as long across as up. */
  fit() {
    const xy = this.data?.xy;
    if (!xy) return;
    let x0 = Infinity;
    let y0 = Infinity;
    let x1 = -Infinity;
    let y1 = -Infinity;
    for (let i = 0; i < xy.length; i += 2) {
      const x = xy[i];
      const y = xy[i + 1];
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    if (!(x1 >= x0)) [x0, y0, x1, y1] = [-1, -1, 1, 1];
    const { w, h: ht } = this.area();
    this.lastArea = { w, h: ht };
    const scale = Math.min(w / (1.1 * Math.max(x1 - x0, 1e-9)), ht / (1.1 * Math.max(y1 - y0, 1e-9)));
    this.view = { x: (x0 + x1) / 2 - w / 2 / scale, y: (y0 + y1) / 2 - ht / 2 / scale, scale };
    this.fitted = true; // until the view is zoomed or panned, a new size fits it again
  }

  resetView() {
    this.fit();
    this.drawOverlay();
    this.points.redraw();
  }

  /** The plot's element changed size: fit again, or keep the middle where it was once zoomed. */
  resize() {
    if (!this.view || !this.el.clientWidth) return;
    if (this.fitted) {
      this.fit();
    } else {
      const before = this.lastArea;
      const now = this.area();
      this.lastArea = now;
      this.view.x += (before.w - now.w) / 2 / this.view.scale;
      this.view.y += (before.h - now.h) / 2 / this.view.scale;
    }
    this.drawOverlay();
    this.points.redraw();
  }

  frameSpec() {
    if (!this.data || !this.view || !this.layer.isConnected || this.el.offsetParent === null) return null;
    const { w, h: ht } = this.area();
    Object.assign(this.canvas.style, { left: `${MARGIN.l}px`, top: `${MARGIN.t}px` });
    this.points.resize(w, ht);
    const show = this.style?.show ?? "both";
    const [keys, queries] = this.data.runs;
    const visible = [show !== "query" ? keys : [keys[0], 0], show !== "key" ? queries : [queries[0], 0]];
    return { view: this.view, runs: (name) => (name === "points" ? visible : null) };
  }

  /** Layout coordinates [x, y] -> pixels in the plot's element. */
  toPx([x, y]) {
    const v = this.view;
    return { x: MARGIN.l + (x - v.x) * v.scale, y: MARGIN.t + (-y - v.y) * v.scale };
  }

  /** Layout coordinates [x, y] -> client pixels. */
  pixelAt(xy) {
    const r = this.el.getBoundingClientRect();
    const p = this.toPx(xy);
    return { x: r.left + p.x, y: r.top + p.y };
  }

  // --- pan, zoom, hover, click ---------------------------------------------------------------

  bind() {
    let from = null; // the view when a drag began
    // On the layer, not the plot's element: in 3-D plotly has the element, and this layer is gone.
    this.unbind = bindGestures(this.layer, {
      zoom: (x, y, factor) => (this.view ? this.zoomAt(x, y, factor) : false),
      drag: (dx, dy) => {
        from ??= { ...this.view };
        this.view.x = from.x - dx / this.view.scale;
        this.view.y = from.y - dy / this.view.scale;
        this.moved();
      },
      tap: (at) => {
        const hit = this.locate(at);
        if (hit) this.on.click?.(hit);
      },
      hover: (at) => this.hover(at),
      leave: () => this.on.unhover?.(),
    });
    this.layer.addEventListener("pointerdown", () => (from = null));
  }

  zoomAt(clientX, clientY, factor) {
    const r = this.el.getBoundingClientRect();
    const px = clientX - r.left - MARGIN.l;
    const py = clientY - r.top - MARGIN.t;
    const v = this.view;
    const wx = v.x + px / v.scale;
    const wy = v.y + py / v.scale;
    v.scale *= factor;
    v.x = wx - px / v.scale;
    v.y = wy - py / v.scale;
    this.moved();
  }

  moved() {
    this.fitted = false;
    this.on.unhover?.();
    this.drawOverlay();
    this.points.redraw({ moving: true });
  }

  hover(at) {
    const hit = this.locate(at);
    if (hit) this.on.hover?.(hit, at);
    else this.on.unhover?.();
  }

  nearestIndex() {
    if (!this.index && this.data) this.index = new NearestIndex(this.data.xy);
    return this.index;
  }

  /**
   * What lies under client pixel `at`: {row, token, side, px} for a corpus point, {extra,
   * index, px} for a live input's point (drawn on top: it wins), or null. px: where it is drawn.
   */
  locate(at) {
    if (!this.data || !this.view) return null;
    const r = this.el.getBoundingClientRect();
    const px = at.x - r.left;
    const py = at.y - r.top;
    let best = null;
    let bestD = (EXTRA_SIZE / 2 + HIT_PX) ** 2;
    for (const extra of this.overlay.extras) {
      extra.coords.forEach((c, index) => {
        const p = this.toPx(c);
        const d = (p.x - px) ** 2 + (p.y - py) ** 2;
        if (d <= bestD) {
          bestD = d;
          best = { extra, index, px: p };
        }
      });
    }
    if (best) return best;
    const v = this.view;
    const wx = v.x + (px - MARGIN.l) / v.scale;
    const wy = v.y + (py - MARGIN.t) / v.scale;
    const radius = ((this.style?.diameter ?? 3) / 2 + HIT_PX) / v.scale;
    const show = this.style?.show ?? "both";
    const { T, rowOf, xy } = this.data;
    const keep = show === "both" ? null : (i) => (rowOf[i] < T) === (show === "query");
    const i = this.nearestIndex().nearest(wx, wy, radius, keep);
    if (i < 0) return null;
    const row = rowOf[i];
    return { row, token: row % T, side: row < T ? "query" : "key", px: this.toPx([xy[2 * i], -xy[2 * i + 1]]) };
  }

  // --- the SVG layer ---------------------------------------------------------------------------

  drawOverlay() {
    if (!this.view) return;
    const W = this.el.clientWidth;
    const H = this.el.clientHeight;
    for (const svg of [this.under, this.svg]) {
      svg.setAttribute("width", W);
      svg.setAttribute("height", H);
    }
    this.under.replaceChildren(this.axes(H));
    this.svg.replaceChildren(...this.selection(), ...this.extras());
  }

  axes(H) {
    const g = h("g", { svg: true, class: "axes" });
    const { w, h: ht } = this.area();
    const v = this.view;
    const line = (x1, y1, x2, y2) => h("line", { svg: true, x1, y1, x2, y2, stroke: PLOT_GRID, "stroke-width": 1 });
    const label = (x, y, anchor, text) => h("text", { svg: true, x, y, "text-anchor": anchor, fill: PLOT_TICKS, "font-size": 10 }, text);
    for (const t of ticks(v.x, v.x + w / v.scale)) {
      const x = MARGIN.l + (t - v.x) * v.scale;
      g.append(line(x, MARGIN.t, x, MARGIN.t + ht), label(x, H - MARGIN.b + 14, "middle", tickText(t)));
    }
    for (const t of ticks(-(v.y + ht / v.scale), -v.y)) {
      const y = MARGIN.t + (-t - v.y) * v.scale;
      g.append(line(MARGIN.l, y, MARGIN.l + w, y), label(MARGIN.l - 6, y + 3, "end", tickText(t)));
    }
    return g;
  }

  /** The selected point, lines to its neighbours (thicker for stronger ones) and their dots. */
  selection() {
    const sel = this.overlay.selection;
    if (!sel) return [];
    const from = this.toPx(sel.from);
    const lines = h("g", { svg: true, class: "neighbour-lines" });
    const dots = h("g", { svg: true, class: "neighbour-dots" });
    const labelled = sel.neighbours.length <= 20;
    for (const n of sel.neighbours) {
      const to = this.toPx(n.to);
      lines.append(h("line", { svg: true, class: "neighbour-line", x1: from.x, y1: from.y, x2: to.x, y2: to.y, stroke: n.colour, "stroke-width": 1 + 2.5 * n.rel, "stroke-opacity": 0.3 + 0.7 * n.rel }));
      dots.append(h("circle", { svg: true, class: "neighbour-dot", cx: to.x, cy: to.y, r: 5, fill: n.colour, stroke: WHITE, "stroke-width": 1 }));
      if (labelled) dots.append(h("text", { svg: true, class: "neighbour-label", x: to.x, y: to.y - 9, "text-anchor": "middle", fill: LABEL, "font-size": 11 }, n.label));
    }
    const ring = h("circle", { svg: true, class: "selected-ring", cx: from.x, cy: from.y, r: 9, fill: "none", stroke: WHITE, "stroke-width": 2.5 });
    return [lines, dots, ring];
  }

  /** A live input's queries (diamonds) and keys (squares), with their tokens' labels when few. */
  extras() {
    return this.overlay.extras.map((e) => {
      const g = h("g", { svg: true, class: `extra ${e.side}`, dataset: { name: e.name } });
      const s = EXTRA_SIZE / 2;
      e.coords.forEach((c, i) => {
        const p = this.toPx(c);
        const shape = e.side === "query"
          ? h("path", { svg: true, d: `M${p.x},${p.y - s}L${p.x + s},${p.y}L${p.x},${p.y + s}L${p.x - s},${p.y}Z` })
          : h("rect", { svg: true, x: p.x - s * 0.8, y: p.y - s * 0.8, width: 1.6 * s, height: 1.6 * s });
        shape.setAttribute("class", "marker");
        shape.setAttribute("fill", e.side === "query" ? Q : K);
        shape.setAttribute("stroke", WHITE);
        shape.setAttribute("stroke-width", 1.2);
        shape.dataset.x = String(c[0]);
        shape.dataset.y = String(c[1]);
        g.append(shape);
        if (e.labels) {
          const dy = e.side === "query" ? -s - 4 : s + 12;
          g.append(h("text", { svg: true, x: p.x, y: p.y + dy, "text-anchor": "middle", fill: e.side === "query" ? Q_LABEL : K_LABEL, "font-size": 11 }, e.labels[i]));
        }
      });
      return g;
    });
  }

  /**
   * For export, what the plot shows as layers from the bottom: the axes (SVG), every point in
   * view at `scale` device pixels per CSS pixel ({canvas, at}: where it lies in the plot's
   * element, CSS px), the selection and a live input's points (SVG).
   */
  picture(scale) {
    const { w, h: ht } = this.area();
    const canvas = this.points.picture(w, ht, this.view, scale);
    return [this.under.cloneNode(true), { canvas, at: { x: MARGIN.l, y: MARGIN.t, w, h: ht } }, this.svg.cloneNode(true)];
  }

  destroy() {
    this.resizes.disconnect();
    this.unbind();
    this.points.destroy();
    this.layer.remove();
  }
}

/** Round tick values covering [lo, hi], about six of them. */
function ticks(lo, hi) {
  const span = hi - lo;
  if (!(span > 0)) return [];
  const raw = span / 6;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) out.push(Math.abs(t) < step / 1e6 ? 0 : t);
  return out;
}

function tickText(t) {
  return Number(t.toPrecision(6)).toString();
}
