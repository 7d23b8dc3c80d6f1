// Matrix view: every head of every layer as small multiples (rows = layers, columns = heads),
// every point of every head on one WebGL canvas (points.js). Each head's 2-D layout is fitted
// into its own cell once, when it arrives; an HTML grid on top carries the labels, the scores
// and the clicks. The wheel zooms at the pointer and a drag pans (the matrix body scrolls); the
// canvas covers only the part of the matrix in view, and the point under the pointer is named
// in the tooltip. The heads' statistics tint the cells, order the heads of each layer and dim
// the heads a filter leaves out (overlays.js, the URL's tint, sort, kind, where). Export:
// matrixexport.js.

import * as api from "./api.js";
import { clear, errorBox, fill, fmt, h, headKey, headLabel, loading, notBuilt } from "./dom.js";
import { colourModes, legendHTML, markerColour, rgbaArray } from "./encodings.js";
import { bindGestures } from "./gestures.js";
import { kvColumns, kvEdges, kvHeads } from "./kv.js";
import { matchPoints, maxPointsFor, placeColumns, POINT_BUDGET, prepare } from "./cells.js";
import { HeadStats, labelLine, statsUnavailable } from "./headstats.js";
import { columnsOf, headsAt, keeper, parseSort } from "./overlays.js";
import { overlayControls } from "./overlaypanel.js";
import { PointCanvas } from "./points.js";
import { matrixExport } from "./matrixexport.js";
import { BG, DIMMED_ALPHA, MATCH, TINT, TINT_ALPHA, glColour, kindColour, rampColour, withAlpha } from "./theme.js";
import { hideTooltip, showTooltip, tokenTooltip } from "./tooltip.js";
import { View } from "./view.js";

const MAX_ZOOM = 48;
const OVERLAYS = ["tint", "sort", "kind", "where"];

export class MatrixView extends View {
  constructor(ctx, el, side) {
    super(ctx, el, side, "matrix");
    this.data = null;
    this.loadKey = null;
    this.zoom = 1;
    this.stage = h("div", { class: "matrix-stage" });
    this.canvas = h("canvas", { class: "matrix-plot points" });
    this.grid = h("div", { class: "matrix-grid" });
    this.stage.append(this.canvas, this.grid);
    this.band = h("div", { class: "kv-band", hidden: true }); // grouped-query attention: heads by key/value head
    this.sheet = h("div", { class: "matrix-sheet" }, this.band, this.stage);
    this.body = h("div", { class: "matrix-body" }, this.sheet);
    this.el.append(this.toolbar, this.body);
    this.ring = document.body.appendChild(h("div", { class: "hover-ring", hidden: true }));
    this.hoverCard = h("div", { class: "card hover-card" }, h("div", { class: "muted" }, "Hover a head for its scores; click it to open it."));
    this.legend = h("div", { class: "legend" });
    this.colorSelect = h("select", { class: "color-select", "aria-label": "Colour points by", onchange: (e) => ctx.store.set({ color: e.target.value }) });
    this.info = h("div", { class: "card muted small" });
    this.overlayCard = h("div", { class: "card overlay-card" });
    this.stats = null; // HeadStats of the atlas, or null (not computed yet: statsError)
    this.statsFor = null;
    side.append(
      h("h3", {}, "All heads"),
      h("p", { class: "muted small" }, "Each cell is one head's joint query/key space, fitted to the cell. Rows are layers, columns are heads. Wheel to zoom, drag to pan; hover a point for its token."),
      h("label", { class: "field stacked" }, h("span", { class: "field-label" }, "Colour by"), this.colorSelect),
      this.legend,
      this.hoverCard,
      this.overlayCard,
      this.info,
    );
    try {
      this.points = new PointCanvas(this.canvas, () => this.frameSpec());
      this.points.setBackground(glColour(BG));
      this.points.onPainted = ({ drawn }) => {
        this.el.dataset.drawn = String(drawn);
        if (this.firstPaint === null) this.firstPaint = performance.now();
      };
    } catch (e) {
      this.points = null;
      this.glError = e;
    }
    this.bindPointer();
    this.onResize = () => {
      clearTimeout(this.resizeTimer);
      this.resizeTimer = setTimeout(() => this.data && !this.el.hidden && this.draw(), 150);
    };
    window.addEventListener("resize", this.onResize);
  }

