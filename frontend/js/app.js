// The page shell: header controls, the atlas being browsed, progress polling, and which
// view is on screen. Views live in their own modules and get a small context object.

import * as api from "./api.js";
import { Corpus } from "./corpus.js";
import { clear, fill, errorBox, h, loading } from "./dom.js";
import { HeadView } from "./head.js";
import { ImageView } from "./image.js";
import { LiveView } from "./live.js";
import { MatrixView, maxPointsFor } from "./matrix.js";
import { plotly, warmPlotly } from "./plotly.js";
import { SentenceView } from "./sentence.js";
import { LABELS, METHODS, Store } from "./state.js";

const POLL_MS = 3000; // while a build is running
const IDLE_POLL_MS = 15000; // otherwise: a build started later still shows up
const $ = (id) => document.getElementById(id);

class App {
  constructor() {
    this.store = new Store();
    this.atlases = [];
    this.ctx = null; // {atlas, corpus, search, ...} of the atlas on screen
    this.views = {};
    this.current = null;
    this.timings = {};
    this.loadingAtlas = null;
    this.pollTimer = null;
    this.store.subscribe((state, changed) => this.onState(state, changed));
    api.onActivity((n) => {
      $("busy").hidden = n === 0;
    });
    this.bindHeader();
    window.qkatlas = this; // a handle for tests, benchmarks and the console
  }

  // --- start-up ---------------------------------------------------------------------------

  async start() {
    this.timings.start = performance.now();
    this.showUrlErrors();
    const view = $("view");
    const wait = loading("Loading atlases…");
    view.append(wait.el);
    const state = this.store.get();
    try {
      const list = api.atlases();
      const first = state.atlas || preferredAtlas(await list)?.id;
      if (first) await this.prefetch({ ...state, atlas: first });
      this.atlases = await list;
    } catch (e) {
      fill(view, errorBox(e, "Could not list the atlases"));
      return;
    }
    wait.el.remove();
    this.renderAtlasPicker();
    if (!this.atlases.length) {
      fill(view,
        h("div", { class: "empty" },
          h("h2", {}, "No atlases yet"),
          h("p", {}, "Build one, then reload this page:"),
          h("pre", {}, "qkatlas build --model gpt2 --corpus default --methods pca,umap"),
          h("p", {}, "or run ", h("code", {}, "qkatlas demo"), " to build the default atlases in the background.")),
      );
      this.schedulePoll();
      return;
    }
    if (!state.atlas) this.store.set({ atlas: preferredAtlas(this.atlases).id });
    else await this.onState(state, new Set(["atlas", "view"]));
    this.schedulePoll();
  }

  /** Ask for what the first view needs before plotly.js is evaluated (errors surface later, in the view). */
  async prefetch(state) {
    const id = state.atlas;
    api.tokens(id).catch(() => {});
    api.items(id).catch(() => {});
    let summary;
    try {
      summary = await api.atlas(id);
    } catch {
      return;
    }
    if (state.view === "matrix") api.matrix(id, state.method, 2, maxPointsFor(summary)).catch(() => {});
    if (state.view === "head") api.points(id, state.layer, state.head, state.method, state.dim).catch(() => {});
    if (state.view === "head" || state.view === "live") plotly().catch(() => {});
  }

  showUrlErrors() {
    const errors = this.store.errors;
    const banner = $("banner");
    banner.hidden = !errors.length;
    clear(banner);
    if (errors.length) {
      banner.append(h("b", {}, "Ignored in the URL: "), errors.join("; "), h("button", { class: "btn ghost small", onclick: () => (banner.hidden = true) }, "dismiss"));
    }
  }

  // --- state changes ------------------------------------------------------------------------

  async onState(state, changed) {
    this.syncHeader(state, changed);
    if (changed.has("atlas") || !this.ctx) {
      const ok = await this.loadAtlas(state.atlas);
      if (!ok || this.store.get().atlas !== state.atlas) return;
      changed = new Set([...changed, "atlas", "view"]);
    }
    if (changed.has("search")) this.updateSearch(state.search);
    await this.showView(this.store.get(), changed);
  }

