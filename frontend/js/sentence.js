// Sentence view (text atlases): one sentence with BertViz-style attention lines for the
// chosen head (queries on the left, keys on the right, opacity = weight; hover a token to
// isolate its lines), or every head of the layer as small attention matrices.

import * as api from "./api.js";
import { clear, fill, fmt, h, headLabel } from "./dom.js";
import { ATTENTION_LINE, K, MAGMA, parseColour, Q } from "./theme.js";
import { ItemView } from "./view.js";

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

/**
 * BertViz-style attention lines. tokens: [{text, position, special}], attention: n×n rows =
 * queries. opts: {pinned: {position, side} | null, onPick(position, side), onHover(text)}.
 * Returns {el (svg), isolate(position, side)}.
 */
export function attentionLines(tokens, attention, opts = {}) {
  const n = tokens.length;
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
    svg("text", { x: xR + 6, y: 14, class: "col-head k" }, "keys"),
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
    for (const el of left.concat(right)) el.classList.remove("focus", "dim");
    const frag = document.createDocumentFragment();
    const line = (i, j, w, colour) => {
      frag.append(svg("line", { x1: xL, y1: y(i), x2: xR, y2: y(j), stroke: colour, "stroke-opacity": Math.min(1, w).toFixed(3), "stroke-width": (1 + 2 * w).toFixed(2) }));
    };
    if (focus === null || focus === undefined) {
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (attention[i][j] > 0.01) line(i, j, attention[i][j] * 0.85, ATTENTION_LINE);
      opts.onHover?.(null);
    } else if (side === "query") {
      let best = 0;
      for (let j = 0; j < n; j++) {
        const w = attention[focus][j];
        if (w > 0.002) line(focus, j, w, Q);
        heat.append(svg("rect", { x: xR + 2, y: top + j * ROW + 1, width: colW - 4, height: ROW - 2, fill: K, "fill-opacity": (0.6 * w).toFixed(3), rx: 3 }));
        if (w > attention[focus][best]) best = j;
      }
      left[focus].classList.add("focus");
      opts.onHover?.(`query “${labels[focus]}” attends most to “${labels[best]}” (${fmt(attention[focus][best], 3)})`);
    } else {
      let best = 0;
      for (let i = 0; i < n; i++) {
        const w = attention[i][focus];
        if (w > 0.002) line(i, focus, w, K);
        heat.append(svg("rect", { x: 2, y: top + i * ROW + 1, width: colW - 4, height: ROW - 2, fill: Q, "fill-opacity": (0.6 * w).toFixed(3), rx: 3 }));
        if (w > attention[best][focus]) best = i;
      }
      right[focus].classList.add("focus");
      opts.onHover?.(`key “${labels[focus]}” is attended most by “${labels[best]}” (${fmt(attention[best][focus], 3)})`);
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
 * heads: [H][n][n]. opts: {current, onPick(head), onHover(text), names: caption per
 * matrix (default "H<i>"), px: drawn size in CSS pixels}.
 */
export function headHeatmaps(tokens, heads, opts = {}) {
  const n = tokens.length;
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
        const [r, g, b] = ramp(Math.sqrt(att[i][j]));
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
    canvas.addEventListener("mousemove", (e) => {
      const rect = canvas.getBoundingClientRect();
      const j = Math.floor(((e.clientX - rect.left) / rect.width) * n);
      const i = Math.floor(((e.clientY - rect.top) / rect.height) * n);
      const name = opts.names?.[head] ?? `H${head}`;
      if (i >= 0 && i < n && j >= 0 && j < n) opts.onHover?.(`${name}: query “${labels[i]}” → key “${labels[j]}”: ${fmt(att[i][j], 3)}`);
    });
    canvas.addEventListener("mouseleave", () => opts.onHover?.(null));
    canvas.addEventListener("click", () => opts.onPick?.(head));
    const name = opts.names?.[head] ?? `H${head}`;
    wrap.append(h("figure", { class: `heatmap-cell${head === opts.current ? " current" : ""}${opts.onPick ? " pickable" : ""}`, title: `${name}: rows = queries, columns = keys.${opts.onPick ? " Click to open." : ""}` },
      canvas, h("figcaption", {}, name)));
  });
  return wrap;
}

