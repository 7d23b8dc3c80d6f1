// Image view (image atlases): the image the model saw with its patch grid; hovering a patch
// shows that patch's attention over the image as a heat map, for one head or every head
// of the layer.

import * as api from "./api.js";
import { clear, fill, fmt, h } from "./dom.js";
import { K, Q, SHADE, WHITE, withAlpha } from "./theme.js";
import { ItemView } from "./view.js";

/**
 * The patch-attention widget. opts: {src, tokens: [{position,row,col,special,text}],
 * grid, size (px on screen), heads: [[n×n]] (one per head drawn), headIds, current,
 * pinned (position|null), onPick(position), onHover(text|null), onHead(head)}.
 */
export function patchAttention(opts) {
  const { tokens, grid, heads } = opts;
  const n = tokens.length;
  const at = new Map(); // "r,c" -> token position
  tokens.forEach((t, i) => {
    if (t.row >= 0) at.set(`${t.row},${t.col}`, i);
  });
  const prefix = tokens.map((t, i) => (t.row < 0 ? i : -1)).filter((i) => i >= 0);
  const big = heads.length === 1;
  const size = big ? opts.size : Math.max(120, Math.min(200, opts.size / 2.4));
  const wrap = h("div", { class: big ? "patch-stage single" : "patch-stage multi" });
  const panels = heads.map((att, k) => {
    const img = h("img", { src: opts.src, width: size, height: size, alt: "", class: "patch-img", draggable: false });
    const canvas = h("canvas", { width: size, height: size, class: "patch-overlay" });
    const frame = h("div", { class: "patch-frame", style: { width: `${size}px`, height: `${size}px` } }, img, canvas);
    const head = opts.headIds[k];
    const fig = h("figure", { class: `patch-panel${head === opts.current && !big ? " current" : ""}`, dataset: { head } },
      frame, big ? null : h("figcaption", {}, `H${head}`));
    if (!big) fig.addEventListener("click", () => opts.onHead?.(head));
    wrap.append(fig);
    return { att, canvas, frame };
  });
  let pinned = opts.pinned ?? null;
  let hovered = null;
  const px = size / grid;

  function positionAt(e, frame) {
    const r = frame.getBoundingClientRect();
    const col = Math.floor(((e.clientX - r.left) / r.width) * grid);
    const row = Math.floor(((e.clientY - r.top) / r.height) * grid);
    return at.get(`${row},${col}`);
  }

  function draw() {
    const focus = hovered ?? pinned ?? prefix[0] ?? 0;
    for (const { att, canvas } of panels) {
      const c = canvas.getContext("2d");
      c.clearRect(0, 0, size, size);
      const row = att[focus] || [];
      let max = 0;
      for (let j = 0; j < n; j++) if (tokens[j].row >= 0 && row[j] > max) max = row[j];
      for (let j = 0; j < n; j++) {
        const t = tokens[j];
        if (t.row < 0) continue;
        const rel = max > 0 ? Math.pow(row[j] / max, 0.75) : 0;
        c.fillStyle = withAlpha(SHADE, 0.72 * (1 - rel));
        c.fillRect(t.col * px, t.row * px, px, px);
        c.fillStyle = withAlpha(Q, 0.38 * rel);
        c.fillRect(t.col * px, t.row * px, px, px);
      }
      if (big && grid <= 32) {
        c.strokeStyle = withAlpha(WHITE, 0.12);
        c.lineWidth = 1;
        c.beginPath();
        for (let i = 1; i < grid; i++) {
          c.moveTo(i * px + 0.5, 0);
          c.lineTo(i * px + 0.5, size);
          c.moveTo(0, i * px + 0.5);
          c.lineTo(size, i * px + 0.5);
        }
        c.stroke();
      }
      const ft = tokens[focus];
      if (ft && ft.row >= 0) {
        c.strokeStyle = K;
        c.lineWidth = big ? 2.5 : 1.5;
        c.strokeRect(ft.col * px + 1, ft.row * px + 1, px - 2, px - 2);
      }
    }
    const ft = tokens[focus];
    if (opts.onHover && ft) {
      const att = panels[0].att[focus] || [];
      const toPrefix = prefix.reduce((s, i) => s + (att[i] || 0), 0);
      let best = -1;
      for (let j = 0; j < n; j++) if (tokens[j].row >= 0 && (best < 0 || att[j] > att[best])) best = j;
      const name = ft.row >= 0 ? `patch r${ft.row} c${ft.col}` : ft.text || "[CLS]";
      const top = best >= 0 ? `; most to patch r${tokens[best].row} c${tokens[best].col} (${fmt(att[best], 3)})` : "";
      opts.onHover(`${name} as a query${big ? "" : ` (${panels.length} heads)`}: ${fmt(toPrefix, 3)} of its attention goes to ${prefix.length > 1 ? "the prefix tokens" : "[CLS]"}${big ? top : ""}`, focus);
    }
  }

  for (const { frame } of panels) {
    frame.addEventListener("mousemove", (e) => {
      const p = positionAt(e, frame);
      if (p !== undefined && p !== hovered) {
        hovered = p;
        draw();
      }
    });
    frame.addEventListener("mouseleave", () => {
      hovered = null;
      draw();
    });
    frame.addEventListener("click", (e) => {
      const p = positionAt(e, frame);
      if (p !== undefined && big) opts.onPick?.(p);
    });
  }
  draw();
  return {
    el: wrap,
    pin(position) {
      pinned = position;
      draw();
    },
    focusCls() {
      hovered = null;
      pinned = null;
      draw();
    },
  };
}

