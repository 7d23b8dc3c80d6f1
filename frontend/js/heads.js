// Heads view: what every head of the atlas does. The map of heads (headmap.js: heads that
// attend alike lie close) above the statistics table (statstable.js), both following the URL's
// colour, size, order and filter; hovering a head shows its label, numbers and nearest heads;
// a click on a point or a row opens the head in the head view.

import * as api from "./api.js";
import { clear, errorBox, fill, fmt, h, loading, painted } from "./dom.js";
import { HeadMapPlot } from "./headmap.js";
import { HeadStats, headCard, statsUnavailable } from "./headstats.js";
import { keeper } from "./overlays.js";
import { overlayControls } from "./overlaypanel.js";
import { StatsTable, downloadButtons } from "./statstable.js";
import { LAYERS, kindColour, rampGradient } from "./theme.js";
import { hideTooltip, showTooltip } from "./tooltip.js";
import { View } from "./view.js";

// The state fields that change what is drawn, not what is loaded.
const DRAWN = ["mapcolor", "size", "sort", "kind", "where", "layer", "head", "view"]; // view: what changed while it was hidden

export class HeadsView extends View {
  constructor(ctx, el, side) {
    super(ctx, el, side, "heads");
    this.mapEl = h("div", { class: "headmap" });
    this.tableEl = h("div", { class: "stats-table-wrap" });
    this.body = h("div", { class: "heads-body" }, this.mapEl, this.tableEl);
    this.el.append(this.toolbar, this.body);
    const open = (layer, head) => ctx.store.set({ view: "head", layer, head }, { push: true });
    this.map = new HeadMapPlot(this.mapEl, {
      onHover: (p, at) => (p ? showTooltip(at.x, at.y, headCard(this.stats, p, { nearest: p.nearest })) : hideTooltip()),
      onClick: (p) => open(p.layer, p.head),
    });
    this.table = new StatsTable(this.tableEl, { onOpen: open, onSort: (sort) => ctx.store.set({ sort }) });
    this.controls = h("div", { class: "card" });
    this.legend = h("div", { class: "legend" });
    this.current = h("div", { class: "card current-head" });
    this.fit = h("div", { class: "card muted small" });
    side.append(h("h3", {}, "Map of heads"), this.legend, this.current, this.controls, this.fit);
  }

  async show(state, changed) {
    const key = this.ctx.atlas.id;
    if (key !== this.key) {
      this.key = key;
      await this.load(state);
    } else if (this.data && DRAWN.some((k) => changed.has(k))) {
      await this.draw(state);
    }
  }

  async load(state) {
    const id = this.ctx.atlas.id;
    const key = this.key;
    this.data = null;
    const wait = loading("Loading the map of heads…");
    fill(this.toolbar, h("div", { class: "title" }, "Map of heads"));
    this.body.hidden = true;
    this.el.querySelector(":scope > .error-box")?.remove();
    this.el.append(wait.el);
    const t0 = performance.now();
    try {
      const [table, map] = await Promise.all([api.stats(id), api.headMap(id)]);
      if (key !== this.key) return;
      this.stats = new HeadStats(table);
      this.data = map;
      wait.el.remove();
      this.body.hidden = false;
      await this.draw(this.ctx.store.get());
      this.announceDrawn(performance.now() - t0);
    } catch (e) {
      if (key !== this.key) return;
      wait.el.remove();
      this.key = null; // shown again: asked again
      clear(this.legend);
      clear(this.current);
      clear(this.controls);
      clear(this.fit);
      this.el.append(e.status === 409 ? statsUnavailable(e, id, () => this.show(this.ctx.store.get(), new Set())) : errorBox(e, `Could not load the map of heads of ${id}`));
    }
  }

