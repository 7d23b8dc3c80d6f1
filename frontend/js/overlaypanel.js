// The controls of the overlays (overlays.js) in a side panel: tint heads by a statistic, order
// the heads of each layer by one, dim the heads outside a label kind or a threshold. Each
// control moves the URL state (tint, sort, kind, where); the matrix and the heads view use it.

import { fmt, h } from "./dom.js";
import { parseSort, parseWhere, whereText } from "./overlays.js";
import { TINT, rampGradient } from "./theme.js";

/** A <select> of [value, label] options with `current` chosen. */
function select(label, options, current, onchange, cls) {
  const el = h("select", { "aria-label": label, class: cls, onchange: (e) => onchange(e.target.value) },
    options.map(([value, text]) => h("option", { value }, text)));
  el.value = options.some(([v]) => v === current) ? current : options[0][0];
  return el;
}

const row = (label, ...controls) => h("label", { class: "field stacked" }, h("span", { class: "field-label" }, label), ...controls);

/**
 * The overlay controls for statistics `stats` (HeadStats) and the state; set(patch) moves it.
 * tint: the matrix's controls (a tint; the order is within each layer) or the map's (no tint: it
 * sizes points instead; the order is the table's).
 */
export function overlayControls(stats, state, set, { tint = true } = {}) {
  const names = stats.names;
  const box = h("div", { class: "overlay-controls" });
  if (tint) {
    box.append(row("Tint heads by",
      select("Tint heads by", [["", "nothing"], ...names.map((n) => [n, n])], stats.has(state.tint) ? state.tint : "",
        (v) => set({ tint: v }), "tint-select")));
    if (stats.has(state.tint)) box.append(tintLegend(stats, state.tint));
  }
  const sort = parseSort(state.sort, stats);
  // The matrix orders the heads within each layer; the table, every head at once.
  box.append(row(tint ? "Order heads in each layer by" : "Order the table by",
    select("Order heads by", [["", "head index"], ...names.flatMap((n) => [[`-${n}`, `${n}, highest first`], [n, `${n}, lowest first`]])],
      sort ? `${sort.desc ? "-" : ""}${sort.name}` : "", (v) => set({ sort: v }), "sort-select")));
  box.append(row("Keep label kind (dim the rest)",
    select("Keep label kind", [["", "every kind"], ...stats.kindCounts.map(([k, n]) => [k, `${k} (${n})`])],
      state.kind, (v) => set({ kind: v }), "kind-select")));
  box.append(row("Keep heads where", thresholdControls(stats, state.where, set)));
  return box;
}

/** statistic, ≥ or ≤, a number: state.where ("" when no statistic is chosen). */
function thresholdControls(stats, where, set) {
  const w = parseWhere(where, stats);
  const fallback = (name) => stats.thresholds[name] ?? Number(fmt((stats.range(name)[0] + stats.range(name)[1]) / 2, 2));
  let name = w?.name ?? "";
  let op = w?.op ?? ">=";
  let value = w?.value ?? "";
  const commit = () => set({ where: name && value !== "" && Number.isFinite(Number(value)) ? whereText(name, op, Number(value)) : "" });
  const input = h("input", {
    type: "number", class: "num where-value", step: "any", "aria-label": "Threshold", value: w ? String(w.value) : "",
    disabled: !name, onchange: (e) => {
      value = e.target.value;
      commit();
    },
  });
  return h("div", { class: "threshold" },
    select("Threshold statistic", [["", "no threshold"], ...stats.names.map((n) => [n, n])], name, (v) => {
      name = v;
      if (name && value === "") value = fallback(name);
      commit();
    }, "where-stat"),
    select("Threshold direction", [[">=", "≥"], ["<=", "≤"]], op, (v) => {
      op = v;
      commit();
    }, "where-op"),
    input);
}

/** The tint's colour bar with the ends of its scale. */
export function tintLegend(stats, name) {
  const [lo, hi] = stats.range(name);
  const unit = stats.unit(name);
  return h("div", { class: "tint-legend", title: stats.describe(name) },
    h("i", { style: { background: rampGradient(TINT) } }),
    h("div", { class: "legend-ends" }, h("span", {}, fmt(lo, 2)), h("span", {}, `${fmt(hi, 2)}${unit ? ` ${unit}` : ""}`)));
}
