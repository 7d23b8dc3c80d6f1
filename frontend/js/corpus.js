// The token and item tables of an atlas as typed columns, plus token search. Every view
// reads token provenance (item, position, text, patch row/col) from here.

import { h } from "./dom.js";

export class Corpus {
  /** tokensJson/itemsJson: the API's {"n", "columns": {...}} tables; summary: the atlas. */
  constructor(tokensJson, itemsJson, summary) {
    const t = tokensJson.columns;
    this.n = tokensJson.n;
    this.modality = summary.modality || summary.corpus?.modality || "text";
    this.item = Int32Array.from(t.item);
    this.position = Int32Array.from(t.position);
    this.text = t.text;
    this.special = Uint8Array.from(t.special, Boolean);
    this.row = Int16Array.from(t.row ?? new Array(this.n).fill(-1));
    this.col = Int16Array.from(t.col ?? new Array(this.n).fill(-1));
    const it = itemsJson.columns;
    this.items = itemsJson.n;
    this.itemText = it.text;
    this.itemLabel = it.label ?? [];
    this.itemTokens = Int32Array.from(it.tokens ?? []);
    this.itemOffset = Int32Array.from(it.offset ?? []);
    if (!it.offset) this._offsetsFromTokens();
    let maxRow = -1;
    for (let i = 0; i < this.n; i++) if (this.row[i] > maxRow) maxRow = this.row[i];
    this.grid = summary.image?.grid ?? maxRow + 1;
    this.wordpiece = !this.text.some((s) => s.startsWith(" ") || s.startsWith("Ġ"));
    this._norm = null;
  }

  _offsetsFromTokens() {
    const count = new Int32Array(this.items);
    for (let i = 0; i < this.n; i++) count[this.item[i]]++;
    this.itemTokens = count;
    this.itemOffset = new Int32Array(this.items);
    for (let i = 1; i < this.items; i++) this.itemOffset[i] = this.itemOffset[i - 1] + count[i - 1];
  }

  get isImage() {
    return this.modality === "image";
  }

  /** Position normalised within its item, 0 (first) .. 1 (last). */
  positionNorm() {
    if (!this._norm) {
      this._norm = new Float32Array(this.n);
      for (let i = 0; i < this.n; i++) {
        const len = this.itemTokens[this.item[i]];
        this._norm[i] = len > 1 ? this.position[i] / (len - 1) : 0;
      }
    }
    return this._norm;
  }

  /** The token's text as shown: leading-space markers removed, blanks made visible. */
  display(t) {
    const s = this.text[t] ?? "";
    const shown = s.replace(/^[ Ġ▁]+/, "").replace(/^##/, "");
    return shown.trim() === "" ? "␣" : shown;
  }

  itemName(item) {
    if (this.isImage) return this.itemLabel[item] || `image ${item}`;
    return `sentence ${item}`;
  }

  /** Tokens of one item, joined so that the item reads as text, the token `t` marked. */
  sentenceNode(t, { maxTokens = 60 } = {}) {
    const item = this.item[t];
    const start = this.itemOffset[item];
    const len = this.itemTokens[item];
    let from = start;
    let to = start + len;
    if (len > maxTokens) {
      from = Math.max(start, t - (maxTokens >> 1));
      to = Math.min(start + len, from + maxTokens);
    }
    const el = h("span", { class: "sentence" });
    if (from > start) el.append("… ");
    for (let i = from; i < to; i++) {
      let s = this.text[i] ?? "";
      if (this.wordpiece) s = s.startsWith("##") ? s.slice(2) : (i > from ? " " : "") + s;
      if (i === t) {
        const lead = s.match(/^\s*/)[0];
        el.append(lead, h("mark", {}, s.slice(lead.length)));
      } else el.append(s);
    }
    if (to < start + len) el.append(" …");
    return el;
  }

  /**
   * Tokens matching a query. A plain word matches tokens whose text, without its leading
   * space or word-piece marker, equals it (case-insensitive); anything with regex syntax, or
   * /…/, is a case-insensitive regular expression tested against that same text.
   * -> {mask: Uint8Array(n), count, items, error}
   */
  search(query) {
    const q = (query || "").trim();
    const mask = new Uint8Array(this.n);
    if (!q) return { mask, count: 0, items: 0, active: false };
    let test;
    try {
      test = matcher(q);
    } catch (e) {
      return { mask, count: 0, items: 0, active: true, error: `invalid regular expression: ${e.message}` };
    }
    let count = 0;
    const items = new Set();
    for (let i = 0; i < this.n; i++) {
      if (test(searchText(this.text[i]))) {
        mask[i] = 1;
        count++;
        items.add(this.item[i]);
      }
    }
    return { mask, count, items: items.size, active: true };
  }
}

/** The text a token is searched by: without its leading space / Ġ / ▁ / ## marker. */
export function searchText(s) {
  return (s || "").replace(/^[ Ġ▁]+/, "").replace(/^##/, "").trim();
}

const REGEX_SYNTAX = /[\\^$.*+?()[\]{}|]/;

function matcher(q) {
  const slashed = q.match(/^\/(.+)\/([a-z]*)$/);
  if (slashed) {
    const re = new RegExp(slashed[1], slashed[2].includes("i") ? slashed[2] : `${slashed[2]}i`);
    return (s) => re.test(s);
  }
  if (REGEX_SYNTAX.test(q)) {
    const re = new RegExp(q, "i");
    return (s) => re.test(s);
  }
  const word = q.toLowerCase();
  return (s) => s.toLowerCase() === word;
}
