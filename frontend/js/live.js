// "Your input" view: run the model on a sentence (or an uploaded image), overlay where its
// queries and keys fall in the current head's stored layout (the method and dimension on
// screen, placed by the server), and show its attention. A layout that cannot place new
// points says why; the input is never drawn in another layout instead.

import * as api from "./api.js";
import { attentionLines, causalNote, headHeatmaps, tokenLabel } from "./attention.js";
import { clear, duration, fill, errorBox, h, headLabel, headModeSwitch, layerHeadSelects, loading, painted } from "./dom.js";
import { patchAttention } from "./image.js";
import { HeadPlot } from "./plot.js";
import { GRAY, K, K_LABEL, Q, Q_LABEL, WHITE } from "./theme.js";
import { hideTooltip, showTooltip, tokenTooltip } from "./tooltip.js";
import { View } from "./view.js";

export class LiveView extends View {
  constructor(ctx, el, side) {
    super(ctx, el, side, "live");
    this.result = null;
    this.file = null;
    this.isImage = ctx.corpus.isImage;
    this.form = this.isImage ? this.imageForm() : this.textForm();
    this.message = h("div", { class: "live-message" });
    this.plotEl = h("div", { class: "live-plot" });
    this.placement = h("div", { class: "live-placement" }); // why the input cannot be placed
    this.attnEl = h("div", { class: "live-attn" });
    this.status = h("div", { class: "status-line" }, "\u00a0");
    this.results = h("div", { class: "live-results", hidden: true }, h("div", { class: "live-left" }, this.placement, this.plotEl), h("div", { class: "live-right" }, this.status, this.attnEl));
    this.el.append(this.toolbar, this.form, this.message, this.results);
    this.plot = new HeadPlot(this.plotEl, ctx, {
      onHover: (hit, at) => {
        if (hit.token !== undefined) showTooltip(at.x, at.y, tokenTooltip(ctx, hit.token, hit.side));
        else if (hit.extra) showTooltip(at.x, at.y, this.extraTooltip(hit.extra, hit.index));
      },
    });
    side.append(
      h("h3", {}, this.isImage ? "Your image" : "Your text"),
      h("p", { class: "muted small" }, this.isImage
        ? "Upload an image: the model runs on it, and its patches' queries and keys are placed in the current head's stored layout, the method and dimension picked above (◆ queries, ■ keys), among the corpus points."
        : "Type a sentence: the model runs on it, and its tokens' queries and keys are placed in the current head's stored layout, the method and dimension picked above (◆ queries, ■ keys), among the corpus points; its attention lines are drawn alongside."),
      h("div", { class: "legend" },
        h("div", { class: "legend-row" }, h("span", { class: "swatch diamond", style: { background: Q } }), " your queries"),
        h("div", { class: "legend-row" }, h("span", { class: "swatch square", style: { background: K } }), " your keys"),
        h("div", { class: "legend-row" }, h("span", { class: "swatch", style: { background: GRAY } }), " corpus points (faint)")),
    );
  }

