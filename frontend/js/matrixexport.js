// The matrix as a file to save (export.js downloads it): every point as a vector in a plotly
// figure, with the head labels and the cell lines, while there are few enough points for that;
// beyond, a picture of the points (drawn by points.js) under an SVG of the labels and lines.

import { h, headLabel } from "./dom.js";
import { SVG_VECTOR_POINTS } from "./export.js";
import { BG, CELL_LABEL, KV_EDGE, LINE, MATCH, OUTLINE } from "./theme.js";

/**
 * The export target of a matrix of layers x heads cells, each `base` CSS px across, the whole
 * matrix unzoomed. points: how many; placed(): every point in cell units by side, with its
 * token ({qx, qy, qTok, kx, ky, kTok}); colour(side, tokens): a plotly marker colour; mask: the
 * search matches or null; diameter: a point's size in CSS px; picture(width, height, scale):
 * every point drawn into a canvas; edges: the heads that start a key/value group.
 */
export function matrixExport({ layers, heads, points, base, edges, diameter, placed, colour, mask, picture }) {
  const width = base * heads;
  const height = base * layers;
  const labels = [];
  for (let layer = 0; layer < layers; layer++) {
    for (let head = 0; head < heads; head++) labels.push({ x: head + 0.04, y: layer + 0.04, text: headLabel(layer, head) });
  }
  const lines = [];
  for (let i = 1; i < heads; i++) {
    const edge = edges.has(i);
    lines.push({ x0: i, x1: i, y0: 0, y1: layers, color: edge ? KV_EDGE : LINE, width: edge ? 1.5 : 1 });
  }
  for (let i = 1; i < layers; i++) lines.push({ y0: i, y1: i, x0: 0, x1: heads, color: LINE, width: 1 });

  if (points <= SVG_VECTOR_POINTS) {
    // Few enough points to keep each as a vector: the head labels ride as annotations.
    const layout = {
      width, height,
      margin: { l: 0, r: 0, t: 0, b: 0 },
      paper_bgcolor: BG,
      plot_bgcolor: BG,
      xaxis: { range: [0, heads], visible: false },
      yaxis: { range: [layers, 0], visible: false },
      showlegend: false,
      annotations: labels.map((a) => ({ ...a, xanchor: "left", yanchor: "top", showarrow: false, font: { size: 10, color: CELL_LABEL } })),
      shapes: lines.map(({ color, width: w, ...at }) => ({ type: "line", ...at, line: { color, width: w } })),
    };
    return { figure: { data: traces(placed(), colour, mask, diameter), layout }, width, height };
  }
  // Millions of points: a picture of them, with the lines and labels as vectors over it.
  const overlay = () => {
    const svg = h("svg", { svg: true, width, height, viewBox: `0 0 ${width} ${height}` });
    for (const l of lines) {
      svg.append(h("line", { svg: true, x1: l.x0 * base, x2: l.x1 * base, y1: l.y0 * base, y2: l.y1 * base, stroke: l.color, "stroke-width": l.width }));
    }
    for (const a of labels) {
      svg.append(h("text", { svg: true, x: a.x * base, y: a.y * base + 10, fill: CELL_LABEL, "font-size": 10 }, a.text));
    }
    return svg;
  };
  const layersOf = (scale) => [{ canvas: picture(width, height, scale), at: { x: 0, y: 0, w: width, h: height } }, overlay()];
  return { picture: { width, height, layers: layersOf } };
}

/** The matrix as plotly scattergl traces on one pair of axes: keys, queries, then the search matches. */
function traces(d, colour, mask, diameter) {
  const marker = (side, tokens) => ({ size: diameter, opacity: 0.6, ...colour(side, tokens) });
  const out = [
    { type: "scattergl", mode: "markers", name: "keys", x: d.kx, y: d.ky, marker: marker("key", d.kTok), hoverinfo: "skip" },
    { type: "scattergl", mode: "markers", name: "queries", x: d.qx, y: d.qy, marker: marker("query", d.qTok), hoverinfo: "skip" },
  ];
  if (mask) {
    const mx = [];
    const my = [];
    for (const [X, Y, TOK] of [[d.qx, d.qy, d.qTok], [d.kx, d.ky, d.kTok]]) {
      for (let i = 0; i < TOK.length; i++) {
        if (mask[TOK[i]]) {
          mx.push(X[i]);
          my.push(Y[i]);
        }
      }
    }
    out.push({
      type: "scattergl", mode: "markers", name: "matches", x: Float32Array.from(mx), y: Float32Array.from(my),
      marker: { size: diameter + 2, color: MATCH, line: { color: OUTLINE, width: 0.5 } }, hoverinfo: "skip",
    });
  }
  return out;
}
