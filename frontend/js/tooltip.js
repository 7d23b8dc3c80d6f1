// The floating tooltip (#tooltip): placed beside the pointer, kept inside the window, and
// what it says about a corpus token (its text in its sentence, or its image patch).

import * as api from "./api.js";
import { clear, h } from "./dom.js";

const tip = () => document.getElementById("tooltip");

export function showTooltip(x, y, content) {
  const el = tip();
  clear(el);
  el.append(content);
  el.hidden = false;
  const pad = 14;
  const { innerWidth: W, innerHeight: H } = window;
  const r = el.getBoundingClientRect();
  el.style.left = `${x + pad + r.width > W ? Math.max(4, x - pad - r.width) : x + pad}px`;
  el.style.top = `${y + pad + r.height > H ? Math.max(4, y - pad - r.height) : y + pad}px`;
}

export function hideTooltip() {
  tip().hidden = true;
}

/** Keep the last pointer position over an element (plotly's 3-D hover events carry none). */
export function trackPointer(el) {
  const pos = { x: 0, y: 0 };
  el.addEventListener("pointermove", (e) => {
    pos.x = e.clientX;
    pos.y = e.clientY;
  });
  el.addEventListener("pointerleave", hideTooltip);
  return pos;
}

/** The tooltip for a corpus token: its text in its sentence, or its image patch. */
export function tokenTooltip(ctx, token, side) {
  const c = ctx.corpus;
  const item = c.item[token];
  const pos = c.position[token];
  const badge = h("span", { class: `side-badge ${side}` }, side === "query" ? "Q" : "K");
  if (c.isImage) {
    const special = c.row[token] < 0;
    return h("div", { class: "tip" },
      h("div", { class: "tip-head" }, badge, h("b", {}, special ? c.text[token] : `patch r${c.row[token]} c${c.col[token]}`)),
      special ? null : h("img", { class: "patch-thumb", src: api.patchImageUrl(ctx.atlas.id, item, pos, 96), width: 96, height: 96, alt: "" }),
      h("div", { class: "tip-meta" }, `${c.itemName(item)} · token ${pos} of ${c.itemTokens[item]}`));
  }
  return h("div", { class: "tip" },
    h("div", { class: "tip-head" }, badge, h("b", {}, c.display(token))),
    h("div", { class: "tip-sentence" }, c.sentenceNode(token)),
    h("div", { class: "tip-meta" }, `${c.itemName(item)} · position ${pos} of ${c.itemTokens[item]}`));
}
