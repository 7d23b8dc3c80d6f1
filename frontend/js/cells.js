// The matrix's points: every head's 2-D layout, as the matrix endpoint sends it, fitted into
// its cell and laid out in drawing order for points.js, with the token and side of each point.
// A cell's points are the same sample of rows in every head, so tokens and colours are kept
// once, for one cell.

import { evenOrder } from "./points.js";

// Points the matrix asks for, all heads together: every point of a 12 x 12 model on 10 000
// tokens (2.88M), an even sample of each head beyond (a 64 x 80 model gets ~1 200 per head).
export const POINT_BUDGET = 6000000;
const MAX_PER_HEAD = 100000; // the API's cap on max_points
const PAD = 0.07; // empty margin inside a cell, as a fraction of the cell

/** How many points per head the matrix asks for: every one while all heads stay within a budget. */
export function maxPointsFor(atlas) {
  const heads = atlas.layers * atlas.heads;
  const each = Math.min(2 * atlas.tokens, MAX_PER_HEAD, Math.floor(POINT_BUDGET / heads));
  return Math.max(2, 2 * Math.floor(each / 2));
}

/**
 * Fit every head into its cell (cell units: head + 0..1 across, layer + 0..1 down) and lay the
 * points out in drawing order: the keys of every cell, then the queries of every cell, each
 * cell's run in an even order (so that a share of a run is an even sample of it).
 * m: the matrix as api.matrix answers it; T: tokens of the atlas.
 */
export function prepare(m, T) {
  const { layers, heads, P, rows, coords } = m;
  const cells = layers * heads;
  const qRows = [];
  const kRows = [];
  for (let p = 0; p < P; p++) (rows[p] < T ? qRows : kRows).push(p);
  const nq = qRows.length;
  const nk = kRows.length;
  const qOrder = evenOrder(nq);
  const kOrder = evenOrder(nk);
  const qp = Int32Array.from(qOrder, (j) => qRows[j]); // run position -> row of the sample
  const kp = Int32Array.from(kOrder, (j) => kRows[j]);
  const xy = new Float32Array(2 * cells * P);
  const missingCells = new Uint8Array(cells);
  const runs = [];
  for (let c = 0; c < cells; c++) runs.push([c * nk, nk]);
  for (let c = 0; c < cells; c++) runs.push([cells * nk + c * nq, nq]);
  let missing = 0;
  for (let c = 0; c < cells; c++) {
    const layer = Math.floor(c / heads);
    const head = c % heads;
    const base = c * P * 2;
    if (!Number.isFinite(coords[base])) {
      missingCells[c] = 1;
      missing++;
    }
    const fit = fitCell(coords, base, P);
    const place = (p, at) => {
      const x = coords[base + 2 * p];
      const y = coords[base + 2 * p + 1];
      xy[2 * at] = clamp(head + 0.5 + (x - fit.mx) * fit.s, head + 0.01, head + 0.99);
      xy[2 * at + 1] = clamp(layer + 0.5 - (y - fit.my) * fit.s, layer + 0.01, layer + 0.99);
    };
    for (let j = 0; j < nk; j++) place(kp[j], c * nk + j);
    for (let j = 0; j < nq; j++) place(qp[j], cells * nk + c * nq + j);
  }
  const tokenOf = (ps) => Int32Array.from(ps, (p) => rows[p] % T);
  return {
    layers, heads, P, cells, nq, nk, xy, runs, missingCells,
    columns: Int32Array.from({ length: cells }, (_, c) => c % heads), // cell -> the column it is drawn in
    missing: m.missing || missing,
    qTok: tokenOf(qp), kTok: tokenOf(kp),
  };
}

/**
 * Move each cell's points, in place, to the column `columns` (cell -> column, overlays.columnsOf)
 * gives its head: the heads of a layer reordered without fitting any of them again.
 */
export function placeColumns(d, columns) {
  for (let c = 0; c < d.cells; c++) {
    const shift = columns[c] - d.columns[c];
    if (!shift) continue;
    for (const [first, count] of [d.runs[c], d.runs[d.cells + c]]) {
      for (let i = first; i < first + count; i++) d.xy[2 * i] += shift;
    }
  }
  d.columns = Int32Array.from(columns);
}

/** Centre and scale that fit one head's points (its 0.5th..99.5th percentiles) into a cell. */
function fitCell(coords, base, P) {
  if (!Number.isFinite(coords[base])) return { mx: 0, my: 0, s: 1 }; // not computed yet: all NaN
  const n = Math.min(P, 4000); // an even sample is enough for percentiles
  const xs = new Float32Array(n);
  const ys = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const p = Math.floor((i * P) / n);
    xs[i] = coords[base + 2 * p];
    ys[i] = coords[base + 2 * p + 1];
  }
  const [x0, x1] = bounds(xs);
  const [y0, y1] = bounds(ys);
  return { mx: (x0 + x1) / 2, my: (y0 + y1) / 2, s: (1 - 2 * PAD) / Math.max(x1 - x0, y1 - y0, 1e-9) };
}

/** The search matches of every cell as their own set, drawn over the points: queries then keys, cell by cell. */
export function matchPoints(d, mask) {
  const q = [];
  const k = [];
  for (let j = 0; j < d.nq; j++) if (mask[d.qTok[j]]) q.push(d.cells * d.nk + j);
  for (let j = 0; j < d.nk; j++) if (mask[d.kTok[j]]) k.push(j);
  const per = q.length + k.length;
  const xy = new Float32Array(2 * d.cells * per);
  const runs = [];
  let at = 0;
  for (let c = 0; c < d.cells; c++) {
    runs.push([at, per]);
    for (const i of q) {
      const src = i + c * d.nq;
      xy[2 * at] = d.xy[2 * src];
      xy[2 * at + 1] = d.xy[2 * src + 1];
      at++;
    }
    for (const i of k) {
      const src = i + c * d.nk;
      xy[2 * at] = d.xy[2 * src];
      xy[2 * at + 1] = d.xy[2 * src + 1];
      at++;
    }
  }
  return { xy, runs };
}

function clamp(v, lo, hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/** 0.5th..99.5th percentile of the values: one outlier does not shrink a head. */
function bounds(arr) {
  const s = arr.slice().sort();
  return [s[Math.floor(0.005 * (s.length - 1))], s[Math.ceil(0.995 * (s.length - 1))]];
}