export class SentenceView extends ItemView {
  constructor(ctx, el, side) {
    super(ctx, el, side, "sentence");
    this.textCard = h("div", { class: "card" });
    this.matchCard = h("div", { class: "card" });
    side.append(
      h("h3", {}, "Sentence"),
      this.textCard,
      h("p", { class: "muted small" }, "Left: each token's query; right: each token's key. A line's opacity is the attention weight. Hover a token to isolate its lines; click to select it (it opens in the head view)."),
      this.matchCard,
    );
  }

  reselect(state, item, changed) {
    if (!changed.has("token") && !changed.has("side")) return true;
    if (!this.lines) return false; // the all-heads matrices are drawn again
    this.lines.isolate(this.pinnedPosition(state, item), state.side);
    return true;
  }

  draw(res, state, item) {
    this.lines = null;
    const onHover = (text) => (this.status.textContent = text || "\u00a0");
    if (state.mode === "all") {
      this.body.append(
        h("div", { class: "muted small" }, `Layer ${state.layer}: ${res.attention.length} heads. Rows = queries, columns = keys, brightness = √weight. Click a head to open its lines.`),
        headHeatmaps(res.tokens, res.attention, {
          current: state.head,
          px: res.attention.length <= 4 ? 240 : res.attention.length <= 8 ? 200 : 160,
          onHover,
          onPick: (head) => this.ctx.store.set({ head, mode: "one" }, { push: true }),
        }),
      );
    } else {
      const offset = this.ctx.corpus.itemOffset[item];
      const pinned = this.pinnedPosition(state, item);
      this.lines = attentionLines(res.tokens, res.attention, {
        pinned: pinned === null ? null : { position: pinned, side: state.side },
        onHover,
        onPick: (position, side) => this.ctx.store.set({ token: offset + position, side, item }),
      });
      this.body.append(h("div", { class: "sentence-row" },
        this.lines.el,
        headHeatmaps(res.tokens, [res.attention], { px: 260, names: [`${headLabel(state.layer, state.head)} attention matrix · rows = queries, columns = keys`], onHover })));
    }
    this.el.dataset.tokens = String(res.tokens.length);
  }

  itemTitle(item, go) {
    const c = this.ctx.corpus;
    const itemInput = h("input", { type: "number", min: 0, max: c.items - 1, value: item, class: "num", "aria-label": "Sentence number", onchange: (e) => go(Number(e.target.value)) });
    return h("span", { class: "title" }, "Sentence ", itemInput, ` of ${c.items}`);
  }

  renderSide(state, item) {
    const c = this.ctx.corpus;
    fill(this.textCard, 
      h("div", { class: "card-title" }, `${c.itemName(item)} · ${c.itemTokens[item] ?? "?"} tokens`),
      h("div", { class: "sentence-text" }, c.itemText[item] ?? ""),
      c.itemLabel[item] ? h("div", { class: "muted small" }, c.itemLabel[item]) : null,
    );
    clear(this.matchCard);
    const s = this.ctx.search;
    if (s?.active && !s.error && s.count) {
      const items = [];
      for (let t = 0; t < c.n && items.length < 40; t++) {
        if (s.mask[t] && items[items.length - 1]?.item !== c.item[t]) items.push({ item: c.item[t], token: t });
      }
      this.matchCard.append(
        h("div", { class: "card-title" }, `Sentences with a match (${s.items})`),
        h("ul", { class: "match-list" }, ...items.map(({ item: it, token }) => h("li", {
          class: it === item ? "current" : "",
          onclick: () => this.ctx.store.set({ item: it, token, side: "query" }),
        }, c.sentenceNode(token, { maxTokens: 14 })))),
      );
    }
  }

  exportTarget() {
    return this.lines ? { svg: this.lines.el } : null;
  }
}