  get atlas() {
    return this.ctx.atlas;
  }

  async show(state, changed) {
    const key = `${this.atlas.id}|${state.method}`;
    this.renderColorSelect(state);
    // Compared with what is on screen, not with `changed`: they may have moved while another view was shown.
    const overlays = OVERLAYS.map((k) => state[k]).join("|");
    if (this.statsFor !== this.atlas.id) this.loadStats();
    else if (overlays !== this.overlayCardKey) this.renderOverlayCard(state);
    if (key !== this.loadKey) {
      this.loadKey = key;
      await this.load(state);
    } else if (this.data && overlays !== this.data.overlays) {
      this.applyOverlays(state);
      await this.draw();
    } else if (changed.has("color") || changed.has("search")) {
      this.recolour();
      await this.draw();
    } else if (changed.has("view") && this.data) {
      await this.draw();
    }
  }

  onProgress(state) {
    if (state.view !== "matrix") {
      this.loadKey = null; // reload when shown again
      return;
    }
    if (this.data && !this.data.missing) {
      this.renderGrid();
      return;
    }
    this.loadKey = `${this.atlas.id}|${state.method}`;
    this.load(state, { quiet: Boolean(this.data) });
  }

  renderColorSelect(state) {
    const modes = colourModes(this.ctx.corpus, { norms: false });
    const current = modes.some((m) => m.id === state.color) ? state.color : "qk";
    clear(this.colorSelect);
    for (const m of modes) this.colorSelect.append(h("option", { value: m.id }, m.label));
    this.colorSelect.value = current;
    this.legend.innerHTML = legendHTML(current, this.ctx.corpus);
    this.mode = current;
  }

  renderToolbar(title) {
    fill(this.toolbar,
      h("div", { class: "title" }, title),
      h("span", { class: "grow" }),
      h("button", { class: "btn ghost", title: "Show the whole matrix again", onclick: () => this.resetView() }, "Reset view"));
  }

  async load(state, { quiet = false } = {}) {
    const { id, layers, heads } = this.atlas;
    const method = state.method;
    const key = this.loadKey;
    const total = layers * heads;
    const label = this.ctx.layouts.label(method);
    const kv = kvHeads(this.atlas);
    this.renderToolbar(`${label} 2-D · ${layers} layers × ${heads} heads${kv < heads ? ` sharing ${kv} key/value heads` : ""}`);
    let wait = null;
    if (!quiet) {
      wait = loading(`Loading ${total} heads…`);
      this.body.prepend(wait.el);
      this.sheet.hidden = true;
    }
    const t0 = performance.now();
    const layout = this.ctx.layouts.key(method, 2);
    const fail = (box) => {
      wait?.el.remove();
      this.data = null;
      this.sheet.hidden = true;
      this.body.querySelector(".error-box")?.remove();
      this.body.prepend(box);
      this.loadKey = null;
    };
    if (!this.points) {
      fail(errorBox(this.glError, "Cannot draw the matrix"));
      return;
    }
    if (this.atlas.projections && (layout === null || this.atlas.projections[layout] === undefined)) {
      fail(notBuilt(this.atlas, method, label, 2));
      return;
    }
    try {
      const [m] = await Promise.all([
        api.matrix(id, method, 2, maxPointsFor(this.atlas), (got, all) =>
          wait?.progress(got / all, `Loading ${total} heads… ${(got / 1e6).toFixed(1)} / ${(all / 1e6).toFixed(1)} MB`)),
        this.statsReady, // the overlays in the URL apply to the first frame
      ]);
      if (key !== this.loadKey) return;
      const t1 = performance.now();
      this.data = prepare(m, this.atlas.tokens);
      this.data.fetchMs = t1 - t0;
      this.data.prepareMs = performance.now() - t1;
      this.data.t0 = t0;
      this.firstPaint = null;
      this.applyOverlays(this.ctx.store.get());
      wait?.el.remove();
      this.body.querySelector(".error-box")?.remove();
      this.sheet.hidden = false;
      this.renderBand();
      await this.draw();
    } catch (e) {
      if (key !== this.loadKey) return;
      fail(errorBox(e, `Could not load the ${label} matrix`));
    }
  }

  // --- the heads' statistics: tint, order, filter ------------------------------------------

