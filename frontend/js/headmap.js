// The map of heads (GET .../headmap) drawn as SVG: one point per head where metric MDS put it
// (heads that attend alike lie close), coloured by layer or by label kind, sized by a
// statistic, dimmed where the filter leaves it out. Hovering a point rings it and draws lines
// to its nearest heads by the full distance (the map only approximates it); a click is the
// caller's. A few thousand heads stay light as SVG: no WebGL needed. It draws itself again
// when its element changes size.

import { h, headLabel } from "./dom.js";
import { BG, FAINT, LABEL, LAYERS, WHITE, kindColour, rampColour } from "./theme.js";

const PAD = 18; // px around the points
const LABEL_ALL = 48; // maps of up to this many heads name every point

/** The width and height of a map's points, in map units (distance between heads). */
export function extent(map) {
  const xs = map.points.map((p) => p.x);
  const ys = map.points.map((p) => p.y);
  return { w: Math.max(...xs) - Math.min(...xs), h: Math.max(...ys) - Math.min(...ys) };
}

/** A round length (1, 2 or 5 times a power of ten) near `x`, for a scale bar. */
function roundLength(x) {
  const p = 10 ** Math.floor(Math.log10(x));
  return [1, 2, 5, 10].map((m) => m * p).reduce((a, b) => (Math.abs(b - x) < Math.abs(a - x) ? b : a));
}

/** A point's radius with no size statistic: smaller as the map holds more heads. */
const baseRadius = (n) => (n <= 64 ? 7 : n <= 300 ? 5.5 : 4);

export class HeadMapPlot {
  /** el: the element to fill; onHover(point | null, {x, y}); onClick(point). */
  constructor(el, { onHover = null, onClick = null } = {}) {
    this.el = el;
    this.onHover = onHover;
    this.onClick = onClick;
    this.map = null;
    this.placed = []; // per point: {x, y, r} in SVG pixels
    this.svg = h("svg", { svg: true, class: "headmap-svg", role: "img" });
    el.append(this.svg);
    this.hovered = -1;
    this.svg.addEventListener("pointermove", (e) => this.hover(e));
    this.svg.addEventListener("pointerleave", () => this.hover(null));
    this.svg.addEventListener("click", (e) => {
      const i = this.hit(e);
      if (i >= 0) this.onClick?.(this.map.points[i]);
    });
    this.size = "";
    this.resizes = new ResizeObserver(() => {
      if (this.map && el.clientWidth && `${el.clientWidth}x${el.clientHeight}` !== this.size) this.draw(this.map, this.opts);
    });
    this.resizes.observe(el);
  }

  /**
   * Draw `map` (the API's answer). opts: {stats (HeadStats), colour: "layer" | "kind", size: a
   * statistic or "", keep: predicate of the stats row or null, selected: {layer, head} or null,
   * span: {w, h} in map units to fit (extent() of several maps: one scale for all) or null (its own)}.
   */
  draw(map, opts) {
    this.map = map;
    this.opts = opts;
    const { stats, colour, size, keep, selected, span = null } = opts;
    const pts = map.points;
    this.size = `${this.el.clientWidth}x${this.el.clientHeight}`;
    const W = Math.max(200, this.el.clientWidth);
    const H = Math.max(200, this.el.clientHeight);
    this.svg.setAttribute("width", W);
    this.svg.setAttribute("height", H);
    this.svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const xs = pts.map((p) => p.x);
    const ys = pts.map((p) => p.y);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    const base = baseRadius(pts.length);
    const rMax = size ? 2.4 * base : base;
    // One scale for both axes: distances on the map mean the same across and down.
    const fit = span ?? { w: x1 - x0, h: y1 - y0 };
    const s = Math.min((W - 2 * (PAD + rMax)) / Math.max(fit.w, 1e-9), (H - 2 * (PAD + rMax)) / Math.max(fit.h, 1e-9));
    const cx = W / 2 - ((x0 + x1) / 2) * s;
    const cy = H / 2 + ((y0 + y1) / 2) * s;
    const lastLayer = Math.max(1, map.layers - 1);
    this.placed = pts.map((p) => {
      const row = stats.rowOf(p.layer, p.head);
      const t = size ? stats.scaled(size, row < 0 ? null : stats.value(size, row)) : 1;
      return {
        x: cx + p.x * s,
        y: cy - p.y * s, // y up, as the map's coordinates
        r: size ? (Number.isNaN(t) ? 0.4 * base : 0.4 * base + (rMax - 0.4 * base) * Math.sqrt(t)) : base,
        fill: colour === "kind" ? kindColour(p.kind, stats.kinds) : rampColour(LAYERS, p.layer / lastLayer),
        kept: !keep || (row >= 0 && keep(row)),
      };
    });
    // Big points under small ones, left-out heads under kept ones.
    const order = pts.map((_, i) => i).sort((a, b) => (this.placed[a].kept - this.placed[b].kept) || (this.placed[b].r - this.placed[a].r));
    const dots = h("g", { svg: true, class: "dots" });
    for (const i of order) {
      const p = pts[i];
      const at = this.placed[i];
      dots.append(h("circle", {
        svg: true, cx: at.x.toFixed(1), cy: at.y.toFixed(1), r: at.r.toFixed(1), fill: at.fill,
        stroke: BG, "stroke-width": 1, "fill-opacity": at.kept ? 0.92 : 0.16, "stroke-opacity": at.kept ? 1 : 0.3,
        class: `dot${at.kept ? "" : " dimmed"}`, dataset: { layer: p.layer, head: p.head, kind: p.kind },
      }));
    }
    const labels = h("g", { svg: true, class: "labels" });
    const named = pts.length <= LABEL_ALL ? pts.map((_, i) => i) : [];
    const sel = selected ? pts.findIndex((p) => p.layer === selected.layer && p.head === selected.head) : -1;
    if (sel >= 0 && !named.includes(sel)) named.push(sel);
    for (const i of named) labels.append(this.label(i, i === sel));
    const ring = sel >= 0
      ? h("circle", { svg: true, class: "selected-ring", cx: this.placed[sel].x, cy: this.placed[sel].y, r: this.placed[sel].r + 4, fill: "none", stroke: WHITE, "stroke-width": 2 })
      : null;
    this.hoverLayer = h("g", { svg: true, class: "hover-layer" });
    this.svg.replaceChildren(h("rect", { svg: true, width: W, height: H, fill: BG }), this.scaleBar(s, H), this.hoverLayer, dots, labels, ...(ring ? [ring] : []));
    this.scale = s;
    this.hovered = -1;
  }

