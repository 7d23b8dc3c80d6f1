// The REST API client: the only module that calls fetch. Large arrays arrive as
// little-endian binary and are handed out as typed arrays, never as per-point objects.

const BASE = new URL("api/", document.baseURI).pathname;

/** An error answered by the API (or a network failure, status 0), with a message for people. */
export class ApiError extends Error {
  constructor(status, detail, url, retryAfter = 0) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.url = url;
    this.retryAfter = retryAfter; // seconds, when the server said to try again later (429, 503)
  }
}

// --- activity: the page shows a busy bar while anything is in flight ---------------------
let inflight = 0;
const activityListeners = new Set();
export function onActivity(fn) {
  activityListeners.add(fn);
}
function busy(delta) {
  inflight += delta;
  for (const fn of activityListeners) fn(inflight);
}

function detailText(detail, status) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    // FastAPI validation errors: [{loc, msg}, ...]
    return detail.map((d) => `${(d.loc || []).filter((p) => p !== "path" && p !== "query").join(".")}: ${d.msg}`).join("; ");
  }
  return detail ? JSON.stringify(detail) : `HTTP ${status}`;
}

async function send(path, { init, onProgress } = {}) {
  const url = path.startsWith("/") ? path : BASE + path;
  busy(+1);
  try {
    let res;
    try {
      res = await fetch(url, init);
    } catch (e) {
      throw new ApiError(0, `Cannot reach the qkatlas server (${e.message}). Is \`qkatlas serve\` running?`, url);
    }
    if (!res.ok) {
      let detail = `${res.status} ${res.statusText}`;
      try {
        const body = await res.json();
        if (body && body.detail !== undefined) detail = detailText(body.detail, res.status);
      } catch {
        /* not JSON: keep the status line */
      }
      throw new ApiError(res.status, detail, url, Number(res.headers.get("Retry-After")) || 0);
    }
    return onProgress ? await readWithProgress(res, onProgress) : res;
  } finally {
    busy(-1);
  }
}

/** Read a response body into an ArrayBuffer, reporting (loaded, total) as bytes arrive. */
async function readWithProgress(res, onProgress) {
  const total = Number(res.headers.get("Content-Length")) || 0;
  if (!res.body) return { res, buffer: await res.arrayBuffer() };
  const chunks = [];
  let loaded = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress(loaded, Math.max(total, loaded));
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return { res, buffer: out.buffer };
}

async function json(path, init) {
  const res = await send(path, { init });
  return res.json();
}

async function binary(path, onProgress) {
  if (onProgress) return send(path, { onProgress });
  const res = await send(path);
  return { res, buffer: await res.arrayBuffer() };
}