  /** Ask for the atlas's statistics (a 409 means not computed yet); -> a promise that never rejects. */
  loadStats() {
    const id = this.atlas.id;
    this.statsFor = id;
    this.statsReady = api.stats(id).then((answer) => {
      if (this.statsFor !== id) return;
      this.stats = new HeadStats(answer);
      this.statsError = null;
    }, (e) => {
      if (this.statsFor !== id) return;
      this.stats = null;
      this.statsError = e;
    }).then(() => {
      if (this.statsFor === id) this.renderOverlayCard(this.ctx.store.get());
    });
    return this.statsReady;
  }

  renderOverlayCard(state) {
    const title = h("div", { class: "card-title" }, "Heads by their statistics");
    if (!this.stats) {
      const retry = async () => {
        await this.loadStats();
        if (this.data) {
          this.applyOverlays(this.ctx.store.get());
          await this.draw();
        }
      };
      fill(this.overlayCard, title, this.statsError ? statsUnavailable(this.statsError, this.atlas.id, retry) : h("div", { class: "muted" }, "Loading…"));
      return;
    }
    fill(this.overlayCard, title, overlayControls(this.stats, state, (patch) => this.ctx.store.set(patch)));
    this.overlayCardKey = OVERLAYS.map((k) => state[k]).join("|");
  }

  /** The overlays of the state on the loaded matrix: each layer's heads in their columns, the points put there. */
  applyOverlays(state) {
    const d = this.data;
    const sorted = Boolean(this.stats && parseSort(state.sort, this.stats));
    const columns = sorted ? columnsOf(this.stats, state.sort, d.layers, d.heads) : Int32Array.from({ length: d.cells }, (_, c) => c % d.heads);
    placeColumns(d, columns);
    d.headAt = headsAt(columns, d.heads);
    d.sorted = sorted;
    d.overlays = this.stats ? OVERLAYS.map((k) => state[k]).join("|") : null; // applied with statistics
    this.points.put("points", { xy: d.xy, runs: d.runs });
    this.recolour();
    this.renderBand();
  }

  /** A cell's background: a filtered-out head dimmed, else the tint of its statistic, else none. */
  cellBackground(layer, head, state, keep) {
    const i = this.stats ? this.stats.rowOf(layer, head) : -1;
    if (i < 0) return "";
    if (keep && !keep(i)) return withAlpha(BG, DIMMED_ALPHA);
    const t = this.stats.has(state.tint) ? this.stats.scaled(state.tint, this.stats.value(state.tint, i)) : NaN;
    return Number.isNaN(t) ? "" : withAlpha(rampColour(TINT, t), TINT_ALPHA);
  }

  /** Colours of every point (one per row of the sample, the same in every cell) and the search matches. */
  recolour() {
    const d = this.data;
    if (!d) return;
    const corpus = this.ctx.corpus;
    const search = this.ctx.search;
    const mask = search?.active && !search.error ? search.mask : null;
    const colours = (side, tokens) => rgbaArray(markerColour(this.mode, corpus, tokens, side, { mask }), tokens.length);
    const k = colours("key", d.kTok);
    const q = colours("query", d.qTok);
    const rgba = new Uint8Array(d.xy.length * 2);
    for (let c = 0; c < d.cells; c++) {
      rgba.set(k, 4 * c * d.nk);
      rgba.set(q, 4 * (d.cells * d.nk + c * d.nq));
    }
    this.points.recolour("points", rgba);
    d.matches = 0;
    if (mask) for (const tok of [d.qTok, d.kTok]) for (let i = 0; i < tok.length; i++) d.matches += mask[tok[i]];
    d.matches *= d.cells - d.missing;
    if (mask && this.mode !== "match") {
      const m = matchPoints(d, mask);
      this.points.put("matches", { xy: m.xy, runs: m.runs });
      d.matchRuns = m.runs;
    } else {
      this.points.drop("matches");
      d.matchRuns = null;
    }
    this.pointDiameter = d.cells * d.P > 100000 ? 2 : 3; // CSS px at zoom 1, as the canvas stamps were
  }

