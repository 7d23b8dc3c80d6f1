// The one place for colours and fonts: every module that draws (canvas, SVG, plotly) takes
// them from here. The page's CSS (css/app.css :root) names the same UI colours as custom
// properties (--bg, --q, ...); the e2e tests check that the two agree.

export const FONT = "system-ui, sans-serif";

// The page and the plots
export const BG = "#0f1216";
export const TEXT = "#d6dde6";
export const FAINT = "#5d6773";
export const LINE = "#2a313c";
export const PLOT_TEXT = "#c9d1d9";
export const PLOT_GRID = "#1c222a";
export const PLOT_TICKS = "#6b7682";
export const HOVER_BG = "#161b22";
export const CELL_LABEL = "#9aa5b1";
export const KV_EDGE = "#6a7a90"; // the matrix's line between groups of heads that share keys
export const WHITE = "#ffffff";
export const OUTLINE = "#111111"; // the edge of a highlighted point
export const SHADE = "#06080c"; // darkens what an image patch does not attend to
export const TRANSPARENT = "rgba(0,0,0,0)";

// Queries warm, keys cool
export const Q = "#ff9248";
export const K = "#45b4e6";
export const Q_LABEL = "#ffd2b0";
export const K_LABEL = "#bfe6f7";
export const LABEL = "#e6edf3"; // text next to a point
export const ATTENTION_LINE = "#9db7d3"; // a sentence's lines when no token is picked out
export const GRAY = "#59616d"; // special tokens, faint corpus points
export const DIM = "rgba(110,118,130,0.22)";
export const MATCH = "#fff36b";

// Sequential scales (dark -> bright on a dark background).
export const WARM = ["#7f2704", "#c2410c", "#f97316", "#fdba74", "#ffedd5"];
export const COOL = ["#0c3d75", "#1d6fb8", "#3ea0dd", "#8fd0f1", "#e0f4ff"];
// A perceptual dark-to-bright ramp (magma-like) for attention matrices: [stop, colour].
export const MAGMA = [[0, "#0c0a1e"], [0.25, "#50127b"], [0.5, "#b63679"], [0.75, "#fb8861"], [1, "#fcfdbf"]];
export const CATEGORICAL = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
  "#8cd17d", "#86bcb6", "#f1ce63", "#a0cbe8", "#ffbe7d", "#d37295", "#fabfd2", "#b6992d", "#499894", "#d4a6c8",
];

// Per-head statistics: a head's label kind (stats.label's rules) as a colour; a kind the page
// does not know yet takes CATEGORICAL's colours in turn (kindColour).
export const KINDS = {
  induction: "#e15759",
  "previous-token": "#f28e2b",
  "next-token": "#edc948",
  self: "#b07aa1",
  sink: "#4e79a7",
  special: "#76b7b2",
  positional: "#59a14f",
  local: "#ff9da7",
  content: "#a0cbe8",
  broad: "#7d8590",
};
// Layers on the map of heads, first to last (viridis-like, bright enough on BG), and a statistic's value on the
// matrix's cells, low to high (MAGMA's bright half, so that a low value still shows on BG).
export const LAYERS = [[0, "#b07ce8"], [0.25, "#5b8ee6"], [0.5, "#22a9a0"], [0.75, "#72cc55"], [1, "#fde725"]];
export const TINT = [[0, "#3b0f70"], [0.33, "#8c2981"], [0.66, "#de4968"], [1, "#fecf92"]];
export const TINT_ALPHA = 0.42; // a tinted cell's background over the points' BG
export const DIMMED_ALPHA = 0.78; // a filtered-out cell: BG at this opacity over it

/** "#rrggbb" or "rgb(a)(r, g, b[, a])" -> [r, g, b, a] with a in 0..1. */
export function parseColour(c) {
  if (c.startsWith("#")) {
    const n = parseInt(c.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255, 1];
  }
  const v = c.slice(c.indexOf("(") + 1, c.indexOf(")")).split(",").map(Number);
  return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1];
}

/** A colour as WebGL takes it: [r, g, b, a], each 0..1. */
export function glColour(c) {
  const [r, g, b, a] = parseColour(c);
  return [r / 255, g / 255, b / 255, a];
}

/** A theme colour with another opacity, as a CSS colour. */
export function withAlpha(colour, alpha) {
  const [r, g, b] = parseColour(colour);
  return `rgba(${r},${g},${b},${alpha.toFixed(3)})`;
}

/** The CSS an exported SVG carries, so that it reads as on screen without the page's stylesheet. */
export const SVG_EXPORT_CSS = `text{font:13px ${FONT};fill:${TEXT}} .col-head{font-size:11px;letter-spacing:.6px}`
  + ` .col-head.q{fill:${Q}} .col-head.k{fill:${K}} .special{fill:${FAINT}} .masked{fill:${FAINT};opacity:.45} .focus{font-weight:700;fill:${WHITE}}`;

/** The colour of label kind `kind`; `known` lists the kinds on screen, to give an unknown kind its own colour. */
export function kindColour(kind, known = []) {
  if (KINDS[kind]) return KINDS[kind];
  const others = known.filter((k) => !KINDS[k]);
  return CATEGORICAL[Math.max(0, others.indexOf(kind)) % CATEGORICAL.length];
}

/** The colour at t (0..1, clipped) of a ramp of [stop, colour] pairs, as "rgb(r,g,b)". */
export function rampColour(stops, t) {
  const x = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0));
  let s = 1;
  while (s < stops.length - 1 && stops[s][0] < x) s++;
  const [p0, c0] = stops[s - 1];
  const [p1, c1] = stops[s];
  const f = p1 > p0 ? Math.max(0, Math.min(1, (x - p0) / (p1 - p0))) : 1;
  const a = parseColour(c0);
  const b = parseColour(c1);
  const mix = (i) => Math.round(a[i] + f * (b[i] - a[i]));
  return `rgb(${mix(0)},${mix(1)},${mix(2)})`;
}

/** A ramp as a CSS linear-gradient (a legend's bar). */
export function rampGradient(stops) {
  return `linear-gradient(90deg, ${stops.map(([p, c]) => `${c} ${Math.round(p * 100)}%`).join(", ")})`;
}