export class ImageView extends ItemView {
  constructor(ctx, el, side) {
    super(ctx, el, side, "image");
    this.patchCard = h("div", { class: "card patch-card" });
    this.thumbs = h("div", { class: "thumbs" });
    side.append(
      h("h3", {}, "Image"),
      h("p", { class: "muted small" }, "Hover a patch: the heat map is that patch's attention (its query against every key). Bright = attended. Without a hover, [CLS]'s attention is shown. Click a patch to select it."),
      this.patchCard,
      h("div", { class: "card-title" }, "Images"),
      this.thumbs,
    );
  }

  reselect(state, item, changed) {
    if ((changed.has("token") || changed.has("item")) && this.widget) this.widget.pin(this.pinnedPosition(state, item));
    return true;
  }

  draw(res, state, item) {
    const all = state.mode === "all";
    const image = this.ctx.atlas.image || {};
    const grid = image.grid || this.ctx.corpus.grid;
    const heads = all ? res.attention : [res.attention];
    const headIds = all ? heads.map((_, i) => i) : [state.head];
    const offset = this.ctx.corpus.itemOffset[item];
    this.widget = patchAttention({
      src: api.itemImageUrl(this.ctx.atlas.id, item),
      tokens: res.tokens,
      grid,
      size: this.displaySize(),
      heads,
      headIds,
      current: state.head,
      pinned: this.pinnedPosition(state, item),
      onPick: (position) => this.ctx.store.set({ token: offset + position, side: "query", item }),
      onHover: (text, position) => {
        this.status.textContent = text || "\u00a0";
        this.renderPatch(item, res.tokens[position], position);
      },
      onHead: (head) => this.ctx.store.set({ head, mode: "one" }, { push: true }),
    });
    this.body.append(this.widget.el);
    this.el.dataset.patches = String(res.tokens.filter((t) => t.row >= 0).length);
  }

  displaySize() {
    const avail = Math.min(this.body.clientWidth || 600, window.innerHeight - 190);
    return Math.max(224, Math.min(560, Math.floor(avail / 8) * 8));
  }

  itemTitle(item) {
    const c = this.ctx.corpus;
    return h("span", { class: "title" }, `${c.itemName(item)} (${item + 1} of ${c.items})`);
  }

  renderPatch(item, token, position) {
    if (!token) return;
    fill(this.patchCard, 
      h("div", { class: "card-title" }, token.row >= 0 ? `Patch r${token.row} c${token.col}` : token.text || "[CLS]"),
      token.row >= 0 ? h("img", { class: "patch-thumb", src: api.patchImageUrl(this.ctx.atlas.id, item, position, 96), width: 96, height: 96, alt: "" }) : null,
      h("div", { class: "muted small" }, `token position ${position} · ${this.ctx.corpus.itemName(item)}`),
    );
  }

  renderSide(state, item) {
    const c = this.ctx.corpus;
    if (this.thumbs.childElementCount !== Math.min(c.items, 120)) {
      clear(this.thumbs);
      for (let i = 0; i < Math.min(c.items, 120); i++) {
        this.thumbs.append(h("img", {
          src: api.itemImageUrl(this.ctx.atlas.id, i), loading: "lazy", width: 56, height: 56, alt: c.itemName(i), title: c.itemName(i),
          dataset: { item: i },
          onclick: () => this.ctx.store.set({ item: i, token: null }),
        }));
      }
    }
    for (const t of this.thumbs.children) t.classList.toggle("current", Number(t.dataset.item) === item);
  }
}