  /** The cell size at zoom 1 and the height the body may take before it scrolls. */
  size() {
    const { layers, heads } = this.data;
    const availW = Math.max(320, this.body.clientWidth - 8);
    const bodyH = Math.max(320, window.innerHeight - this.body.getBoundingClientRect().top - 40);
    const availH = bodyH - this.band.offsetHeight;
    // Fill the width; small models also fit the height, big ones scroll rather than shrink below 56 px.
    const base = Math.max(56, Math.min(240, Math.floor(availW / heads), Math.max(Math.floor(availH / layers), Math.floor(availW / heads / 1.6))));
    return { base, bodyH };
  }

  /** Lay the stage and the grid out at the current zoom; -> the cell size in CSS pixels. */
  layoutStage() {
    const d = this.data;
    const cell = this.base * this.zoom;
    const width = cell * d.heads;
    const height = cell * d.layers;
    this.cell = cell;
    this.stage.style.width = `${width}px`;
    this.stage.style.height = `${height}px`;
    this.grid.style.gridTemplateColumns = `repeat(${d.heads}, ${cell}px)`;
    this.grid.style.gridTemplateRows = `repeat(${d.layers}, ${cell}px)`;
    this.grid.classList.toggle("compact", cell < 84);
    this.band.style.width = `${width}px`;
    this.band.style.gridTemplateColumns = `repeat(${this.band.childElementCount}, 1fr)`;
    return cell;
  }

  /** The part of the stage in view (under the key/value band, inside the body), in stage pixels. */
  visibleRect() {
    const body = this.body.getBoundingClientRect();
    const stage = this.stage.getBoundingClientRect();
    const top = body.top + this.body.clientTop + (this.band.hidden ? 0 : this.band.offsetHeight);
    const left = body.left + this.body.clientLeft;
    const x0 = Math.max(0, left - stage.left);
    const y0 = Math.max(0, top - stage.top);
    const x1 = Math.min(stage.width, left + this.body.clientWidth - stage.left);
    const y1 = Math.min(stage.height, body.top + this.body.clientTop + this.body.clientHeight - stage.top);
    return { x0, y0, x1: Math.max(x0 + 1, x1), y1: Math.max(y0 + 1, y1) };
  }

  /** What the next frame draws: the canvas moved over the part in view, and the runs of the cells there. */
  frameSpec() {
    const d = this.data;
    if (!d || this.sheet.hidden) return null;
    const r = this.visibleRect();
    this.canvas.style.left = `${r.x0}px`;
    this.canvas.style.top = `${r.y0}px`;
    this.points.resize(r.x1 - r.x0, r.y1 - r.y0);
    const cell = this.cell;
    const heads = [Math.floor(r.x0 / cell), Math.min(d.heads, Math.ceil(r.x1 / cell))];
    const layers = [Math.floor(r.y0 / cell), Math.min(d.layers, Math.ceil(r.y1 / cell))];
    const diameter = this.pointDiameter * Math.min(3, Math.sqrt(this.zoom));
    this.points.style("points", { diameter, opacity: 0.6 });
    this.points.style("matches", { diameter: diameter + 2, opacity: 0.95, tint: glColour(MATCH) });
    const inView = (runs) => runs.filter((_, i) => {
      const c = i % d.cells;
      const layer = Math.floor(c / d.heads);
      const column = d.columns[c];
      return !d.missingCells[c] && layer >= layers[0] && layer < layers[1] && column >= heads[0] && column < heads[1];
    });
    return {
      view: { x: r.x0 / cell, y: r.y0 / cell, scale: cell },
      runs: (name) => inView(name === "matches" ? d.matchRuns : d.runs),
    };
  }

  async draw() {
    if (!this.data) return;
    const d = this.data;
    const t0 = performance.now();
    if (this.zoom === 1 || !this.base) {
      const { base, bodyH } = this.size();
      this.base = base;
      // The body keeps its height as the matrix zooms (a zoom keeps the spot under the pointer
      // there); a tall matrix scrolls inside it, under its key/value band.
      this.body.style.height = `${bodyH}px`;
    }
    this.layoutStage();
    this.renderGrid();
    this.el.dataset.matches = String(d.matches);
    this.el.dataset.points = String(d.cells * d.P);
    const drawn = await this.points.redraw();
    if (this.data !== d) return;
    this.el.dataset.drawn = String(drawn);
    this.el.dataset.drawMs = String(Math.round(performance.now() - t0));
    this.renderInfo(d.matches);
    const timings = { matrixFetchMs: d.fetchMs, matrixPrepareMs: d.prepareMs };
    if (d.t0 !== undefined && this.firstPaint !== null) {
      timings.matrixFirstPaint = this.firstPaint;
      timings.matrixFirstPaintMs = this.firstPaint - d.t0;
      delete d.t0;
    }
    this.announceDrawn(performance.now() - t0, timings);
  }

