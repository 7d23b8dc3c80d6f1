// Sentence view (text atlases): one sentence with its attention for the chosen head (lines and
// its matrix, attention.js), or every head of the layer as small attention matrices. A causal
// model's mask is named and drawn: no line goes to a later token.

import { attentionLines, causalNote, headHeatmaps } from "./attention.js";
import { clear, fill, h, headLabel } from "./dom.js";
import { ItemView } from "./view.js";

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
    const causal = Boolean(this.ctx.atlas.causal);
    const onHover = (text) => (this.status.textContent = text || "\u00a0");
    if (causal) this.body.append(causalNote());
    if (state.mode === "all") {
      this.body.append(
        h("div", { class: "muted small" }, `Layer ${state.layer}: ${res.attention.length} heads. Rows = queries, columns = keys, brightness = √weight. Click a head to open its lines.`),
        headHeatmaps(res.tokens, res.attention, {
          causal,
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
        causal,
        pinned: pinned === null ? null : { position: pinned, side: state.side },
        onHover,
        onPick: (position, side) => this.ctx.store.set({ token: offset + position, side, item }),
      });
      this.body.append(h("div", { class: "sentence-row" },
        this.lines.el,
        headHeatmaps(res.tokens, [res.attention], { causal, px: 260, names: [`${headLabel(state.layer, state.head)} attention matrix · rows = queries, columns = keys`], onHover })));
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
