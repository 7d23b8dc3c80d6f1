// Start-up and routing: learn the layouts from the server, keep the first screen (builds.js)
// up until an atlas can be drawn, then show the view the URL state names for the atlas it
// names. The header, polling, export and keys have their own modules; views announce what
// they drew with "view:drawn" events, counted here on <body> (data-<view>-drawn).

import * as api from "./api.js";
import { firstScreen } from "./builds.js";
import { CompareView } from "./compare.js";
import { Corpus } from "./corpus.js";
import { clear, errorBox, fill, h, loading } from "./dom.js";
import { download, exportName } from "./export.js";
import { HeadView } from "./head.js";
import { Header } from "./header.js";
import { HeadsView } from "./heads.js";
import { ImageView } from "./image.js";
import { bindKeys } from "./keys.js";
import { Layouts } from "./layouts.js";
import { LiveView } from "./live.js";
import { maxPointsFor } from "./cells.js";
import { MatrixView } from "./matrix.js";
import { plotly } from "./plotly.js";
import { Poller } from "./polling.js";
import { SentenceView } from "./sentence.js";
import { Store } from "./state.js";

const VIEWS = {
  matrix: MatrixView, head: HeadView, sentence: SentenceView, image: ImageView, live: LiveView, heads: HeadsView, compare: CompareView,
};
const $ = (id) => document.getElementById(id);

/** Whether an atlas has a head of some layout written, so that a view can draw it. */
const drawable = (a) => Object.values(a.projections || {}).some((done) => done > 0);

/** Whether the list gives the atlas's summary (a damaged atlas is listed with its reason only). */
const usable = (a) => a.status !== "damaged";

/** The atlas shown when the URL names none: the first drawable one with trained weights; a
 * damaged one only when nothing else is there (its view then says what is damaged). */
function preferredAtlas(list) {
  const ready = list.filter(drawable);
  const pool = ready.length ? ready : list.filter(usable).length ? list.filter(usable) : list;
  return pool.find((a) => !a.model?.random) || pool[0];
}

/** What the atlas picker shows of the list: a change re-renders it. */
const pickerKey = (list) => list.map((a) => `${a.id}:${a.status}`).join("\n");

class App {
  constructor(layouts) {
    this.layouts = layouts;
    this.store = new Store(layouts);
    this.header = new Header(this.store, layouts, { exportAs: (format) => this.exportAs(format) });
    this.poller = new Poller((update) => this.onPoll(update));
    this.atlases = [];
    this.builds = []; // the builds running now, as the last poll found them
    this.opened = false; // false while the first screen is up
    this.ctx = null; // {store, layouts, atlas, corpus, search} of the atlas on screen
    this.views = {};
    this.current = null;
    this.timings = {};
    this.loadingAtlas = null;
    this.store.subscribe((state, changed) => this.onState(state, changed));
    api.onActivity((n) => {
      $("busy").hidden = n === 0;
    });
    bindKeys(this.store, () => this.ctx?.atlas ?? null, () => this.header.focusSearch());
    document.addEventListener("view:drawn", (e) => this.onDrawn(e.detail));
    document.addEventListener("plotly:ready", (e) => {
      this.timings.plotlyReady = e.detail.at;
    });
    window.qkatlas = this; // a handle for tests, benchmarks and the console
  }

  // --- start-up ---------------------------------------------------------------------------

  /** atlases: the pending answer of GET /api/atlases. */
  async start(atlases) {
    this.timings.start = performance.now();
    this.header.showUrlErrors(this.store.errors);
    const wait = loading("Loading atlases…");
    $("view").append(wait.el);
    const state = this.store.get();
    try {
      const first = state.atlas || preferredAtlas((await atlases).filter(drawable))?.id;
      if (first) await this.prefetch({ ...state, atlas: first });
      this.atlases = await atlases;
    } catch (e) {
      fill($("view"), errorBox(e, "Could not list the atlases"));
      return;
    }
    wait.el.remove();
    this.header.renderAtlasPicker(this.atlases);
    if (state.atlas || this.atlases.some(drawable)) await this.open();
    await this.poller.poll();
  }