  // --- pan, zoom, hover ---------------------------------------------------------------------

  bindPointer() {
    this.body.addEventListener("scroll", () => {
      this.unhover();
      this.points?.redraw({ moving: true });
    });
    let from = null; // the scroll when a drag began
    this.unbind = bindGestures(this.stage, {
      zoom: (x, y, factor) => (this.data ? this.zoomAt(x, y, factor) : false),
      drag: (dx, dy) => {
        from ??= { left: this.body.scrollLeft, top: this.body.scrollTop };
        this.body.scrollLeft = from.left - dx;
        this.body.scrollTop = from.top - dy;
      },
      hover: (at) => this.hover(at),
      leave: () => this.unhover(),
    });
    this.stage.addEventListener("pointerdown", () => (from = null));
  }

  zoomAt(clientX, clientY, factor) {
    const zoom = Math.min(MAX_ZOOM, Math.max(1, this.zoom * factor));
    if (zoom === this.zoom) return;
    const stage = this.stage.getBoundingClientRect();
    const before = this.cell;
    const u = (clientX - stage.left) / before;
    const v = (clientY - stage.top) / before;
    this.zoom = zoom;
    const after = this.layoutStage();
    this.body.scrollLeft += u * (after - before);
    this.body.scrollTop += v * (after - before);
    this.unhover();
    this.points.redraw({ moving: true });
  }

  resetView() {
    if (!this.data) return;
    this.zoom = 1;
    this.layoutStage();
    this.body.scrollLeft = 0;
    this.body.scrollTop = 0;
    this.points.redraw();
  }

  /** The point under the pointer (client pixels): {cell, layer, head, token, side, i (buffer index)} or null. */
  pointAt(at) {
    const d = this.data;
    if (!d) return null;
    const stage = this.stage.getBoundingClientRect();
    const u = (at.x - stage.left) / this.cell;
    const v = (at.y - stage.top) / this.cell;
    const column = Math.floor(u);
    const layer = Math.floor(v);
    if (column < 0 || column >= d.heads || layer < 0 || layer >= d.layers) return null;
    const head = d.headAt[layer * d.heads + column];
    const c = layer * d.heads + head;
    if (d.missingCells[c]) return null;
    const radius = (this.pointDiameter * Math.min(3, Math.sqrt(this.zoom)) / 2 + 4) / this.cell;
    let best = -1;
    let bestD = radius * radius;
    // Queries are drawn over keys: they are looked at last and win a tie.
    for (const [first, count] of [d.runs[c], d.runs[d.cells + c]]) {
      for (let i = first; i < first + count; i++) {
        const dx = d.xy[2 * i] - u;
        const dy = d.xy[2 * i + 1] - v;
        const dist = dx * dx + dy * dy;
        if (dist <= bestD) {
          best = i;
          bestD = dist;
        }
      }
    }
    if (best < 0) return null;
    const isKey = best < d.cells * d.nk;
    const j = isKey ? best % d.nk : (best - d.cells * d.nk) % d.nq;
    return { cell: c, layer, head, i: best, side: isKey ? "key" : "query", token: isKey ? d.kTok[j] : d.qTok[j] };
  }

  /** Where cell coordinates [x, y] (column + 0..1, layer + 0..1) are drawn, in client pixels. */
  pixelAt([x, y]) {
    const stage = this.stage.getBoundingClientRect();
    return { x: stage.left + x * this.cell, y: stage.top + y * this.cell };
  }

  /** Where buffer point i is drawn, in client pixels. */
  pixelOfPoint(i) {
    return this.pixelAt([this.data.xy[2 * i], this.data.xy[2 * i + 1]]);
  }