  textForm() {
    this.textarea = h("textarea", { rows: 2, maxlength: 2000, placeholder: "Type a sentence, e.g. The bank raised interest rates after the river flooded.", "aria-label": "Your text" });
    this.textarea.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        this.submit();
      }
    });
    return h("form", { class: "live-form", onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      this.textarea, h("button", { class: "btn primary", type: "submit" }, "Run"));
  }

  imageForm() {
    const input = h("input", { type: "file", accept: "image/*", "aria-label": "Your image", onchange: (e) => this.useFile(e.target.files[0]) });
    const drop = h("label", { class: "dropzone" }, input, h("span", {}, "Drop an image here or ", h("u", {}, "choose a file")));
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      if (e.dataTransfer.files[0]) this.useFile(e.dataTransfer.files[0]);
    });
    return h("div", { class: "live-form" }, drop);
  }

  useFile(file) {
    if (!file) return;
    this.file = file;
    if (this.fileUrl) URL.revokeObjectURL(this.fileUrl);
    this.fileUrl = URL.createObjectURL(file);
    this.run(this.ctx.store.get());
  }

  submit() {
    const text = this.textarea.value.trim();
    if (!text) return;
    this.ctx.store.set({ text });
  }

  async show(state, changed) {
    this.renderToolbar(state);
    if (!this.isImage && document.activeElement !== this.textarea) this.textarea.value = state.text;
    const want = this.isImage ? (this.file ? `${this.file.name}|${this.file.size}` : "") : state.text;
    const key = `${want}|${state.layer}|${state.head}|${state.method}|${state.dim}`;
    if (!want) {
      fill(this.message, h("div", { class: "muted" }, this.isImage ? "Choose an image to run the model on." : "Type a sentence and press Enter."));
      this.results.hidden = true;
      return;
    }
    if (key !== this.key) {
      this.key = key;
      await this.run(state);
    } else if (changed.has("mode") || changed.has("search") || changed.has("color") || changed.has("show")) {
      this.drawAttention(state);
      await this.drawPlot(state);
    } else if (changed.has("view")) {
      this.plot.resize();
    }
  }

  async run(state) {
    const key = this.key;
    const wait = loading("Running the model…");
    fill(this.message, wait.el);
    const t0 = performance.now();
    try {
      // scope "layer": every head of the layer on screen, what both head modes draw
      const where = { layer: state.layer, head: state.head, method: state.method, dim: state.dim, scope: "layer" };
      const onWait = (detail, seconds) => {
        wait.progress(0, `${detail} · waiting ${Math.round(seconds)} s`);
        this.el.dataset.waits = String((Number(this.el.dataset.waits) || 0) + 1);
      };
      const res = this.isImage
        ? await api.attentionForImage(this.ctx.atlas.id, this.file, where, onWait)
        : await api.attentionForText({ atlas: this.ctx.atlas.id, text: state.text, ...where }, onWait);
      if (key !== this.key) return;
      this.result = res;
      this.renderToolbar(state);
      clear(this.message);
      this.results.hidden = false;
      this.drawAttention(state);
      await this.drawPlot(state);
      this.el.dataset.tokens = String(res.tokens.length);
      await painted();
      this.announceDrawn(performance.now() - t0);
    } catch (e) {
      if (key !== this.key) return;
      this.key = null;
      this.results.hidden = true;
      fill(this.message, errorBox(e, "The model could not run on this input"));
    }
  }

  drawAttention(state) {
    const res = this.result;
    if (!res) return;
    const byHead = res.attention; // [heads][n][n] of the layer asked for (scope "layer")
    const causal = Boolean(this.ctx.atlas.causal);
    const onHover = (text) => (this.status.textContent = text || "\u00a0");
    clear(this.attnEl);
    if (causal) this.attnEl.append(causalNote());
    if (this.isImage) {
      const all = state.mode === "all";
      this.attnEl.append(patchAttention({
        src: this.fileUrl,
        tokens: res.tokens,
        grid: this.ctx.atlas.image?.grid || this.ctx.corpus.grid,
        size: 384,
        heads: all ? byHead : [byHead[state.head]],
        headIds: all ? byHead.map((_, i) => i) : [state.head],
        current: state.head,
        onHover,
        onHead: (head) => this.ctx.store.set({ head, mode: "one" }),
      }).el);
    } else if (state.mode === "all") {
      this.attnEl.append(headHeatmaps(res.tokens, byHead, { causal, current: state.head, onHover, onPick: (head) => this.ctx.store.set({ head, mode: "one" }) }));
    } else {
      this.lines = attentionLines(res.tokens, byHead[state.head], { causal, onHover });
      this.attnEl.append(this.lines.el);
    }
  }

  async drawPlot(state) {
    const problem = this.placementProblem(state);
    if (problem) {
      this.showPlacement(problem);
      return;
    }
    const pts = this.result.points;
    const spec = { layer: pts.layer ?? state.layer, head: pts.head ?? state.head, method: pts.method, dim: pts.dim };
    try {
      await this.plot.load(spec);
    } catch (e) {
      this.showPlacement(errorBox(e, `Could not load the stored ${this.layoutLabel(spec)} layout of ${headLabel(spec.layer, spec.head)}`));
      return;
    }
    clear(this.placement);
    this.plotEl.hidden = false;
    const tokens = this.result.tokens;
    const labels = tokens.map(tokenLabel);
    const named = tokens.length <= 40 && !this.isImage; // labels beside the points when few
    const overlay = (side, coords, name = `your ${side === "query" ? "queries" : "keys"}`) => ({
      side,
      coords,
      name,
      labels: named ? labels : null,
      trace: (is3d) => ({
        type: is3d ? "scatter3d" : "scattergl",
        mode: named ? "markers+text" : "markers",
        name,
        x: coords.map((p) => p[0]),
        y: coords.map((p) => p[1]),
        ...(is3d ? { z: coords.map((p) => p[2] ?? 0) } : {}),
        text: labels,
        textposition: side === "query" ? "top center" : "bottom center",
        textfont: { color: side === "query" ? Q_LABEL : K_LABEL, size: 11 },
        marker: { size: 11, symbol: side === "query" ? "diamond" : "square", color: side === "query" ? Q : K, line: { color: WHITE, width: 1.2 } },
      }),
    });
    this.plot.set({ color: "qk", show: state.show, dimCorpus: true, extra: [overlay("query", pts.queries), overlay("key", pts.keys)] });
    await this.plot.render();
    this.plotEl.dataset.overlay = String(pts.queries.length + pts.keys.length);
  }

  layoutLabel({ method, dim }) {
    return `${this.ctx.layouts.label(method)} ${dim}-D`;
  }

  /**
   * Why the answer cannot be drawn in the layout on screen, as a message box, or null: the
   * server's reason when the layout cannot place new points, or a placement in another layout.
   */
  placementProblem(state) {
    const res = this.result;
    const pts = res?.points;
    const title = `${this.layoutLabel(state)} cannot place ${this.isImage ? "your image" : "your text"}`;
    let why = null;
    if (!pts) why = res?.placement?.error || "The server returned no layout points for this input.";
    else if (pts.method !== state.method || pts.dim !== state.dim) {
      why = `The server placed it in ${this.layoutLabel(pts)} instead, which is not the layout on screen, so it is not drawn.`;
    }
    if (!why) return null;
    const box = errorBox({ detail: why }, title);
    box.classList.add("info", "placement-error");
    return box;
  }

  /** A message where the plot would be: the plot is emptied, so no other layout stays on screen. */
  showPlacement(message) {
    this.plot.purge();
    this.plotEl.hidden = true;
    delete this.plotEl.dataset.overlay;
    fill(this.placement, message);
  }

  extraTooltip(extra, index) {
    const t = this.result.tokens[index];
    return h("div", { class: "tip" },
      h("div", { class: "tip-head" }, h("span", { class: `side-badge ${extra.side}` }, extra.side === "query" ? "Q" : "K"), h("b", {}, tokenLabel(t))),
      h("div", { class: "tip-meta" }, `your input · position ${t.position ?? index}${t.row >= 0 ? ` · patch r${t.row} c${t.col}` : ""}`));
  }

  renderToolbar(state) {
    const set = (patch) => this.ctx.store.set(patch);
    const pts = this.result?.points;
    fill(this.toolbar,
      h("span", { class: "title" }, this.isImage ? "Your image" : "Your text"),
      ...layerHeadSelects(this.ctx.atlas, state, set),
      headModeSwitch(state, set),
      h("span", { class: "grow" }),
      pts ? h("span", { class: "muted small placed" }, `Placed in ${this.layoutLabel(pts)}${pts.how ? ` by ${pts.how}` : ""}${Number.isFinite(pts.seconds) ? ` in ${duration(pts.seconds)}` : ""}`) : null,
    );
  }

  exportTarget() {
    return this.plot.exportTarget();
  }

  hide() {
    hideTooltip();
  }

  destroy() {
    this.plot.destroy();
    if (this.fileUrl) URL.revokeObjectURL(this.fileUrl);
  }
}
