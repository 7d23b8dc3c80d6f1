// Colour encodings shared by the matrix and head views (what a point's colour means: side,
// position, sentence, norm, search match) and their legends. Every mode returns numeric
// arrays with a colorscale (fast in WebGL), never per-point strings. Colours: theme.js.

import { CATEGORICAL, COOL, DIM, GRAY, K, parseColour, Q, WARM } from "./theme.js";

const stops = (colors) => colors.map((c, i) => [i / (colors.length - 1), c]);

// Values below 0 (special tokens such as [CLS], which have no position/row/col) are grey:
// cmin is a little below 0 and the bottom of the scale is grey.
const FLOOR = 0.06;
function withFloor(colors) {
  const f = FLOOR / (1 + FLOOR);
  return [[0, GRAY], [f * 0.9, GRAY], ...stops(colors).map(([p, c]) => [f + p * (1 - f), c])];
}

function categoricalScale() {
  const n = CATEGORICAL.length;
  const out = [];
  CATEGORICAL.forEach((c, i) => {
    out.push([i / n, c], [(i + 1) / n - 1e-6, c]);
  });
  out[out.length - 1][0] = 1;
  return out;
}

const binary = (off, on) => [[0, off], [0.5, off], [0.5, on], [1, on]];

/** The colour modes that make sense for a corpus. */
export function colourModes(corpus, { norms = true } = {}) {
  const modes = [
    { id: "qk", label: "query / key" },
    { id: "position", label: corpus.isImage ? "patch index" : "token position" },
  ];
  if (corpus.isImage) {
    modes.push({ id: "row", label: "patch row" }, { id: "col", label: "patch column" }, { id: "item", label: "image" });
  } else {
    modes.push({ id: "item", label: "sentence" });
  }
  if (norms) modes.push({ id: "norm", label: "vector norm" });
  modes.push({ id: "match", label: "search match" });
  return modes;
}

/**
 * Marker colours for a set of points.
 * tokens: Int32Array of token ids, one per point; sides: Uint8Array (1 = key) or null when
 * the caller colours queries and keys as separate traces and passes side="query"|"key".
 * extra: {norms: Float32Array (2*T) indexed by row, T, mask: Uint8Array (search matches)}.
 * -> {color, colorscale, cmin, cmax} ready for a plotly marker, or {color: "<css>"}.
 */
export function markerColour(mode, corpus, tokens, side, extra = {}) {
  const isKey = side === "key";
  const n = tokens.length;
  const solid = isKey ? K : Q;
  const seq = isKey ? COOL : WARM;
  if (mode === "qk") return { color: solid };
  const values = new Float32Array(n);
  if (mode === "position" || mode === "row" || mode === "col") {
    const norm = corpus.positionNorm();
    const g = Math.max(1, corpus.grid - 1);
    for (let i = 0; i < n; i++) {
      const t = tokens[i];
      if (mode === "position") values[i] = corpus.special[t] && corpus.isImage ? -1 : norm[t];
      else {
        const v = mode === "row" ? corpus.row[t] : corpus.col[t];
        values[i] = v < 0 ? -1 : v / g;
      }
    }
    return { color: values, colorscale: withFloor(seq), cmin: -FLOOR, cmax: 1 };
  }
  if (mode === "item") {
    const m = CATEGORICAL.length;
    for (let i = 0; i < n; i++) values[i] = (corpus.item[tokens[i]] % m) + 0.5;
    return { color: values, colorscale: categoricalScale(), cmin: 0, cmax: m };
  }
  if (mode === "norm" && extra.norms) {
    const off = isKey ? extra.T : 0;
    for (let i = 0; i < n; i++) values[i] = extra.norms[off + tokens[i]];
    const [lo, hi] = extra.normRange || range(extra.norms);
    return { color: values, colorscale: stops(seq), cmin: lo, cmax: hi };
  }
  if (mode === "match" || mode === "norm") {
    const mask = extra.mask;
    if (mask) for (let i = 0; i < n; i++) values[i] = mask[tokens[i]];
    return { color: values, colorscale: binary(DIM, solid), cmin: 0, cmax: 1 };
  }
  return { color: solid };
}