  async loadAtlas(id) {
    if (this.ctx && this.ctx.atlas.id === id) return true;
    this.loadingAtlas = id;
    for (const v of Object.values(this.views)) v.destroy?.();
    this.views = {};
    this.current = null;
    this.ctx = null;
    clear($("view"));
    clear($("side"));
    const wait = loading(`Loading atlas ${id}…`);
    $("view").append(wait.el);
    try {
      const [summary, tokens, items] = await Promise.all([api.atlas(id), api.tokens(id), api.items(id)]);
      if (this.loadingAtlas !== id) return false;
      this.timings.atlasLoaded = performance.now();
      const corpus = new Corpus(tokens, items, summary);
      this.ctx = { app: this, store: this.store, atlas: summary, corpus, search: null };
      this.updateSearch(this.store.get().search);
      wait.el.remove();
      this.renderBadges();
      this.renderTabs();
      this.renderMethodPicker();
      return true;
    } catch (e) {
      if (this.loadingAtlas !== id) return false;
      fill($("view"), errorBox(e, `Could not open atlas "${id}"`));
      this.renderBadges();
      return false;
    }
  }

  viewFor(name) {
    if (!this.views[name]) {
      const el = h("div", { class: `view-pane view-${name}`, dataset: { view: name } });
      const side = h("div", { class: `side-pane side-${name}` });
      $("view").append(el);
      $("side").append(side);
      const Cls = { matrix: MatrixView, head: HeadView, sentence: SentenceView, image: ImageView, live: LiveView }[name];
      this.views[name] = new Cls(this.ctx, el, side);
    }
    return this.views[name];
  }

  async showView(state, changed) {
    if (!this.ctx) return;
    let name = state.view;
    const isImage = this.ctx.corpus.isImage;
    if (name === "sentence" && isImage) name = "image";
    if (name === "image" && !isImage) name = "sentence";
    const view = this.viewFor(name);
    if (this.current !== view) {
      for (const [n, v] of Object.entries(this.views)) {
        const on = v === view;
        v.el.hidden = !on;
        v.side.hidden = !on;
        if (!on) v.hide?.();
      }
      this.current = view;
      changed = new Set([...changed, "view"]);
    }
    document.body.dataset.view = name;
    if (changed.has("view") || changed.has("atlas")) this.renderTabs();
    try {
      await view.show(state, changed);
    } catch (e) {
      console.error(e);
      view.el.append(errorBox(e, "This view failed to draw"));
    }
  }

  /** A view reports that it has drawn (tests and benchmarks wait for this). */
  drawn(name, extra = {}) {
    this.timings[name] = performance.now();
    warmPlotly();
    document.body.dataset[`${name}Drawn`] = String((Number(document.body.dataset[`${name}Drawn`]) || 0) + 1);
    Object.assign(this.timings, extra);
  }

  updateSearch(query) {
    const out = $("search-count");
    $("search").value = query;
    if (!this.ctx) return;
    const r = this.ctx.corpus.search(query);
    this.ctx.search = r;
    out.classList.toggle("error", Boolean(r.error));
    out.dataset.count = r.active && !r.error ? r.count : "";
    const unit = this.ctx.corpus.isImage ? "image" : "sentence";
    out.textContent = !r.active ? "" : r.error ? "bad regex" : `${r.count} in ${r.items}`;
    out.title = !r.active ? "" : r.error ? r.error : `${r.count} matching token${r.count === 1 ? "" : "s"} in ${r.items} ${unit}${r.items === 1 ? "" : "s"}`;
    $("search").title = out.title || "Find token: a word (exact, case-insensitive) or a regular expression";
  }

  // --- header -------------------------------------------------------------------------------

