// The two drawings of one input's attention, shared by the sentence and "your input" views:
// BertViz-style lines (queries left, keys right, opacity = weight) and small attention
// matrices (one per head). With `causal` a query sees only its own and earlier keys: no
// line goes to a later token, and the masked part is drawn as masked, not as weight 0.

import { clear, fmt, h } from "./dom.js";
import { ATTENTION_LINE, BG, K, MAGMA, parseColour, Q } from "./theme.js";

const ROW = 22;
const SVGNS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

/** How a token from an attention response reads in a column. */
export function tokenLabel(t) {
  const s = (t.text ?? "").replace(/^[ Ġ▁]+/, "");
  return s.trim() === "" ? "␣" : s;
}

/** What a causal model's mask means, above its attention. */
export function causalNote() {
  return h("div", { class: "causal-note", title: "The model's causal mask: attention to later tokens is zero" },
    h("b", {}, "causal"), " · each token's query sees only its own and earlier tokens' keys; later keys are masked.");
}

/** Whether query i may attend to key j: always, or with a causal mask only j <= i. */
const visibleTo = (causal) => (causal ? (i, j) => j <= i : () => true);

/**
 * BertViz-style attention lines. tokens: [{text, position, special}], attention: n×n rows =
 * queries. opts: {causal, pinned: {position, side} | null, onPick(position, side), onHover(text)}.
 * Returns {el (svg), isolate(position, side)}.
 */
export function attentionLines(tokens, attention, opts = {}) {
  const n = tokens.length;
  const sees = visibleTo(opts.causal);
  const labels = tokens.map(tokenLabel);
  const longest = Math.max(4, ...labels.map((s) => s.length));
  const colW = Math.max(96, Math.min(190, 24 + longest * 7.8));
  const gap = 220;
  const width = colW * 2 + gap;
  const top = 26;
  const height = top + n * ROW + 8;
  const xL = colW;
  const xR = colW + gap;
  const root = svg("svg", { class: "attn-lines", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "attention lines" });
  root.append(
    svg("text", { x: xL - 6, y: 14, "text-anchor": "end", class: "col-head q" }, "queries"),
    svg("text", { x: xR + 6, y: 14, class: "col-head k" }, opts.causal ? "keys (causal)" : "keys"),
  );
  const heat = svg("g", { class: "heat" });
  const lines = svg("g", { class: "lines" });
  const labelsG = svg("g", { class: "labels" });
  root.append(heat, lines, labelsG);
  const y = (i) => top + i * ROW + ROW / 2;
  const left = [];
  const right = [];
  for (let i = 0; i < n; i++) {
    const special = tokens[i].special ? " special" : "";
    const l = svg("text", { x: xL - 6, y: y(i) + 4, "text-anchor": "end", class: `tok tok-q${special}`, "data-position": i }, labels[i]);
    const r = svg("text", { x: xR + 6, y: y(i) + 4, class: `tok tok-k${special}`, "data-position": i }, labels[i]);
    for (const [el, side] of [[l, "query"], [r, "key"]]) {
      el.addEventListener("mouseenter", () => draw(i, side));
      el.addEventListener("mouseleave", () => draw(pinned?.position ?? null, pinned?.side));
      el.addEventListener("click", () => opts.onPick?.(i, side));
    }
    left.push(l);
    right.push(r);
    labelsG.append(l, r);
  }
  let pinned = opts.pinned && opts.pinned.position < n ? opts.pinned : null;

  function draw(focus, side) {
    clear(lines);
    clear(heat);
    for (const el of left.concat(right)) el.classList.remove("focus", "masked");
    const frag = document.createDocumentFragment();
    const line = (i, j, w, colour) => {
      frag.append(svg("line", { x1: xL, y1: y(i), x2: xR, y2: y(j), stroke: colour, "stroke-opacity": Math.min(1, w).toFixed(3), "stroke-width": (1 + 2 * w).toFixed(2) }));
    };
    const shade = (x, i, w, colour) => {
      heat.append(svg("rect", { x, y: top + i * ROW + 1, width: colW - 4, height: ROW - 2, fill: colour, "fill-opacity": (0.6 * w).toFixed(3), rx: 3 }));
    };
    if (focus === null || focus === undefined) {
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (sees(i, j) && attention[i][j] > 0.01) line(i, j, attention[i][j] * 0.85, ATTENTION_LINE);
      opts.onHover?.(null);
    } else if (side === "query") {
      let best = 0;
      for (let j = 0; j < n; j++) {
        if (!sees(focus, j)) {
          right[j].classList.add("masked");
          continue;
        }
        const w = attention[focus][j];
        if (w > 0.002) line(focus, j, w, Q);
        shade(xR + 2, j, w, K);
        if (w > attention[focus][best]) best = j;
      }
      left[focus].classList.add("focus");
      const masked = opts.causal && focus < n - 1 ? "; later tokens are masked (causal)" : "";
      opts.onHover?.(`query “${labels[focus]}” attends most to “${labels[best]}” (${fmt(attention[focus][best], 3)})${masked}`);
    } else {
      let best = focus;
      for (let i = 0; i < n; i++) {
        if (!sees(i, focus)) {
          left[i].classList.add("masked");
          continue;
        }
        const w = attention[i][focus];
        if (w > 0.002) line(i, focus, w, K);
        shade(2, i, w, Q);
        if (w > attention[best][focus]) best = i;
      }
      right[focus].classList.add("focus");
      const masked = opts.causal && focus > 0 ? "; earlier queries cannot see it (causal)" : "";
      opts.onHover?.(`key “${labels[focus]}” is attended most by “${labels[best]}” (${fmt(attention[best][focus], 3)})${masked}`);
    }
    lines.append(frag);
  }
  draw(pinned?.position ?? null, pinned?.side);
  return {
    el: root,
    isolate(position, side) {
      pinned = position === null ? null : { position, side };
      draw(position, side);
    },
  };
}