// Immutable resources (a stored projection never changes) are cached by URL; failures are
// not, so a projection that was still being computed is fetched again later.
const cache = new Map();
function cached(key, load) {
  if (!cache.has(key)) {
    const p = load();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return cache.get(key);
}

const enc = encodeURIComponent;
const atlasPath = (atlas) => `atlases/${enc(atlas)}`;
const headPath = (atlas, layer, head) => `${atlasPath(atlas)}/heads/${enc(layer)}/${enc(head)}`;

function shapeOf(res, fallback) {
  const s = res.headers.get("X-Shape");
  return s ? s.split(",").map(Number) : fallback;
}

/** The layouts the server builds, in build order: [{key, method, dim, label}, ...]. */
export function layouts() {
  return json("layouts");
}

/** The builds running now: {builds: [{atlas, model, label, stage, done, total, updated}, ...]}. */
export function builds() {
  return json("builds");
}

/** All atlases with their progress (never cached: polled while builds run). */
export function atlases() {
  return json("atlases");
}

export function atlas(id) {
  return cached(`atlas:${id}`, () => json(atlasPath(id)));
}

/** Forget the cached summary of an atlas (its projections progressed). */
export function refreshAtlas(id) {
  cache.delete(`atlas:${id}`);
}

export function tokens(id) {
  return cached(`tokens:${id}`, () => json(`${atlasPath(id)}/tokens?format=json`));
}

export function items(id) {
  return cached(`items:${id}`, () => json(`${atlasPath(id)}/items?format=json`));
}

export function headInfo(id, layer, head) {
  return json(headPath(id, layer, head));
}

/** One head's layout: {coords: Float32Array (rows*dim, row-major), rows, dim, tokens}. */
export function points(id, layer, head, method, dim, onProgress) {
  const path = `${headPath(id, layer, head)}/points?method=${enc(method)}&dim=${enc(dim)}&format=binary`;
  return cached(path, async () => {
    const { res, buffer } = await binary(path, onProgress);
    const coords = new Float32Array(buffer);
    const [rows, d] = shapeOf(res, [coords.length / dim, dim]);
    return { coords, rows, dim: d, tokens: Number(res.headers.get("X-Tokens")) || rows / 2 };
  });
}

/** Each point's norm in the joint space: Float32Array (2 * tokens). */
export function norms(id, layer, head) {
  const path = `${headPath(id, layer, head)}/norms`;
  return cached(path, async () => new Float32Array((await binary(path)).buffer));
}

/**
 * Every head at once: {rows: Int32Array (P), coords: Float32Array (layers*heads*P*dim),
 * layers, heads, P, dim, missing}. Cached only when no head is missing.
 */
export async function matrix(id, method, dim, maxPoints, onProgress) {
  const path = `${atlasPath(id)}/matrix?method=${enc(method)}&dim=${enc(dim)}&max_points=${enc(maxPoints)}`;
  const load = async () => {
    const { res, buffer } = await binary(path, onProgress);
    const h = (name) => Number(res.headers.get(name));
    const P = h("X-Points");
    const result = {
      rows: new Int32Array(buffer, 0, P),
      coords: new Float32Array(buffer, 4 * P),
      layers: h("X-Layers"),
      heads: h("X-Heads"),
      P,
      dim: h("X-Dim") || dim,
      missing: h("X-Missing") || 0,
    };
    if (result.missing) cache.delete(path);
    return result;
  };
  return cached(path, load);
}

export function neighbours(id, layer, head, { token, side, k, by, method, dim }) {
  const q = new URLSearchParams({ token, side, k, by, method, dim });
  const path = `${headPath(id, layer, head)}/neighbours?${q}`;
  return cached(path, () => json(path));
}

/** Attention inside one item: for one head ({tokens, attention: n×n}) or all heads of the layer. */
export function itemAttention(id, item, layer, head = null) {
  const q = new URLSearchParams({ layer });
  if (head !== null && head !== undefined) q.set("head", head);
  const path = `${atlasPath(id)}/items/${enc(item)}/attention?${q}`;
  return cached(path, () => json(path));
}

/**
 * Every head's statistics: {atlas, n, columns: {layer, head, kv_head, kind, label, <statistic>: [...]},
 * definitions: {<statistic>: {definition, unit}}, thresholds, distance_unit, sample}, one entry per head
 * layer by layer; ApiError 409 until the build or `qkatlas stats` computes them.
 */
export function stats(id) {
  return cached(`stats:${id}`, () => json(`${atlasPath(id)}/stats`));
}

/** The map of heads: {layers, heads, distance, method, fit, points: [{layer, head, x, y, kind, label, stats, nearest}]}; 409 as stats(). */
export function headMap(id, neighbours = 5) {
  const path = `${atlasPath(id)}/headmap?neighbours=${enc(neighbours)}`;
  return cached(path, () => json(path));
}

/** Where the statistics download as a file: format "csv" or "parquet" (the server names the file). */
export function statsFileUrl(id, format) {
  return `${BASE}${atlasPath(id)}/stats?format=${enc(format)}`;
}

/** What atlases a and b share: {a, b (each {id, model, label, corpus, items, modality, layers, heads, stats}), same_corpus, same_model, token_match}. */
export function comparison(a, b) {
  const path = `compare?${new URLSearchParams({ a, b })}`;
  return cached(path, () => json(path));
}

/** The tokens of atlas b that are token `token` of atlas a: {token, how, matches: [{token, text, item, position}]}; 422 when they cannot be matched. */
export function tokenMatches(a, b, token) {
  const path = `compare/tokens?${new URLSearchParams({ a, b, token })}`;
  return cached(path, () => json(path));
}

export function itemImageUrl(id, item) {
  return `${BASE}${atlasPath(id)}/items/${enc(item)}/image`;
}

export function patchImageUrl(id, item, position, size = 64) {
  return `${BASE}${atlasPath(id)}/items/${enc(item)}/patches/${enc(position)}/image?size=${enc(size)}`;
}

/**
 * A live request, sent again after Retry-After while the model or the layout's placement code
 * warms up (503: for up to `warmingS` seconds, a cold start compiles for minutes on a small
 * machine) or its queue is full (429: a few times); any other error at once.
 */
async function live(path, init, { busyAttempts = 5, warmingS = 300, onWait = null } = {}) {
  const start = performance.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await json(path, init);
    } catch (e) {
      if (!(e instanceof ApiError) || !e.retryAfter) throw e;
      const waited = (performance.now() - start) / 1000;
      if (e.status === 503 ? waited >= warmingS : attempt >= busyAttempts) throw e;
      onWait?.(e.detail, waited);
      await new Promise((resolve) => setTimeout(resolve, Math.min(e.retryAfter, 30) * 1000));
    }
  }
}

/**
 * Run the model on new text: body {atlas, text, layer, head, method, dim, scope} -> the attention
 * of the scope ("layer": [heads][n][n] of `layer`) and `points`: the text placed in that head's
 * method/dim layout, or null with `placement.error` saying why that layout cannot place new points.
 * `onWait(detail, seconds)` hears why the server said to come back (a model or placement warming up).
 */
export function attentionForText(body, onWait = null) {
  return live("attention", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  }, { onWait });
}

/** Run the model on an uploaded image (multipart); `where`: {layer, head, method, dim}, as for text. */
export function attentionForImage(atlasId, file, where, onWait = null) {
  const form = new FormData();
  form.set("atlas", atlasId);
  form.set("file", file);
  for (const [name, value] of Object.entries(where)) {
    if (value !== null && value !== undefined) form.set(name, value);
  }
  return live("attention/image", { method: "POST", body: form }, { onWait });
}