  bindHeader() {
    $("atlas-picker").addEventListener("change", (e) => {
      this.store.set({ atlas: e.target.value, token: null, item: null, layer: 0, head: 0 }, { push: true });
    });
    let timer = null;
    $("search").addEventListener("input", (e) => {
      clearTimeout(timer);
      timer = setTimeout(() => this.store.set({ search: e.target.value }), 180);
    });
    $("search").addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.target.value = "";
        this.store.set({ search: "" });
        e.target.blur();
      }
    });
    $("export-png").addEventListener("click", () => this.export("png"));
    $("export-svg").addEventListener("click", () => this.export("svg"));
    $("copy-link").addEventListener("click", async () => {
      const link = this.store.link();
      try {
        await navigator.clipboard.writeText(link);
        this.flash("Link to this view copied");
      } catch {
        prompt("Link to this view:", link);
      }
    });
    $("help-toggle").addEventListener("click", (e) => {
      const help = $("help");
      help.hidden = !help.hidden;
      e.currentTarget.setAttribute("aria-expanded", String(!help.hidden));
    });
    document.addEventListener("keydown", (e) => this.onKey(e));
  }

  onKey(e) {
    const tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || e.metaKey || e.ctrlKey || e.altKey) return;
    const s = this.store.get();
    const a = this.ctx?.atlas;
    if (e.key === "/") {
      e.preventDefault();
      $("search").focus();
    } else if (e.key === "Escape") {
      this.store.set({ token: null });
    } else if (a && s.view !== "matrix" && ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(e.key)) {
      e.preventDefault();
      const dh = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      const dl = e.key === "ArrowDown" ? 1 : e.key === "ArrowUp" ? -1 : 0;
      this.store.set({
        head: (s.head + dh + a.heads) % a.heads,
        layer: Math.min(a.layers - 1, Math.max(0, s.layer + dl)),
      });
    }
  }

  syncHeader(state, changed) {
    if (changed.has("atlas")) $("atlas-picker").value = state.atlas;
    if (changed.has("search") && document.activeElement !== $("search")) $("search").value = state.search;
    if (changed.has("method") || changed.has("dim") || changed.has("atlas")) this.renderMethodPicker();
    if (changed.has("view")) this.renderTabs();
  }

  renderAtlasPicker() {
    const sel = clear($("atlas-picker"));
    for (const a of this.atlases) {
      let model = a.model?.label || a.model?.id || a.id;
      if (a.model?.random && !/random/i.test(model)) model += " (random init)";
      const corpus = a.corpus?.id ? ` · ${a.corpus.id}` : "";
      const items = a.corpus?.items ? ` (${a.corpus.items} ${a.modality === "image" ? "images" : "sentences"})` : "";
      sel.append(h("option", { value: a.id }, `${model}${corpus}${items}`));
    }
    const state = this.store.get();
    if (state.atlas && !this.atlases.some((a) => a.id === state.atlas)) {
      sel.append(h("option", { value: state.atlas }, `${state.atlas} (not found)`));
    }
    sel.value = state.atlas;
  }

  summaryFor(id) {
    return this.atlases.find((a) => a.id === id) || this.ctx?.atlas;
  }

  renderBadges() {
    const box = clear($("atlas-badges"));
    const a = this.summaryFor(this.store.get().atlas);
    if (!a) return;
    if (a.model?.random) box.append(h("span", { class: "badge warn", title: "This model's weights are random: its heads show no learned structure" }, "random init"));
    const unit = a.modality === "image" ? "patches" : "tokens";
    box.append(h("span", { class: "badge", title: `${a.layers} layers × ${a.heads} heads (head dim ${a.head_dim}); ${Number(a.tokens).toLocaleString()} ${unit} in the corpus` },
      `${a.layers}×${a.heads} · ${compact(a.tokens)} ${unit}`));
  }

  renderTabs() {
    const nav = clear($("view-tabs"));
    const state = this.store.get();
    const isImage = this.ctx?.corpus.isImage ?? this.summaryFor(state.atlas)?.modality === "image";
    const tabs = [
      ["matrix", "Matrix"],
      ["head", "Head"],
      [isImage ? "image" : "sentence", isImage ? "Image" : "Sentence"],
      ["live", isImage ? "Your image" : "Your text"],
    ];
    let current = state.view;
    if (current === "sentence" && isImage) current = "image";
    if (current === "image" && !isImage) current = "sentence";
    for (const [id, label] of tabs) {
      nav.append(h("button", {
        class: `tab${id === current ? " active" : ""}`,
        dataset: { view: id },
        "aria-current": id === current ? "page" : null,
        onclick: () => this.store.set({ view: id }, { push: true }),
      }, label));
    }
  }

  renderMethodPicker() {
    const state = this.store.get();
    const a = this.summaryFor(state.atlas);
    const box = clear($("method-picker"));
    for (const m of METHODS) {
      const key = `${m}-${state.dim}d`;
      const done = a?.projections?.[key];
      const total = a?.total_heads ?? (a ? a.layers * a.heads : 0);
      const started = done !== undefined;
      const complete = a?.complete?.[key] ?? (started && done >= total);
      let label = LABELS[m];
      let title = `${LABELS[m]} ${state.dim}-D layout of every head`;
      if (!started) title = `${LABELS[m]} ${state.dim}-D is not built for this atlas (qkatlas build --methods ${m})`;
      else if (!complete) {
        label = `${LABELS[m]} ${done}/${total}`;
        title = `${LABELS[m]} ${state.dim}-D: ${done} of ${total} heads computed so far`;
      }
      box.append(h("button", {
        class: `seg-btn${state.method === m ? " active" : ""}${started && !complete ? " pending" : ""}${!started ? " missing" : ""}`,
        dataset: { method: m, done: done ?? "", total },
        title,
        onclick: () => this.store.set({ method: m }, { push: true }),
      }, label));
    }
    const dims = clear($("dim-picker"));
    for (const d of [2, 3]) {
      dims.append(h("button", {
        class: `seg-btn${state.dim === d ? " active" : ""}`,
        dataset: { dim: d },
        title: d === 3 ? "3-D layout of the head view (drag to rotate); the matrix stays 2-D" : "2-D layout",
        onclick: () => this.store.set({ dim: d }, { push: true }),
      }, `${d}-D`));
    }
  }

  // --- progress polling ------------------------------------------------------------------

  incomplete(list) {
    return list.some((a) => Object.values(a.complete || {}).some((c) => !c));
  }

  schedulePoll() {
    clearTimeout(this.pollTimer);
    const busy = !this.atlases.length || this.incomplete(this.atlases);
    this.pollTimer = setTimeout(() => this.poll(), busy ? POLL_MS : IDLE_POLL_MS);
  }

  async poll() {
    let list;
    try {
      list = await api.atlases();
    } catch {
      this.schedulePoll();
      return;
    }
    const before = new Map(this.atlases.map((a) => [a.id, JSON.stringify(a.projections)]));
    const hadNone = !this.atlases.length;
    this.atlases = list;
    if (hadNone && list.length) {
      location.reload();
      return;
    }
    if (list.length !== before.size) this.renderAtlasPicker();
    this.renderMethodPicker();
    const id = this.store.get().atlas;
    const now = list.find((a) => a.id === id);
    if (now && this.ctx && before.get(id) !== JSON.stringify(now.projections)) {
      api.refreshAtlas(id);
      try {
        this.ctx.atlas = await api.atlas(id);
        this.current?.onProgress?.(this.store.get());
      } catch {
        /* next poll */
      }
    }
    this.schedulePoll();
  }

  // --- export --------------------------------------------------------------------------

  async export(format) {
    const s = this.store.get();
    const target = this.current?.exportTarget?.();
    const name = `qkatlas-${s.atlas}-${s.view}${s.view === "matrix" ? "" : `-L${s.layer}H${s.head}`}-${s.method}${s.dim}d`;
    if (!target) {
      this.flash("Nothing to export in this view yet");
      return;
    }
    if (target.figure) {
      const Plotly = await plotly();
      await Plotly.downloadImage(target.figure, {
        format,
        filename: name,
        width: target.width || target.plotly?.clientWidth,
        height: target.height || target.plotly?.clientHeight,
        scale: format === "png" ? 2 : 1,
      });
    } else if (target.svg) {
      downloadSvg(target.svg, name, format);
    }
  }

  flash(message) {
    const banner = $("banner");
    fill(banner, message);
    banner.hidden = false;
    banner.classList.add("info");
    setTimeout(() => {
      banner.hidden = true;
      banner.classList.remove("info");
    }, 2000);
  }
}