  /** A bar of a round distance between heads at the bottom left (s: pixels per map unit). */
  scaleBar(s, H) {
    const d = roundLength(90 / s);
    const x = 12;
    const y = H - 12;
    return h("g", { svg: true, class: "scale-bar", dataset: { distance: d } },
      h("line", { svg: true, x1: x, y1: y, x2: x + d * s, y2: y, stroke: FAINT, "stroke-width": 2 }),
      h("text", { svg: true, x, y: y - 5, fill: FAINT, "font-size": 10 }, `distance ${d}`));
  }

  label(i, bold = false) {
    const p = this.map.points[i];
    const at = this.placed[i];
    return h("text", {
      svg: true, x: (at.x + at.r + 3).toFixed(1), y: (at.y + 4).toFixed(1), fill: LABEL,
      "font-size": bold ? 12 : 10, "font-weight": bold ? 700 : 400, "pointer-events": "none",
    }, headLabel(p.layer, p.head));
  }

  /** The point under a pointer event (within its radius and a few pixels), or -1. */
  hit(e) {
    if (!this.map) return -1;
    const r = this.svg.getBoundingClientRect();
    const x = e.clientX - r.left;
    const y = e.clientY - r.top;
    let best = -1;
    let bestD = Infinity;
    this.placed.forEach((p, i) => {
      const d = Math.hypot(p.x - x, p.y - y);
      if (d <= Math.max(p.r + 3, 7) && d < bestD) {
        best = i;
        bestD = d;
      }
    });
    return best;
  }

  hover(e) {
    const i = e ? this.hit(e) : -1;
    if (i === this.hovered) return;
    this.hovered = i;
    this.svg.style.cursor = i >= 0 ? "pointer" : "";
    if (i < 0) {
      this.hoverLayer.replaceChildren();
      this.onHover?.(null, null);
      return;
    }
    const p = this.map.points[i];
    const at = this.placed[i];
    const lines = p.nearest.map((n) => {
      const j = this.map.points.findIndex((q) => q.layer === n.layer && q.head === n.head);
      if (j < 0) return null;
      return h("line", { svg: true, class: "near-line", x1: at.x, y1: at.y, x2: this.placed[j].x, y2: this.placed[j].y, stroke: WHITE, "stroke-opacity": 0.55, "stroke-width": 1.2 });
    });
    this.hoverLayer.replaceChildren(...lines.filter(Boolean),
      h("circle", { svg: true, cx: at.x, cy: at.y, r: at.r + 3, fill: "none", stroke: WHITE, "stroke-width": 1.5 }),
      this.label(i, true));
    this.onHover?.(p, { x: e.clientX, y: e.clientY });
  }

  /** Where head (layer, head) is drawn, in client pixels (tests hover and click it there), or null. */
  pixelOf(layer, head) {
    const i = this.map?.points.findIndex((p) => p.layer === layer && p.head === head) ?? -1;
    if (i < 0) return null;
    const r = this.svg.getBoundingClientRect();
    return { x: r.left + this.placed[i].x, y: r.top + this.placed[i].y, r: this.placed[i].r, fill: this.placed[i].fill, kept: this.placed[i].kept };
  }

  /** What export.js saves: the SVG as drawn. */
  exportTarget() {
    return this.map ? { svg: this.svg } : null;
  }

  destroy() {
    this.resizes.disconnect();
  }
}