  hover(at) {
    const hit = this.pointAt(at);
    if (!hit) {
      this.unhover();
      return;
    }
    const p = this.pixelOfPoint(hit.i);
    Object.assign(this.ring.style, { left: `${p.x}px`, top: `${p.y}px` });
    this.ring.hidden = false;
    this.el.dataset.hover = `${hit.layer},${hit.head},${hit.side},${hit.token}`;
    showTooltip(at.x, at.y, h("div", {},
      tokenTooltip(this.ctx, hit.token, hit.side),
      h("div", { class: "tip-meta" }, `${headLabel(hit.layer, hit.head)} · click to open this head`)));
  }

  unhover() {
    this.ring.hidden = true;
    delete this.el.dataset.hover;
    hideTooltip();
  }

  // --- the grid, the band, the side --------------------------------------------------------

  /** One segment per key/value head above the columns of the query heads that share it. */
  renderBand() {
    const groups = this.data?.sorted ? [] : kvColumns(this.atlas); // reordered heads are no longer grouped
    this.band.hidden = !groups.length;
    fill(this.band, ...groups.map((g) => h("div", {
      class: "kv-seg",
      dataset: { kv: g.kv },
      title: `Query heads ${g.first}–${g.last} share key/value head ${g.kv}`,
    }, `KV ${g.kv} · H${g.first}–H${g.last}`)));
  }

  renderGrid() {
    if (!this.data) return;
    const d = this.data;
    const state = this.ctx.store.get();
    const quality = this.atlas.quality?.[this.ctx.layouts.key(state.method, 2)] || {};
    const groupStarts = d.sorted ? new Set() : kvEdges(this.atlas);
    const keep = this.stats ? keeper(this.stats, state) : null;
    const tint = this.stats?.has(state.tint) ? state.tint : "";
    clear(this.grid);
    let kept = 0;
    for (let layer = 0; layer < d.layers; layer++) {
      for (let column = 0; column < d.heads; column++) {
        const head = d.headAt[layer * d.heads + column];
        const c = layer * d.heads + head;
        const q = quality[headKey(layer, head)]?.["knn_recall@10"];
        const pending = d.missingCells[c];
        const selected = state.layer === layer && state.head === head;
        const row = this.stats ? this.stats.rowOf(layer, head) : -1;
        const dimmed = Boolean(keep && row >= 0 && !keep(row));
        if (keep && !dimmed) kept++;
        // With a tint, the cell's number is the statistic's value instead of knn recall.
        const score = tint && row >= 0 ? this.stats.format(tint, this.stats.value(tint, row)).replace(/ .*/, "") : q !== undefined ? fmt(q, 2) : null;
        const cell = h("button", {
          class: `cell${pending ? " pending" : ""}${selected ? " current" : ""}${groupStarts.has(head) ? " kv-start" : ""}${dimmed ? " dimmed" : ""}`,
          dataset: { layer, head, column },
          style: { background: this.cellBackground(layer, head, state, keep) },
          title: `${headLabel(layer, head)}${row >= 0 ? ` · ${this.stats.columns.label[row]}` : ""}${q !== undefined ? ` · knn recall@10 ${fmt(q, 2)}` : ""}${pending ? " · not computed yet" : ""}`,
          onclick: () => this.ctx.store.set({ view: "head", layer, head }, { push: true }),
          onmouseenter: () => this.renderHover(layer, head, quality[headKey(layer, head)], pending),
        },
        h("span", { class: "cell-label" }, headLabel(layer, head)),
        score !== null ? h("span", { class: `cell-score${tint ? " stat" : ""}` }, score) : null,
        pending ? h("span", { class: "cell-pending" }, "computing…") : null);
        this.grid.append(cell);
      }
    }
    this.el.dataset.kept = keep ? String(kept) : "";
  }

  renderHover(layer, head, quality, pending) {
    const row = this.stats ? this.stats.rowOf(layer, head) : -1;
    const tint = this.ctx.store.get().tint;
    fill(this.hoverCard,
      h("div", { class: "card-title" }, headLabel(layer, head)),
      row >= 0 ? labelLine(this.stats.columns.kind[row], this.stats.columns.label[row], kindColour(this.stats.columns.kind[row], this.stats.kinds)) : null,
      row >= 0 && this.stats.has(tint) ? h("div", { class: "muted", title: this.stats.describe(tint) }, `${tint}: ${this.stats.format(tint, this.stats.value(tint, row))}`) : null,
      pending
        ? h("div", { class: "muted" }, "This head's layout is still being computed.")
        : h("dl", { class: "kv" },
          h("dt", {}, "knn recall@10"), h("dd", {}, fmt(quality?.["knn_recall@10"], 3)),
          h("dt", {}, "trustworthiness@10"), h("dd", {}, fmt(quality?.["trustworthiness@10"], 3))),
      h("div", { class: "muted small" }, "Click to open this head."),
    );
  }