// The attention matrices' colour ramp as [stop, [r, g, b]].
const RAMP = MAGMA.map(([p, c]) => [p, parseColour(c).slice(0, 3)]);
const MASKED = parseColour(BG).slice(0, 3); // a causal mask's cells: the page, not "weight 0"
function ramp(v) {
  const x = Math.max(0, Math.min(1, v));
  for (let s = 1; s < RAMP.length; s++) {
    if (x <= RAMP[s][0]) {
      const [p0, c0] = RAMP[s - 1];
      const [p1, c1] = RAMP[s];
      const f = (x - p0) / (p1 - p0);
      return c0.map((c, i) => Math.round(c + f * (c1[i] - c)));
    }
  }
  return RAMP[RAMP.length - 1][1];
}

/**
 * Every head of a layer as a small attention matrix (canvas heatmaps, no WebGL).
 * heads: [H][n][n]. opts: {causal, current, onPick(head), onHover(text), names: caption
 * per matrix (default "H<i>"), px: drawn size in CSS pixels}.
 */
export function headHeatmaps(tokens, heads, opts = {}) {
  const n = tokens.length;
  const sees = visibleTo(opts.causal);
  const labels = tokens.map(tokenLabel);
  const px = opts.px || 160;
  const cell = Math.max(2, Math.min(16, Math.floor((px * 1.25) / Math.max(1, n))));
  const side = n * cell;
  const wrap = h("div", { class: "heatmaps" });
  heads.forEach((att, head) => {
    const canvas = h("canvas", { width: side, height: side, class: "heatmap", dataset: { head }, style: { width: `${px}px`, height: `${px}px` } });
    const c = canvas.getContext("2d");
    const img = c.createImageData(side, side);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const [r, g, b] = sees(i, j) ? ramp(Math.sqrt(att[i][j])) : MASKED;
        for (let dy = 0; dy < cell; dy++) {
          for (let dx = 0; dx < cell; dx++) {
            const o = ((i * cell + dy) * side + j * cell + dx) * 4;
            img.data[o] = r;
            img.data[o + 1] = g;
            img.data[o + 2] = b;
            img.data[o + 3] = 255;
          }
        }
      }
    }
    c.putImageData(img, 0, 0);
    const name = opts.names?.[head] ?? `H${head}`;
    canvas.addEventListener("mousemove", (e) => {
      const rect = canvas.getBoundingClientRect();
      const j = Math.floor(((e.clientX - rect.left) / rect.width) * n);
      const i = Math.floor(((e.clientY - rect.top) / rect.height) * n);
      if (i < 0 || i >= n || j < 0 || j >= n) return;
      const weight = sees(i, j) ? fmt(att[i][j], 3) : "masked (causal: a later token)";
      opts.onHover?.(`${name}: query “${labels[i]}” → key “${labels[j]}”: ${weight}`);
    });
    canvas.addEventListener("mouseleave", () => opts.onHover?.(null));
    canvas.addEventListener("click", () => opts.onPick?.(head));
    wrap.append(h("figure", { class: `heatmap-cell${head === opts.current ? " current" : ""}${opts.onPick ? " pickable" : ""}`, title: `${name}: rows = queries, columns = keys.${opts.onPick ? " Click to open." : ""}` },
      canvas, h("figcaption", {}, name)));
  });
  return wrap;
}