/** Robust range (2nd..98th percentile) of an array. */
export function range(arr) {
  const s = Float32Array.from(arr).filter((v) => Number.isFinite(v)).sort();
  if (!s.length) return [0, 1];
  const lo = s[Math.floor(0.02 * (s.length - 1))];
  const hi = s[Math.ceil(0.98 * (s.length - 1))];
  return hi > lo ? [lo, hi] : [lo, lo + 1];
}

/** A small HTML legend for a mode (colour swatches or the two gradient bars). */
export function legendHTML(mode, corpus, extra = {}) {
  const grad = (colors) => `linear-gradient(90deg, ${colors.join(",")})`;
  const sw = (c) => `<span class="swatch" style="background:${c}"></span>`;
  if (mode === "qk") return `<div class="legend-row">${sw(Q)} queries</div><div class="legend-row">${sw(K)} keys</div>`;
  if (mode === "item") {
    const what = corpus.isImage ? "image" : "sentence";
    return `<div class="legend-row">${CATEGORICAL.slice(0, 10).map(sw).join("")}</div>
      <div class="legend-note">one colour per ${what} (${CATEGORICAL.length} colours, repeating)</div>`;
  }
  if (mode === "match") {
    return `<div class="legend-row">${sw(Q)}${sw(K)} tokens matching the search</div><div class="legend-row">${sw(DIM)} all others</div>`;
  }
  const labels = {
    position: corpus.isImage ? ["first patch", "last patch"] : ["start of sentence", "end"],
    row: ["top row", "bottom row"],
    col: ["left column", "right column"],
    norm: extra.normRange ? [extra.normRange[0].toFixed(2), extra.normRange[1].toFixed(2)] : ["small norm", "large"],
  }[mode] || ["low", "high"];
  const special = mode !== "norm" && (corpus.isImage || mode !== "position") ? `<div class="legend-row">${sw(GRAY)} special tokens ([CLS] …)</div>` : "";
  return `<div class="legend-grad"><span>queries</span><i style="background:${grad(WARM)}"></i></div>
    <div class="legend-grad"><span>keys</span><i style="background:${grad(COOL)}"></i></div>
    <div class="legend-ends"><span>${labels[0]}</span><span>${labels[1]}</span></div>${special}`;
}

/**
 * Per-point RGBA bytes for a marker colour (as returned by markerColour), evaluating the
 * colorscale the way plotly does: linear between stops, exactly at each value. (A lookup
 * table would blur the scales' sharp steps, e.g. the grey floor of special tokens into the
 * first colour of a ramp.)
 */
export function rgbaArray(spec, n) {
  const out = new Uint8ClampedArray(n * 4);
  if (typeof spec.color === "string") {
    const [r, g, b, a] = parseColour(spec.color);
    for (let i = 0; i < n; i++) out.set([r, g, b, a * 255], i * 4);
    return out;
  }
  const at = spec.colorscale.map(([p]) => p);
  const rgba = spec.colorscale.map(([, c]) => {
    const [r, g, b, a] = parseColour(c);
    return [r, g, b, a * 255];
  });
  const last = at.length - 1;
  const { cmin, cmax } = spec;
  const span = cmax > cmin ? cmax - cmin : 1;
  for (let i = 0; i < n; i++) {
    const t = Math.min(1, Math.max(0, (spec.color[i] - cmin) / span));
    let s = 1;
    while (s < last && at[s] < t) s++;
    const f = at[s] > at[s - 1] ? Math.min(1, Math.max(0, (t - at[s - 1]) / (at[s] - at[s - 1]))) : 1;
    const c0 = rgba[s - 1];
    const c1 = rgba[s];
    for (let k = 0; k < 4; k++) out[i * 4 + k] = c0[k] + f * (c1[k] - c0[k]);
  }
  return out;
}
