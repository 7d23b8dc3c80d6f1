// The header: atlas picker, atlas badges (and a running build), layout picker (method and
// dimension, as GET /api/layouts lists them), view tabs, token search, the buttons, and the
// banner under it. Every control moves the URL state; nothing here draws a view.

import { buildLine } from "./builds.js";
import { clear, fill, h } from "./dom.js";

const $ = (id) => document.getElementById(id);
const SEARCH_DELAY_MS = 180;

export class Header {
  /** actions: {exportAs(format)}: what the PNG and SVG buttons do. */
  constructor(store, layouts, actions) {
    this.store = store;
    this.layouts = layouts;
    $("atlas-picker").addEventListener("change", (e) => {
      store.set({ atlas: e.target.value, token: null, item: null, layer: 0, head: 0 }, { push: true });
    });
    let timer = null;
    $("search").addEventListener("input", (e) => {
      clearTimeout(timer);
      timer = setTimeout(() => store.set({ search: e.target.value }), SEARCH_DELAY_MS);
    });
    $("search").addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.target.value = "";
        store.set({ search: "" });
        e.target.blur();
      }
    });
    $("export-png").addEventListener("click", () => actions.exportAs("png"));
    $("export-svg").addEventListener("click", () => actions.exportAs("svg"));
    $("copy-link").addEventListener("click", async () => {
      const link = store.link();
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
  }

  focusSearch() {
    $("search").focus();
  }

  /** Keep the header in step with the state: summary is the atlas on screen (or null). */
  sync(state, changed, summary, isImage) {
    if (changed.has("atlas")) $("atlas-picker").value = state.atlas;
    if (changed.has("search") && document.activeElement !== $("search")) $("search").value = state.search;
    if (changed.has("method") || changed.has("dim") || changed.has("atlas")) this.renderLayoutPicker(summary);
    if (changed.has("view") || changed.has("atlas")) this.renderTabs(isImage);
  }

  renderAtlasPicker(atlases) {
    const sel = clear($("atlas-picker"));
    for (const a of atlases) {
      if (a.status === "damaged") {
        // Listed, so that it is not mistaken for missing, and not pickable: its reason is the title.
        sel.append(h("option", { value: a.id, disabled: true, title: a.detail, dataset: { damaged: "" } }, `${a.id} (damaged)`));
        continue;
      }
      let model = a.model?.label || a.model?.id || a.id;
      if (a.model?.random && !/random/i.test(model)) model += " (random init)";
      const corpus = a.corpus?.id ? ` · ${a.corpus.id}` : "";
      const items = a.corpus?.items ? ` (${a.corpus.items} ${a.modality === "image" ? "images" : "sentences"})` : "";
      sel.append(h("option", { value: a.id }, `${model}${corpus}${items}`));
    }
    const { atlas } = this.store.get();
    if (atlas && !atlases.some((a) => a.id === atlas)) sel.append(h("option", { value: atlas }, `${atlas} (not found)`));
    sel.value = atlas;
  }

  /** Badges for the atlas on screen (random weights, size) and for the builds running now. */
  renderBadges(summary, builds = []) {
    const box = clear($("atlas-badges"));
    if (summary) {
      if (summary.model?.random) box.append(h("span", { class: "badge warn", title: "This model's weights are random: its heads show no learned structure" }, "random init"));
      const unit = summary.modality === "image" ? "patches" : "tokens";
      box.append(h("span", { class: "badge", title: `${summary.layers} layers × ${summary.heads} heads (head dim ${summary.head_dim}); ${Number(summary.tokens).toLocaleString()} ${unit} in the corpus` },
        `${summary.layers}×${summary.heads} · ${compact(summary.tokens)} ${unit}`));
    }
    if (builds.length) {
      // One word, to keep the header on one line: the title says what each build is doing.
      box.append(h("span", { class: "badge building", title: builds.map(buildLine).join("\n") },
        builds.length > 1 ? `building ×${builds.length}` : "building"));
    }
  }

  renderTabs(isImage) {
    const nav = clear($("view-tabs"));
    const state = this.store.get();
    const tabs = [
      ["matrix", "Matrix"],
      ["head", "Head"],
      [isImage ? "image" : "sentence", isImage ? "Image" : "Sentence"],
      ["live", isImage ? "Your image" : "Your text"],
      ["heads", "Heads"],
      ["compare", "Compare"],
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

  /** One button per method (with how far its layout at the current dimension is), one per dimension. */
  renderLayoutPicker(summary) {
    const state = this.store.get();
    const box = clear($("method-picker"));
    const total = summary?.total_heads ?? (summary ? summary.layers * summary.heads : 0);
    for (const m of this.layouts.methods) {
      const label = this.layouts.label(m);
      const key = this.layouts.key(m, state.dim);
      const done = key === null ? undefined : summary?.projections?.[key];
      const started = done !== undefined;
      const complete = summary?.complete?.[key] ?? (started && done >= total);
      let text = label;
      let title = `${label} ${state.dim}-D layout of every head`;
      if (key === null) title = `${label} has no ${state.dim}-D layout`;
      else if (!started) title = `${label} ${state.dim}-D is not built for this atlas (qkatlas build --methods ${m})`;
      else if (!complete) {
        text = `${label} ${done}/${total}`;
        title = `${label} ${state.dim}-D: ${done} of ${total} heads computed so far`;
      }
      box.append(h("button", {
        class: `seg-btn${state.method === m ? " active" : ""}${started && !complete ? " pending" : ""}${!started ? " missing" : ""}`,
        dataset: { method: m, done: done ?? "", total },
        title,
        onclick: () => this.store.set({ method: m }, { push: true }),
      }, text));
    }
    const dims = clear($("dim-picker"));
    for (const d of this.layouts.dims) {
      dims.append(h("button", {
        class: `seg-btn${state.dim === d ? " active" : ""}`,
        dataset: { dim: d },
        title: d === 3 ? "3-D layout of the head view (drag to rotate); the matrix stays 2-D" : `${d}-D layout`,
        onclick: () => this.store.set({ dim: d }, { push: true }),
      }, `${d}-D`));
    }
  }

  /** The search box and its count: result is Corpus.search()'s answer (or null: no atlas). */
  showSearch(query, result, isImage) {
    const out = $("search-count");
    $("search").value = query;
    if (!result) return;
    out.classList.toggle("error", Boolean(result.error));
    out.dataset.count = result.active && !result.error ? result.count : "";
    const unit = isImage ? "image" : "sentence";
    out.textContent = !result.active ? "" : result.error ? "bad regex" : `${result.count} in ${result.items}`;
    out.title = !result.active ? "" : result.error ? result.error
      : `${result.count} matching token${result.count === 1 ? "" : "s"} in ${result.items} ${unit}${result.items === 1 ? "" : "s"}`;
    $("search").title = out.title || "Find token: a word (exact, case-insensitive) or a regular expression";
  }

  /** What the URL asked for that could not be used. */
  showUrlErrors(errors) {
    const banner = $("banner");
    banner.hidden = !errors.length;
    clear(banner);
    if (errors.length) {
      banner.append(h("b", {}, "Ignored in the URL: "), errors.join("; "), h("button", { class: "btn ghost small", onclick: () => (banner.hidden = true) }, "dismiss"));
    }
  }

  /** A short note in the banner for two seconds. */
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

function compact(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e4 ? `${Math.round(n / 1e3)}k` : Number(n).toLocaleString();
}