  async draw(state) {
    const stats = this.stats;
    const map = this.data;
    const set = (patch) => this.ctx.store.set(patch);
    const size = stats.has(state.size) ? state.size : "";
    const keep = keeper(stats, state);
    const selected = { layer: state.layer, head: state.head };
    this.renderToolbar(state, size);
    this.map.draw(map, { stats, colour: state.mapcolor, size, keep, selected });
    this.table.render(stats, { sort: state.sort, keep, selected });
    fill(this.legend, mapLegend(stats, map, state.mapcolor, size, (kind) => set({ kind: state.kind === kind ? "" : kind })));
    const point = map.points.find((p) => p.layer === state.layer && p.head === state.head);
    fill(this.current, point ? headCard(stats, point, { nearest: point.nearest, open: (l, hd) => set({ layer: l, head: hd }) }) : null);
    fill(this.controls, h("div", { class: "card-title" }, "Order and filter"), overlayControls(stats, state, set, { tint: false }));
    fill(this.fit, fitNote(map, stats));
    this.el.dataset.points = String(map.points.length);
    this.el.dataset.kept = String(keep ? stats.columns.kind.filter((_, i) => keep(i)).length : stats.n);
    await painted();
  }

  renderToolbar(state, size) {
    const set = (patch) => this.ctx.store.set(patch, { push: true });
    const a = this.ctx.atlas;
    fill(this.toolbar,
      h("div", { class: "title" }, `Map of heads · ${a.layers} layers × ${a.heads} heads`),
      h("span", { class: "sep" }),
      h("span", { class: "field-label" }, "Colour"),
      h("div", { class: "seg small map-colour" }, [["layer", "by layer"], ["kind", "by label"]].map(([id, label]) =>
        h("button", { class: `seg-btn${state.mapcolor === id ? " active" : ""}`, dataset: { colour: id }, onclick: () => set({ mapcolor: id }) }, label))),
      h("label", { class: "field" }, h("span", { class: "field-label" }, "Size"),
        h("select", { class: "size-select", "aria-label": "Size points by", onchange: (e) => set({ size: e.target.value }) },
          [["", "the same"], ...this.stats.names.map((n) => [n, n])].map(([v, t]) => h("option", { value: v, selected: v === size }, t)))),
      h("span", { class: "grow" }),
      h("span", { class: "muted small" }, "Statistics:"),
      downloadButtons(a.id));
  }

  exportTarget() {
    return this.map.exportTarget();
  }

  hide() {
    hideTooltip();
  }

  destroy() {
    this.map.destroy();
  }
}

/** The legend of the map: the colour (layers as a ramp, or kinds with their counts, a click keeps one) and the size. */
export function mapLegend(stats, map, colour, size, pickKind) {
  const rows = [];
  if (colour === "kind") {
    for (const [kind, n] of stats.kindCounts) {
      rows.push(h("div", { class: "legend-row kind-row", dataset: { kind }, title: `Keep only ${kind} heads (click again: all)`, onclick: () => pickKind(kind) },
        h("span", { class: "swatch", style: { background: kindColour(kind, stats.kinds) } }), `${kind} (${n})`));
    }
  } else {
    rows.push(h("div", { class: "legend-grad" }, h("span", {}, "layer"), h("i", { style: { background: rampGradient(LAYERS) } })),
      h("div", { class: "legend-ends" }, h("span", {}, "0"), h("span", {}, String(map.layers - 1))));
  }
  if (size) {
    const [lo, hi] = stats.range(size);
    rows.push(h("div", { class: "legend-note", title: stats.describe(size) }, `Size: ${size}, ${fmt(lo, 2)} (small) to ${fmt(hi, 2)}${stats.unit(size) ? ` ${stats.unit(size)}` : ""} (large); a head it does not apply to is smallest.`));
  }
  return rows;
}

/** How far to trust the drawing: the map's fit, from stats.json. */
function fitNote(map, stats) {
  const f = map.fit || {};
  return [
    h("div", {}, `Distance: ${map.distance || "–"}; drawn with ${map.method || "–"}.`),
    h("div", {}, `Distances on the map track the heads' distances with correlation ${fmt(f.correlation, 2)} (stress ${fmt(f.stress, 2)}), on ${f.rows ?? "–"} query rows of ${f.items ?? "–"} items. Lines on hover go to the nearest heads by the full distance.`),
    h("div", {}, `Statistics read ${stats.sample.items ?? "–"} of ${stats.sample.of ?? "–"} items.`),
  ];
}