  renderInfo(matches) {
    const d = this.data;
    const T = this.atlas.tokens;
    const search = this.ctx.search;
    const every = d.P >= 2 * T;
    fill(this.info,
      h("div", {}, every
        ? `Every point of every head: ${(d.cells * d.P).toLocaleString()} (${(2 * T).toLocaleString()} per head, queries and keys).`
        : `${d.P.toLocaleString()} of ${(2 * T).toLocaleString()} points per head (an even sample of tokens, so that all heads together stay within ${(POINT_BUDGET / 1e6).toFixed(0)}M points; the head view shows all).`),
      d.missing ? h("div", { class: "warn-text" }, `${d.missing} of ${d.layers * d.heads} heads are still being computed; they appear as they finish.`) : null,
      search?.active && !search.error ? h("div", {}, `Search: ${matches.toLocaleString()} highlighted points (of ${search.count} matching tokens in the corpus).`) : null,
    );
  }

  // --- what tests and export read ------------------------------------------------------------

  /**
   * Every point where it is drawn, in cell units (x: column + 0..1, the head's column its index
   * unless the heads are ordered by a statistic; y: layer + 0..1; NaN for a head not computed
   * yet), by side, with its token: {qx, qy, qTok, kx, ky, kTok}.
   */
  placed() {
    const d = this.data;
    const side = (from, n, tokens) => {
      const x = new Float32Array(d.cells * n);
      const y = new Float32Array(d.cells * n);
      const tok = new Int32Array(d.cells * n);
      for (let c = 0; c < d.cells; c++) {
        for (let j = 0; j < n; j++) {
          const i = from + c * n + j;
          x[c * n + j] = d.xy[2 * i];
          y[c * n + j] = d.xy[2 * i + 1];
          tok[c * n + j] = tokens[j];
        }
      }
      return [x, y, tok];
    };
    const [kx, ky, kTok] = side(0, d.nk, d.kTok);
    const [qx, qy, qTok] = side(d.cells * d.nk, d.nq, d.qTok);
    return { qx, qy, qTok, kx, ky, kTok, layers: d.layers, heads: d.heads };
  }

  /** Where every cell of the matrix lies on the canvas now, in canvas (device) pixels, for those in view. */
  cellRects() {
    const d = this.data;
    const r = this.visibleRect();
    const s = this.canvas.width / this.canvas.clientWidth;
    const out = [];
    for (let layer = 0; layer < d.layers; layer++) {
      for (let head = 0; head < d.heads; head++) {
        const x0 = d.columns[layer * d.heads + head] * this.cell - r.x0;
        const y0 = layer * this.cell - r.y0;
        if (x0 + this.cell <= 0 || y0 + this.cell <= 0 || x0 >= r.x1 - r.x0 || y0 >= r.y1 - r.y0) continue;
        out.push({ layer, head, x0: x0 * s, y0: y0 * s, x1: (x0 + this.cell) * s, y1: (y0 + this.cell) * s });
      }
    }
    return out;
  }

  exportTarget() {
    if (!this.data) return null;
    const d = this.data;
    const search = this.ctx.search;
    const mask = search?.active ? search.mask : null;
    return matrixExport({
      layers: d.layers,
      heads: d.heads,
      points: d.cells * d.P,
      base: this.base,
      edges: d.sorted ? new Set() : kvEdges(this.atlas),
      diameter: this.pointDiameter,
      placed: () => this.placed(),
      colour: (side, tokens) => markerColour(this.mode, this.ctx.corpus, tokens, side, { mask }),
      mask,
      picture: (width, height, scale) => {
        this.points.style("points", { diameter: this.pointDiameter, opacity: 0.6 });
        const canvas = this.points.picture(width, height, { x: 0, y: 0, scale: this.base }, scale);
        this.points.redraw(); // the frame's point size again
        return canvas;
      },
    });
  }

  destroy() {
    window.removeEventListener("resize", this.onResize);
    this.unbind();
    this.ring.remove();
    this.points?.destroy();
  }
}
