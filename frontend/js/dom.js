// Small DOM helpers shared by the views: element creation, messages, loading placeholders,
// head labels and the layer/head pickers.

/** h("div", {class: "x", onclick: fn, dataset: {a: 1}}, child, "text", ...) -> Element */
export function h(tag, attrs = {}, ...children) {
  const svg = tag === "svg" || attrs.svg;
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false || k === "svg") continue;
    if (k === "class") el.setAttribute("class", v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else if (k === "html") el.innerHTML = v;
    else if (!svg && k in el && typeof v !== "string") el[k] = v; // SVG geometry is read-only: attributes
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Replace an element's children (null/false children are skipped). */
export function fill(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

/** A readable error box for an ApiError (or any Error). */
export function errorBox(err, title = "Something went wrong") {
  const status = err && err.status !== undefined ? err.status : null;
  return h(
    "div",
    { class: "error-box", role: "alert", dataset: { status: status ?? "" } },
    h("div", { class: "error-title" }, title),
    h("div", { class: "error-detail" }, (err && (err.detail || err.message)) || String(err)),
    err && err.url ? h("div", { class: "error-url" }, `${status ? `HTTP ${status} · ` : ""}${decodeURI(err.url)}`) : null,
  );
}

/** The message for a layout that no build has started for this atlas; label: "PCA", .... */
export function notBuilt(atlas, method, label, dim) {
  const model = atlas.model?.id || "MODEL";
  const corpus = atlas.corpus?.id || "default";
  const limit = String(atlas.id).match(/-n(\d+)$/); // atlases built with --limit N end in -nN
  return h("div", { class: "error-box info", role: "status" },
    h("div", { class: "error-title" }, `${label} ${dim}-D is not built for this atlas`),
    h("div", { class: "error-detail" }, "Build it (the page picks it up while it runs, head by head):"),
    h("pre", {}, `qkatlas build --model ${model} --corpus ${corpus}${limit ? ` --limit ${limit[1]}` : ""} --methods ${method}`));
}

/** A loading placeholder with a message and an optional progress bar (returns {el, progress(f)}). */
export function loading(message) {
  const bar = h("div", { class: "progress-fill" });
  const label = h("div", { class: "loading-label" }, message);
  const el = h("div", { class: "loading" }, h("div", { class: "spinner" }), label, h("div", { class: "progress" }, bar));
  return {
    el,
    progress(fraction, text) {
      bar.style.width = `${Math.round(Math.min(1, Math.max(0, fraction)) * 100)}%`;
      if (text) label.textContent = text;
    },
  };
}

export function fmt(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  // toPrecision writes a number with more integer digits than `digits` as "1.4e+2"
  if (Math.abs(x) >= Math.min(1000, 10 ** digits)) return Number(x).toFixed(0);
  return Number(x).toPrecision(digits).replace(/\.?0+$/, (m) => (m.includes(".") ? "" : m));
}

/** A duration for people: "0.42 ms", "12 ms", "1.3 s". */
export function duration(seconds) {
  if (!Number.isFinite(seconds)) return "–";
  return seconds < 1 ? `${fmt(seconds * 1000, 2)} ms` : `${fmt(seconds, 2)} s`;
}

export const headLabel = (layer, head) => `L${layer} H${head}`;
export const headKey = (layer, head) => `L${String(layer).padStart(2, "0")}H${String(head).padStart(2, "0")}`;

/** The toolbar's layer and head pickers: [layerSelect, headSelect]; set(patch) moves the state. */
export function layerHeadSelects(atlas, state, set, { headDisabled = false } = {}) {
  const layerSel = h("select", { "aria-label": "Layer", onchange: (e) => set({ layer: Number(e.target.value) }) });
  for (let l = 0; l < atlas.layers; l++) layerSel.append(h("option", { value: l }, `Layer ${l}`));
  layerSel.value = state.layer;
  const headSel = h("select", { "aria-label": "Head", disabled: headDisabled, onchange: (e) => set({ head: Number(e.target.value) }) });
  for (let i = 0; i < atlas.heads; i++) headSel.append(h("option", { value: i }, `Head ${i}`));
  headSel.value = state.head;
  return [layerSel, headSel];
}

/** The one-head / all-heads-of-the-layer switch; set({mode}) moves the state. */
export function headModeSwitch(state, set) {
  const all = state.mode === "all";
  return h("div", { class: "seg small" },
    h("button", { class: `seg-btn${all ? "" : " active"}`, onclick: () => set({ mode: "one" }) }, headLabel(state.layer, state.head)),
    h("button", { class: `seg-btn${all ? " active" : ""}`, dataset: { mode: "all" }, onclick: () => set({ mode: "all" }) }, `All heads of layer ${state.layer}`));
}

/** Two frames later the browser has painted what was just drawn. */
export function painted() {
  return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
}
