// The page state, kept in the URL query string so that a reload or a shared link restores
// the same view. This module is the only one that reads or writes location/history.

const VIEWS = ["matrix", "head", "sentence", "image", "live"];
const METHODS = ["pca", "tsne", "umap"];
const SIDES = ["query", "key"];
const SHOW = ["both", "query", "key"];
const MODES = ["one", "all"];

// name -> [kind, default, allowed values]; the order here is the order in the URL.
const FIELDS = {
  atlas: ["str", ""],
  view: ["enum", "matrix", VIEWS],
  method: ["enum", "pca", METHODS],
  dim: ["enum", 2, [2, 3]],
  layer: ["int", 0],
  head: ["int", 0],
  token: ["int", null],
  side: ["enum", "query", SIDES],
  item: ["int", null],
  color: ["str", "qk"],
  show: ["enum", "both", SHOW],
  mode: ["enum", "one", MODES],
  search: ["str", ""],
  text: ["str", ""],
};

function parseValue(name, raw) {
  const [kind, fallback, allowed] = FIELDS[name];
  if (kind === "str") return { value: raw };
  if (kind === "int") {
    if (!/^\d+$/.test(raw)) {
      return { value: fallback, error: `URL parameter ${name}=${JSON.stringify(raw)} is not a whole number ≥ 0` };
    }
    return { value: Number(raw) };
  }
  const value = typeof allowed[0] === "number" ? Number(raw) : raw;
  if (!allowed.includes(value)) {
    return { value: fallback, error: `URL parameter ${name}=${JSON.stringify(raw)} is not one of: ${allowed.join(", ")}` };
  }
  return { value };
}

/** Read the state from a query string; unknown or malformed values fall back with a message. */
export function parse(search) {
  const params = new URLSearchParams(search);
  const state = {};
  const errors = [];
  for (const [name, [, fallback]] of Object.entries(FIELDS)) {
    state[name] = fallback;
    if (!params.has(name)) continue;
    const { value, error } = parseValue(name, params.get(name));
    state[name] = value;
    if (error) errors.push(error);
  }
  return { state, errors };
}

/** The query string for a state: only values that differ from the defaults. */
export function serialize(state) {
  const params = new URLSearchParams();
  for (const [name, [, fallback]] of Object.entries(FIELDS)) {
    const v = state[name];
    if (v === null || v === undefined || v === fallback || v === "") continue;
    params.set(name, String(v));
  }
  const s = params.toString();
  return s ? `?${s}` : "";
}

/** The one store of page state. Listeners get (state, changed: Set of field names). */
export class Store {
  constructor() {
    const { state, errors } = parse(location.search);
    this.state = state;
    this.errors = errors;
    this.listeners = [];
    window.addEventListener("popstate", () => {
      const next = parse(location.search);
      this.errors = next.errors;
      this._apply(next.state);
    });
  }

  get() {
    return this.state;
  }

  subscribe(fn) {
    this.listeners.push(fn);
  }

  /** Merge `patch` into the state and write the URL: push=true adds a history entry. */
  set(patch, { push = false } = {}) {
    const next = { ...this.state, ...patch };
    const url = `${location.pathname}${serialize(next)}${location.hash}`;
    if (push) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
    this._apply(next);
  }

  _apply(next) {
    const changed = new Set(Object.keys(FIELDS).filter((k) => next[k] !== this.state[k]));
    this.state = next;
    if (changed.size) for (const fn of this.listeners) fn(this.state, changed);
  }

  /** Absolute URL of the current view, to share. */
  link() {
    return `${location.origin}${location.pathname}${serialize(this.state)}`;
  }
}

export const LABELS = { pca: "PCA", tsne: "t-SNE", umap: "UMAP" };
export { METHODS, VIEWS };
