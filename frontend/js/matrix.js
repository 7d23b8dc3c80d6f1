// Matrix view: every head of every layer as small multiples (rows = layers, columns = heads).
// All heads are drawn into ONE canvas: each head's 2-D layout is fitted into its own cell and
// every point is stamped straight into the canvas's pixels from typed arrays (no WebGL
// context, no per-point objects, no wait for plotly.js). An HTML grid on top carries the
// labels and clicks. Export goes through plotly (the same cells as scattergl traces).

import * as api from "./api.js";
import { clear, fill, errorBox, fmt, h, headKey, headLabel, loading, notBuilt, painted } from "./dom.js";
import { colourModes, legendHTML, markerColour, rgbaArray } from "./encodings.js";
import { kvColumns, kvEdges, kvHeads } from "./kv.js";
import { BG, CELL_LABEL, KV_EDGE, LINE, MATCH, OUTLINE, parseColour } from "./theme.js";
import { View } from "./view.js";

const POINT_BUDGET = 300000; // points in the whole matrix: 2000 per head up to 12 x 12 heads
const PAD = 0.07; // empty margin inside a cell, as a fraction of the cell

export class MatrixView extends View {
  constructor(ctx, el, side) {
    super(ctx, el, side, "matrix");
    this.data = null;
    this.loadKey = null;
    this.stage = h("div", { class: "matrix-stage" });
    this.plot = h("canvas", { class: "matrix-plot" });
    this.grid = h("div", { class: "matrix-grid" });
    this.stage.append(this.plot, this.grid);
    this.band = h("div", { class: "kv-band", hidden: true }); // grouped-query attention: heads by key/value head
    this.sheet = h("div", { class: "matrix-sheet" }, this.band, this.stage);
    this.body = h("div", { class: "matrix-body" }, this.sheet);
    this.el.append(this.toolbar, this.body);
    this.hoverCard = h("div", { class: "card hover-card" }, h("div", { class: "muted" }, "Hover a head for its scores; click it to open it."));
    this.legend = h("div", { class: "legend" });
    this.colorSelect = h("select", { class: "color-select", "aria-label": "Colour points by", onchange: (e) => ctx.store.set({ color: e.target.value }) });
    this.info = h("div", { class: "card muted small" });
    side.append(
      h("h3", {}, "All heads"),
      h("p", { class: "muted small" }, "Each cell is one head's joint query/key space, fitted to the cell. Rows are layers, columns are heads."),
      h("label", { class: "field stacked" }, h("span", { class: "field-label" }, "Colour by"), this.colorSelect),
      this.legend,
      this.hoverCard,
      this.info,
    );
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
    if (key !== this.loadKey) {
      this.loadKey = key;
      await this.load(state);
    } else if (changed.has("color") || changed.has("search")) {
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

  async load(state, { quiet = false } = {}) {
    const { id, layers, heads } = this.atlas;
    const method = state.method;
    const key = this.loadKey;
    const total = layers * heads;
    const label = this.ctx.layouts.label(method);
    const kv = kvHeads(this.atlas);
    const title = `${label} 2-D · ${layers} layers × ${heads} heads${kv < heads ? ` sharing ${kv} key/value heads` : ""}`;
    fill(this.toolbar, h("div", { class: "title" }, title));
    let wait = null;
    if (!quiet) {
      wait = loading(`Loading ${total} heads…`);
      this.body.prepend(wait.el);
      this.sheet.hidden = true;
    }
    const t0 = performance.now();
    const layout = this.ctx.layouts.key(method, 2);
    if (this.atlas.projections && (layout === null || this.atlas.projections[layout] === undefined)) {
      wait?.el.remove();
      this.data = null;
      this.sheet.hidden = true;
      this.body.querySelector(".error-box")?.remove();
      this.body.prepend(notBuilt(this.atlas, method, label, 2));
      this.loadKey = null;
      return;
    }
    try {
      const m = await api.matrix(id, method, 2, maxPointsFor(this.atlas), (got, all) =>
        wait?.progress(got / all, `Loading ${total} heads… ${(got / 1e6).toFixed(1)} / ${(all / 1e6).toFixed(1)} MB`),
      );
      if (key !== this.loadKey) return;
      const t1 = performance.now();
      this.data = this.prepare(m);
      this.data.fetchMs = t1 - t0;
      this.data.prepareMs = performance.now() - t1;
      wait?.el.remove();
      this.body.querySelector(".error-box")?.remove();
      this.sheet.hidden = false;
      this.renderBand();
      await this.draw();
    } catch (e) {
      if (key !== this.loadKey) return;
      wait?.el.remove();
      this.data = null;
      this.sheet.hidden = true;
      this.body.querySelector(".error-box")?.remove();
      this.body.prepend(errorBox(e, `Could not load the ${label} matrix`));
      this.loadKey = null;
    }
  }

  /** Fit every head into its cell and split the sample into query and key points. */
  prepare(m) {
    const { layers, heads, P, rows, coords } = m;
    const T = this.atlas.tokens;
    const qIdx = [];
    const kIdx = [];
    for (let p = 0; p < P; p++) (rows[p] < T ? qIdx : kIdx).push(p);
    const nq = qIdx.length;
    const nk = kIdx.length;
    const cells = layers * heads;
    const out = {
      layers, heads, P, missing: m.missing,
      qx: new Float32Array(cells * nq), qy: new Float32Array(cells * nq),
      kx: new Float32Array(cells * nk), ky: new Float32Array(cells * nk),
      qTok: new Int32Array(cells * nq), kTok: new Int32Array(cells * nk),
      missingCells: new Uint8Array(cells),
    };
    const xs = new Float32Array(P);
    const ys = new Float32Array(P);
    for (let c = 0; c < cells; c++) {
      const layer = Math.floor(c / heads);
      const head = c % heads;
      const base = c * P * 2;
      for (let p = 0; p < P; p++) {
        xs[p] = coords[base + 2 * p];
        ys[p] = coords[base + 2 * p + 1];
      }
      if (!Number.isFinite(xs[0])) out.missingCells[c] = 1;
      const [x0, x1] = bounds(xs);
      const [y0, y1] = bounds(ys);
      const s = (1 - 2 * PAD) / Math.max(x1 - x0, y1 - y0, 1e-9);
      const mx = (x0 + x1) / 2;
      const my = (y0 + y1) / 2;
      const place = (p, X, Y, TOK, at) => {
        X[at] = clamp(head + 0.5 + (xs[p] - mx) * s, head + 0.01, head + 0.99);
        Y[at] = clamp(layer + 0.5 - (ys[p] - my) * s, layer + 0.01, layer + 0.99);
        TOK[at] = rows[p] % T;
      };
      for (let i = 0; i < nq; i++) place(qIdx[i], out.qx, out.qy, out.qTok, c * nq + i);
      for (let i = 0; i < nk; i++) place(kIdx[i], out.kx, out.ky, out.kTok, c * nk + i);
    }
    return out;
  }

  /** The cell size, the matrix's size, and the height its body may take before it scrolls. */
  size() {
    const { layers, heads } = this.data;
    const availW = Math.max(320, this.body.clientWidth - 8);
    const bodyH = Math.max(320, window.innerHeight - this.body.getBoundingClientRect().top - 40);
    const availH = bodyH - this.band.offsetHeight;
    // Fill the width; small models also fit the height, big ones scroll rather than shrink below 56 px.
    const cell = Math.max(56, Math.min(240, Math.floor(availW / heads), Math.max(Math.floor(availH / layers), Math.floor(availW / heads / 1.6))));
    return { cell, width: cell * heads, height: cell * layers, bodyH };
  }

  /** The matrix as plotly scattergl traces on one pair of axes: used for PNG/SVG export. */
  traces() {
    const d = this.data;
    const corpus = this.ctx.corpus;
    const search = this.ctx.search;
    const mask = search?.active ? search.mask : null;
    const marker = (side, tokens) => ({
      size: d.P * d.layers * d.heads > 150000 ? 2 : 3,
      opacity: 0.6,
      ...markerColour(this.mode, corpus, tokens, side, { mask }),
    });
    const traces = [
      { type: "scattergl", mode: "markers", name: "keys", x: d.kx, y: d.ky, marker: marker("key", d.kTok), hoverinfo: "skip" },
      { type: "scattergl", mode: "markers", name: "queries", x: d.qx, y: d.qy, marker: marker("query", d.qTok), hoverinfo: "skip" },
    ];
    let matches = 0;
    if (mask) {
      const mx = [];
      const my = [];
      const add = (X, Y, TOK) => {
        for (let i = 0; i < TOK.length; i++) {
          if (mask[TOK[i]]) {
            mx.push(X[i]);
            my.push(Y[i]);
          }
        }
      };
      add(d.qx, d.qy, d.qTok);
      add(d.kx, d.ky, d.kTok);
      matches = mx.length;
      traces.push({
        type: "scattergl", mode: "markers", name: "matches", x: Float32Array.from(mx), y: Float32Array.from(my),
        marker: { size: 5, color: MATCH, line: { color: OUTLINE, width: 0.5 } }, hoverinfo: "skip",
      });
    }
    return { traces, matches };
  }

  async draw() {
    if (!this.data) return;
    const d = this.data;
    const { width, height, cell, bodyH } = this.size();
    const t0 = performance.now();
    const matches = this.paint(width, height, cell);
    this.body.style.maxHeight = `${bodyH}px`; // a tall matrix scrolls inside the view, under its key/value band
    this.stage.style.width = `${width}px`;
    this.stage.style.height = `${height}px`;
    this.grid.style.gridTemplateColumns = `repeat(${d.heads}, ${cell}px)`;
    this.grid.style.gridTemplateRows = `repeat(${d.layers}, ${cell}px)`;
    this.grid.classList.toggle("compact", cell < 84);
    this.band.style.width = `${width}px`;
    this.band.style.gridTemplateColumns = `repeat(${this.band.childElementCount}, 1fr)`;
    this.renderGrid();
    this.el.dataset.matches = String(matches);
    this.el.dataset.points = String(d.qx.length + d.kx.length);
    await painted();
    this.el.dataset.drawMs = String(Math.round(performance.now() - t0));
    this.renderInfo(matches);
    this.announceDrawn(performance.now() - t0, { matrixFetchMs: d.fetchMs, matrixPrepareMs: d.prepareMs });
  }

  /** Stamp every point into the canvas: keys, then queries, then search matches on top. */
  paint(width, height, cell) {
    const d = this.data;
    const dpr = Math.min(2, window.devicePixelRatio || 1);
    const W = Math.round(width * dpr);
    const H = Math.round(height * dpr);
    const canvas = this.plot;
    canvas.width = W;
    canvas.height = H;
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    const g = canvas.getContext("2d");
    const img = g.createImageData(W, H);
    const px = img.data;
    const [br, bg, bb] = parseColour(BG);
    for (let i = 0; i < px.length; i += 4) {
      px[i] = br;
      px[i + 1] = bg;
      px[i + 2] = bb;
      px[i + 3] = 255;
    }
    const unit = cell * dpr;
    const total = d.qx.length + d.kx.length;
    const r = total > 100000 ? 1 : 1.5; // stamp radius in CSS pixels
    const stamp = discStamp(r * dpr);
    const corpus = this.ctx.corpus;
    const search = this.ctx.search;
    const mask = search?.active && !search.error ? search.mask : null;
    const dimOthers = this.mode === "match";
    const draw = (X, Y, rgba, alpha, st) => {
      for (let i = 0; i < X.length; i++) {
        const x = X[i];
        if (x !== x) continue; // NaN: head not computed yet
        blendStamp(px, W, H, x * unit, Y[i] * unit, st, rgba[i * 4], rgba[i * 4 + 1], rgba[i * 4 + 2], (rgba[i * 4 + 3] / 255) * alpha);
      }
    };
    const colours = (side, tokens) => rgbaArray(markerColour(this.mode, corpus, tokens, side, { mask }), tokens.length);
    draw(d.kx, d.ky, colours("key", d.kTok), 0.6, stamp);
    draw(d.qx, d.qy, colours("query", d.qTok), 0.6, stamp);
    let matches = 0;
    if (mask && !dimOthers) {
      const big = discStamp((r + 1) * dpr);
      const [mr, mg, mb] = parseColour(MATCH);
      for (const [X, Y, TOK] of [[d.qx, d.qy, d.qTok], [d.kx, d.ky, d.kTok]]) {
        for (let i = 0; i < TOK.length; i++) {
          if (!mask[TOK[i]] || X[i] !== X[i]) continue;
          blendStamp(px, W, H, X[i] * unit, Y[i] * unit, big, mr, mg, mb, 0.95);
          matches++;
        }
      }
    } else if (mask) {
      for (const TOK of [d.qTok, d.kTok]) for (let i = 0; i < TOK.length; i++) matches += mask[TOK[i]];
    }
    g.putImageData(img, 0, 0);
    return matches;
  }

  /** One segment per key/value head above the columns of the query heads that share it. */
  renderBand() {
    const groups = kvColumns(this.atlas);
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
    const groupStarts = kvEdges(this.atlas);
    clear(this.grid);
    for (let layer = 0; layer < d.layers; layer++) {
      for (let head = 0; head < d.heads; head++) {
        const c = layer * d.heads + head;
        const q = quality[headKey(layer, head)]?.["knn_recall@10"];
        const pending = d.missingCells[c];
        const selected = state.layer === layer && state.head === head;
        const cell = h("button", {
          class: `cell${pending ? " pending" : ""}${selected ? " current" : ""}${groupStarts.has(head) ? " kv-start" : ""}`,
          dataset: { layer, head },
          title: `${headLabel(layer, head)}${q !== undefined ? ` · knn recall@10 ${fmt(q, 2)}` : ""}${pending ? " · not computed yet" : ""}`,
          onclick: () => this.ctx.store.set({ view: "head", layer, head }, { push: true }),
          onmouseenter: () => this.renderHover(layer, head, quality[headKey(layer, head)], pending),
        },
        h("span", { class: "cell-label" }, headLabel(layer, head)),
        q !== undefined ? h("span", { class: "cell-score" }, fmt(q, 2)) : null,
        pending ? h("span", { class: "cell-pending" }, "computing…") : null);
        this.grid.append(cell);
      }
    }
  }

  renderHover(layer, head, quality, pending) {
    fill(this.hoverCard, 
      h("div", { class: "card-title" }, headLabel(layer, head)),
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
    fill(this.info, 
      h("div", {}, `${d.P.toLocaleString()} of ${(2 * T).toLocaleString()} points per head (an even sample of tokens; the head view shows all).`),
      d.missing ? h("div", { class: "warn-text" }, `${d.missing} of ${d.layers * d.heads} heads are still being computed; they appear as they finish.`) : null,
      search?.active && !search.error ? h("div", {}, `Search: ${matches.toLocaleString()} highlighted points (of ${search.count} matching tokens in the corpus).`) : null,
    );
  }

  exportTarget() {
    if (!this.data) return null;
    // The export carries the head labels as annotations (on screen they are HTML).
    const d = this.data;
    const annotations = [];
    for (let layer = 0; layer < d.layers; layer++) {
      for (let head = 0; head < d.heads; head++) {
        annotations.push({ x: head + 0.04, y: layer + 0.04, xanchor: "left", yanchor: "top", showarrow: false, text: headLabel(layer, head), font: { size: 10, color: CELL_LABEL } });
      }
    }
    const cellLines = [];
    const groupStarts = kvEdges(this.atlas);
    for (let i = 1; i < d.heads; i++) {
      const edge = groupStarts.has(i);
      cellLines.push({ type: "line", x0: i, x1: i, y0: 0, y1: d.layers, line: { color: edge ? KV_EDGE : LINE, width: edge ? 1.5 : 1 } });
    }
    for (let i = 1; i < d.layers; i++) cellLines.push({ type: "line", y0: i, y1: i, x0: 0, x1: d.heads, line: { color: LINE, width: 1 } });
    const { width, height } = this.size();
    const layout = {
      width, height,
      margin: { l: 0, r: 0, t: 0, b: 0 },
      paper_bgcolor: BG,
      plot_bgcolor: BG,
      xaxis: { range: [0, d.heads], visible: false },
      yaxis: { range: [d.layers, 0], visible: false },
      showlegend: false,
      annotations,
      shapes: cellLines,
    };
    return { figure: { data: this.traces().traces, layout }, width, height };
  }

  destroy() {
    window.removeEventListener("resize", this.onResize);
  }
}

/** How many points per head the matrix asks for: all heads together stay within a budget. */
export function maxPointsFor(atlas) {
  const heads = atlas.layers * atlas.heads;
  return Math.max(200, Math.min(2000, 2 * Math.floor(POINT_BUDGET / heads / 2)));
}

/** A soft disc of radius r (device pixels) as {size, w: Float32Array(size*size) of coverage}. */
function discStamp(r) {
  const size = Math.max(1, Math.ceil(2 * r));
  const w = new Float32Array(size * size);
  const c = size / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dist = Math.hypot(x + 0.5 - c, y + 0.5 - c);
      w[y * size + x] = Math.max(0, Math.min(1, r + 0.5 - dist));
    }
  }
  return { size, w };
}

/** Blend a colour through a stamp centred on (cx, cy) into opaque RGBA pixels. */
function blendStamp(px, W, H, cx, cy, stamp, r, g, b, alpha) {
  const { size, w } = stamp;
  const x0 = Math.round(cx - size / 2);
  const y0 = Math.round(cy - size / 2);
  for (let dy = 0; dy < size; dy++) {
    const y = y0 + dy;
    if (y < 0 || y >= H) continue;
    for (let dx = 0; dx < size; dx++) {
      const x = x0 + dx;
      if (x < 0 || x >= W) continue;
      const a = alpha * w[dy * size + dx];
      if (a <= 0) continue;
      const o = (y * W + x) * 4;
      px[o] += (r - px[o]) * a;
      px[o + 1] += (g - px[o + 1]) * a;
      px[o + 2] += (b - px[o + 2]) * a;
    }
  }
}

function clamp(v, lo, hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/** 0.5th..99.5th percentile of the finite values: one outlier does not shrink a head. */
function bounds(arr) {
  if (!Number.isFinite(arr[0])) return [0, 1]; // a head not computed yet is all NaN
  const s = arr.slice().sort();
  return [s[Math.floor(0.005 * (s.length - 1))], s[Math.ceil(0.995 * (s.length - 1))]];
}
