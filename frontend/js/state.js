// The page state, kept in the URL query string so that a reload or a shared link restores
// the same view. This module is the only one that reads or writes location/history.

const VIEWS = ["matrix", "head", "sentence", "image", "live", "heads", "compare"];
const SIDES = ["query", "key"];
const SHOW = ["both", "query", "key"];
const MODES = ["one", "all"];
const MAP_COLOURS = ["layer", "kind"];
const PANES = ["heads", "head"];
export const NEIGHBOURS_BY = ["attention", "joint", "projection"];
export const NEIGHBOUR_COUNTS = [5, 10, 20, 50];

/**
 * Every field of the state: name -> [kind, default, allowed values]; the order here is the
 * order in the URL. The methods and dimensions are those the server builds (layouts.js).
 */
export function schema(layouts) {
  return {
    atlas: ["str", ""],
    view: ["enum", "matrix", VIEWS],
    method: ["enum", layouts.first.method, layouts.methods],
    dim: ["enum", layouts.first.dim, layouts.dims],
    layer: ["int", 0],
    head: ["int", 0],
    token: ["int", null],
    side: ["enum", "query", SIDES],
    item: ["int", null],
    color: ["str", "qk"],
    show: ["enum", "both", SHOW],
    mode: ["enum", "one", MODES],
    by: ["enum", "attention", NEIGHBOURS_BY],
    k: ["enum", 10, NEIGHBOUR_COUNTS],
    search: ["str", ""],
    text: ["str", ""],
    // heads by their statistics (overlays.js): tint, order, keep a label kind / a threshold
    tint: ["str", ""],
    sort: ["str", ""],
    kind: ["str", ""],
    where: ["str", ""],
    // the map of heads: colour by layer or label kind, size by a statistic
    mapcolor: ["enum", "layer", MAP_COLOURS],
    size: ["str", ""],
    // the comparison: atlas b beside the atlas on screen; its layer and head (null: A's); what is side by side
    b: ["str", ""],
    blayer: ["int", null],
    bhead: ["int", null],
    panes: ["enum", "heads", PANES],
  };
}

function parseValue(field, name, raw) {
  const [kind, fallback, allowed] = field;
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
export function parse(search, fields) {
  const params = new URLSearchParams(search);
  const state = {};
  const errors = [];
  for (const [name, field] of Object.entries(fields)) {
    state[name] = field[1];
    if (!params.has(name)) continue;
    const { value, error } = parseValue(field, name, params.get(name));
    state[name] = value;
    if (error) errors.push(error);
  }
  return { state, errors };
}

/** The query string for a state: only values that differ from the defaults. */
export function serialize(state, fields) {
  const params = new URLSearchParams();
  for (const [name, [, fallback]] of Object.entries(fields)) {
    const v = state[name];
    if (v === null || v === undefined || v === fallback || v === "") continue;
    params.set(name, String(v));
  }
  const s = params.toString();
  return s ? `?${s}` : "";
}

/** The one store of page state. Listeners get (state, changed: Set of field names). */
export class Store {
  constructor(layouts) {
    this.fields = schema(layouts);
    const { state, errors } = parse(location.search, this.fields);
    this.state = state;
    this.errors = errors;
    this.listeners = [];
    window.addEventListener("popstate", () => {
      const next = parse(location.search, this.fields);
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
    const url = `${location.pathname}${serialize(next, this.fields)}${location.hash}`;
    if (push) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
    this._apply(next);
  }

  _apply(next) {
    const changed = new Set(Object.keys(this.fields).filter((k) => next[k] !== this.state[k]));
    this.state = next;
    if (changed.size) for (const fn of this.listeners) fn(this.state, changed);
  }

  /** Absolute URL of the current view, to share. */
  link() {
    return `${location.origin}${location.pathname}${serialize(this.state, this.fields)}`;
  }
}
