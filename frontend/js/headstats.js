// Per-head statistics on the page: the API's columns (GET .../stats) as one object that answers
// per head and per statistic, how a number reads (unit, definition), and what the page says
// while an atlas's statistics are not computed yet (409). Used by the head view's panel, the
// heads view, the matrix's overlays and the comparison.

import { errorBox, fmt, h, headLabel } from "./dom.js";
import { kindColour } from "./theme.js";

export class HeadStats {
  /** answer: GET /api/atlases/{atlas}/stats as JSON. */
  constructor(answer) {
    const c = answer.columns;
    this.atlas = answer.atlas;
    this.n = answer.n;
    this.columns = c;
    this.definitions = answer.definitions || {};
    this.thresholds = answer.thresholds || {};
    this.distanceUnit = answer.distance_unit || "tokens";
    this.sample = answer.sample || {};
    // The statistics in the API's column order (a new one in stats.DEFINITIONS shows up here).
    this.names = Object.keys(c).filter((k) => k in this.definitions);
    this.layers = 1 + Math.max(-1, ...c.layer);
    this.heads = 1 + Math.max(-1, ...c.head);
    this.index = new Int32Array(this.layers * this.heads).fill(-1); // layer * heads + head -> row
    c.layer.forEach((layer, i) => (this.index[layer * this.heads + c.head[i]] = i));
    // Kinds from the most heads to the fewest (ties: first seen), for legends and the filter.
    const count = new Map();
    for (const k of c.kind) count.set(k, (count.get(k) || 0) + 1);
    this.kindCounts = [...count.entries()].sort((a, b) => b[1] - a[1]);
    this.kinds = this.kindCounts.map(([k]) => k);
  }

  /** The row of head (layer, head), or -1. */
  rowOf(layer, head) {
    return layer < this.layers && head < this.heads ? this.index[layer * this.heads + head] : -1;
  }

  /** Value of statistic `name` in row i (null: it does not apply to that head). */
  value(name, i) {
    const v = this.columns[name]?.[i];
    return v === undefined ? null : v;
  }

  has(name) {
    return this.names.includes(name);
  }

  /** The unit of a statistic as it reads after a number: "" for fractions, "tokens" or "patches" for distance. */
  unit(name) {
    const u = this.definitions[name]?.unit || "";
    if (u === "fraction") return "";
    return u.includes(" or ") ? this.distanceUnit : u;
  }

  /** The span a scale of `name` covers: fractions 0..1 whatever the atlas, others 0..the largest value. */
  range(name) {
    if (this.definitions[name]?.unit === "fraction") return [0, 1];
    let hi = 0;
    for (const v of this.columns[name] || []) if (v !== null && v > hi) hi = v;
    return [0, hi || 1];
  }

  /** Where value v lies on the scale of `name`, 0..1 (NaN for null). */
  scaled(name, v) {
    if (v === null || v === undefined) return NaN;
    const [lo, hi] = this.range(name);
    return Math.max(0, Math.min(1, (v - lo) / (hi - lo)));
  }

  /** "0.873" (fractions: three decimals, never "1.3e-8"), "3.27 tokens", or "–" (does not apply). */
  format(name, v) {
    if (v === null || v === undefined) return "–";
    const unit = this.unit(name);
    return unit ? `${Number(v).toFixed(2)} ${unit}` : Number(v).toFixed(3);
  }

  /** The statistic's definition with its unit, for a tooltip. */
  describe(name) {
    const d = this.definitions[name];
    return d ? `${name}: ${d.definition} (${this.unit(name) || d.unit})` : name;
  }
}

/**
 * The statistics of head `row` as a definition list: each name carries its definition as a
 * tooltip; `values(name)` gives the number (a head map point's stats, or a table row's).
 */
export function statsList(stats, values) {
  return h("dl", { class: "kv stats-list" },
    stats.names.flatMap((name) => {
      const v = values(name);
      return [
        h("dt", { title: stats.describe(name), dataset: { stat: name } }, name),
        h("dd", { dataset: { stat: name }, title: v === null ? "does not apply to this head" : null }, stats.format(name, v)),
      ];
    }));
}

/** The label line of a head: a swatch of its kind's colour and the label with the numbers behind it. */
export function labelLine(kind, label, colour) {
  return h("div", { class: "head-label", dataset: { kind } },
    h("span", { class: "swatch", style: { background: colour } }), h("span", {}, label));
}

/**
 * A head's card: its name, label line, every statistic and, from the map of heads, the heads
 * that attend most like it (links when `open(layer, head)` is given). point: {layer, head, kind, label}.
 */
export function headCard(stats, point, { nearest = [], open = null } = {}) {
  const i = stats.rowOf(point.layer, point.head);
  return h("div", { class: "head-card", dataset: { layer: point.layer, head: point.head } },
    h("div", { class: "card-title" }, headLabel(point.layer, point.head)),
    labelLine(point.kind, point.label, kindColour(point.kind, stats.kinds)),
    statsList(stats, (name) => (i < 0 ? null : stats.value(name, i))),
    nearest.length ? h("div", { class: "nearest" }, h("span", { class: "muted" }, "Attends most like: "),
      nearest.flatMap((n, j) => [j ? ", " : "",
        open ? h("button", { class: "link", onclick: () => open(n.layer, n.head) }, headLabel(n.layer, n.head)) : headLabel(n.layer, n.head),
        h("span", { class: "muted" }, ` (${fmt(n.distance, 2)})`)])) : null);
}

/**
 * What a view shows when an atlas's statistics cannot be read: for 409 (not computed yet) how to
 * compute them, with a button that asks again; else the error.
 */
export function statsUnavailable(err, atlasId, retry = null) {
  if (err?.status !== 409) return errorBox(err, `Could not load the head statistics of ${atlasId}`);
  return h("div", { class: "error-box info stats-missing", role: "status", dataset: { status: 409 } },
    h("div", { class: "error-title" }, "Head statistics are not computed yet for this atlas"),
    h("div", { class: "error-detail" }, "A build computes them after its layouts; to compute them now, run:"),
    h("pre", {}, `qkatlas stats ${atlasId}`),
    retry ? h("button", { class: "btn small", onclick: retry }, "Look again") : null);
}
