// The statistics table: one row per head (its label and every statistic), sorted by a column
// header's click (the URL's `sort`), rows the filter leaves out dimmed, a click on a row opens
// that head; and the buttons that download the same table as CSV or Parquet from the API.

import * as api from "./api.js";
import { fill, h, headLabel } from "./dom.js";
import { parseSort, sortedRows } from "./overlays.js";
import { labelLine } from "./headstats.js";
import { kindColour } from "./theme.js";

/** The next `sort` after a click on column `name`: descending first, then ascending; "" = by head. */
export function nextSort(sort, name) {
  if (!name) return "";
  return sort === `-${name}` ? name : `-${name}`;
}

export class StatsTable {
  /** el: where the table goes; onOpen(layer, head); onSort(sort). */
  constructor(el, { onOpen, onSort }) {
    this.el = el;
    this.onOpen = onOpen;
    this.onSort = onSort;
  }

  /** stats: HeadStats; opts: {sort, keep: predicate of a row or null, selected: {layer, head} or null}. */
  render(stats, { sort = "", keep = null, selected = null } = {}) {
    const s = parseSort(sort, stats);
    const c = stats.columns;
    const header = (name, label, title) => {
      const on = name ? s?.name === name : !s;
      const arrow = on && name ? (s.desc ? " ↓" : " ↑") : "";
      return h("th", {
        class: `${on ? "sorted" : ""}${name ? " num" : ""}`, title, dataset: { stat: name || "" },
        "aria-sort": on ? (name && !s.desc ? "ascending" : name ? "descending" : "ascending") : null,
        onclick: () => this.onSort(nextSort(sort, name)),
      }, label + arrow);
    };
    const head = h("tr", {},
      header("", "head", "Layer and head (click: back to layer/head order)"),
      h("th", { title: "The label the first rule that holds gives this head (docs/stats.md)" }, "label"),
      ...stats.names.map((name) => header(name, name, `${stats.describe(name)}\nClick to sort.`)));
    const body = h("tbody");
    for (const i of sortedRows(stats, sort)) {
      const layer = c.layer[i];
      const hd = c.head[i];
      const current = selected && selected.layer === layer && selected.head === hd;
      body.append(h("tr", {
        class: `${keep && !keep(i) ? "dimmed" : ""}${current ? " current" : ""}`,
        dataset: { layer, head: hd },
        title: `Open ${headLabel(layer, hd)}`,
        onclick: () => this.onOpen(layer, hd),
      },
      h("td", { class: "head-cell" }, headLabel(layer, hd)),
      h("td", { class: "label-cell" }, labelLine(c.kind[i], c.label[i], kindColour(c.kind[i], stats.kinds))),
      ...stats.names.map((name) => h("td", { class: "num", dataset: { stat: name } }, stats.format(name, stats.value(name, i)).replace(/ .*/, "")))));
    }
    fill(this.el, h("table", { class: "stats-table" }, h("thead", {}, head), body));
    this.el.querySelector("tr.current")?.scrollIntoView({ block: "nearest" });
  }
}

/** The CSV and Parquet download buttons of an atlas's statistics (the server names the files). */
export function downloadButtons(atlasId) {
  const link = (format, label) => h("a", {
    class: "btn small", href: api.statsFileUrl(atlasId, format), download: "", dataset: { format },
    title: `Every head's statistics as ${label} (GET /api/atlases/${atlasId}/stats?format=${format})`,
  }, label);
  return h("span", { class: "downloads" }, link("csv", "CSV"), link("parquet", "Parquet"));
}