  /** Ask for what the first view needs at once (errors surface later, in the view). */
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
    if (state.view === "heads" || state.view === "compare") api.stats(id).catch(() => {});
    if (state.view === "heads") api.headMap(id).catch(() => {});
    if ((state.view === "head" || state.view === "live") && state.dim === 3) plotly().catch(() => {}); // 3-D is plotly's
  }

  /** Leave the first screen: show the atlas the URL names, else the preferred one. */
  async open() {
    this.opened = true;
    const state = this.store.get();
    if (!state.atlas) this.store.set({ atlas: preferredAtlas(this.atlases).id });
    else await this.onState(state, new Set(["atlas", "view"]));
  }

  // --- polling ------------------------------------------------------------------------------

  async onPoll({ atlases, builds, buildsError }) {
    const before = new Map(this.atlases.map((a) => [a.id, JSON.stringify(a.projections)]));
    const picked = pickerKey(this.atlases);
    this.atlases = atlases;
    this.builds = builds;
    if (pickerKey(atlases) !== picked) this.header.renderAtlasPicker(atlases);
    if (!this.opened) {
      if (atlases.some(drawable) || (atlases.length && !builds.length)) await this.open();
      else fill($("view"), firstScreen(builds, buildsError));
      return;
    }
    const id = this.store.get().atlas;
    const now = atlases.find((a) => a.id === id);
    if (now && usable(now) && !this.ctx && this.loadingAtlas === id && pickerKey(atlases) !== picked) {
      await this.onState(this.store.get(), new Set(["atlas"])); // it failed to open and has changed: try again
      return;
    }
    if (now && this.ctx && before.get(id) !== JSON.stringify(now.projections)) {
      api.refreshAtlas(id);
      try {
        this.ctx.atlas = await api.atlas(id);
        this.current?.onProgress?.(this.store.get());
      } catch {
        /* the next poll tries again */
      }
    }
    this.header.renderLayoutPicker(this.summaryFor(id));
    this.header.renderBadges(this.summaryFor(id), builds);
  }

  // --- state changes ------------------------------------------------------------------------

  async onState(state, changed) {
    if (!this.opened) return;
    this.header.sync(state, changed, this.summaryFor(state.atlas), this.isImage(state.atlas));
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
    for (const v of Object.values(this.views)) v.destroy();
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
      this.ctx = { store: this.store, layouts: this.layouts, atlas: summary, corpus, search: null };
      this.updateSearch(this.store.get().search);
      wait.el.remove();
      this.header.renderBadges(summary, this.builds);
      this.header.renderTabs(corpus.isImage);
      this.header.renderLayoutPicker(summary);
      return true;
    } catch (e) {
      if (this.loadingAtlas !== id) return false;
      fill($("view"), errorBox(e, `Could not open atlas "${id}"`));
      this.header.renderBadges(this.summaryFor(id), this.builds);
      return false;
    }
  }

  viewFor(name) {
    if (!this.views[name]) {
      const el = h("div", { class: `view-pane view-${name}`, dataset: { view: name } });
      const side = h("div", { class: `side-pane side-${name}` });
      $("view").append(el);
      $("side").append(side);
      this.views[name] = new VIEWS[name](this.ctx, el, side);
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
      for (const v of Object.values(this.views)) {
        const on = v === view;
        v.el.hidden = !on;
        v.side.hidden = !on;
        if (!on) v.hide();
      }
      this.current = view;
      changed = new Set([...changed, "view"]);
    }
    document.body.dataset.view = name;
    if (changed.has("view") || changed.has("atlas")) this.header.renderTabs(isImage);
    try {
      await view.show(state, changed);
    } catch (e) {
      console.error(e);
      view.el.append(errorBox(e, "This view failed to draw"));
    }
  }

  /** A view has drawn: count it on <body> (tests and benchmarks wait for that) and note when. */
  onDrawn({ view, ms, ...timings }) {
    this.timings[view] = performance.now();
    this.timings[`${view}Ms`] = ms;
    Object.assign(this.timings, timings);
    const key = `${view}Drawn`;
    document.body.dataset[key] = String((Number(document.body.dataset[key]) || 0) + 1);
  }

  updateSearch(query) {
    if (this.ctx) this.ctx.search = this.ctx.corpus.search(query);
    this.header.showSearch(query, this.ctx?.search ?? null, this.ctx?.corpus.isImage);
  }

  summaryFor(id) {
    return this.atlases.find((a) => a.id === id && usable(a)) || this.ctx?.atlas || null;
  }

  isImage(id) {
    return this.ctx?.corpus.isImage ?? this.summaryFor(id)?.modality === "image";
  }

  async exportAs(format) {
    const saved = await download(this.current?.exportTarget(), exportName(this.store.get(), this.layouts), format);
    if (!saved) this.header.flash("Nothing to export in this view yet");
  }
}

async function main() {
  const atlases = api.atlases();
  atlases.catch(() => {}); // start() reports it
  let layouts;
  try {
    layouts = new Layouts(await api.layouts());
  } catch (e) {
    fill($("view"), errorBox(e, "Could not ask the server which layouts it builds (GET /api/layouts)"));
    return;
  }
  await new App(layouts).start(atlases);
}

main();