/** The atlas shown when the URL names none: the first with trained weights. */
function preferredAtlas(list) {
  return list.find((a) => !a.model?.random) || list[0];
}

function compact(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e4 ? `${Math.round(n / 1e3)}k` : Number(n).toLocaleString();
}

/** Save an inline SVG as .svg, or rasterised as .png. */
function downloadSvg(svg, name, format) {
  const clone = svg.cloneNode(true);
  clone.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  const style = document.createElementNS("http://www.w3.org/2000/svg", "style");
  style.textContent = "text{font:13px system-ui,sans-serif;fill:#d6dde6} .col-head{font-size:11px;letter-spacing:.6px}"
    + " .col-head.q{fill:#ff9248} .col-head.k{fill:#45b4e6} .special{fill:#5d6773} .focus{font-weight:700;fill:#fff}";
  clone.prepend(style);
  const { width, height } = svg.getBoundingClientRect();
  clone.setAttribute("width", width);
  clone.setAttribute("height", height);
  const text = new XMLSerializer().serializeToString(clone);
  const blob = new Blob([text], { type: "image/svg+xml" });
  const url = URL.createObjectURL(blob);
  const save = (href) => {
    const a = h("a", { href, download: `${name}.${format}` });
    document.body.append(a);
    a.click();
    a.remove();
  };
  if (format === "svg") {
    save(url);
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    return;
  }
  const img = new Image();
  img.onload = () => {
    const canvas = h("canvas", { width: width * 2, height: height * 2 });
    const c = canvas.getContext("2d");
    c.fillStyle = "#0f1216";
    c.fillRect(0, 0, canvas.width, canvas.height);
    c.scale(2, 2);
    c.drawImage(img, 0, 0);
    save(canvas.toDataURL("image/png"));
    URL.revokeObjectURL(url);
  };
  img.src = url;
}

new App().start();
