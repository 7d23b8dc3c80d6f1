// What the URL's overlay fields do to a set of heads, as pure functions over the statistics
// (headstats.js): `sort` orders heads ("entropy" ascending, "-entropy" descending, "" by
// index), `kind` keeps one label kind and `where` ("entropy>=0.9", "distance<=1.5") one side
// of a threshold, the rest dimmed; `tint` colours heads by a statistic. The matrix, the map of
// heads and the statistics table read them alike.

const WHERE = /^([a-z_]+)(>=|<=)(-?\d+(?:\.\d+)?)$/;

/** "-entropy" -> {name: "entropy", desc: true}; "" or a name the atlas lacks -> null. */
export function parseSort(sort, stats) {
  if (!sort) return null;
  const desc = sort.startsWith("-");
  const name = desc ? sort.slice(1) : sort;
  return stats?.has(name) ? { name, desc } : null;
}

/** "entropy>=0.9" -> {name, op, value}; anything else (or a statistic the atlas lacks) -> null. */
export function parseWhere(where, stats) {
  const m = WHERE.exec(where || "");
  return m && stats?.has(m[1]) ? { name: m[1], op: m[2], value: Number(m[3]) } : null;
}

/** The URL value of a threshold. */
export function whereText(name, op, value) {
  return `${name}${op}${value}`;
}

/**
 * Which heads the filter keeps, as a predicate of the statistics row i: the label kind `kind`
 * (when given) and the threshold `where` (when given); a head whose statistic does not apply
 * (null) fails a threshold. null when nothing is filtered.
 */
export function keeper(stats, { kind = "", where = "" } = {}) {
  const w = parseWhere(where, stats);
  if (!kind && !w) return null;
  return (i) => {
    if (kind && stats.columns.kind[i] !== kind) return false;
    if (!w) return true;
    const v = stats.value(w.name, i);
    return v !== null && (w.op === ">=" ? v >= w.value : v <= w.value);
  };
}

/** Compare rows i and j by statistic `name`: nulls last whatever the direction, ties by row. */
function byStat(stats, { name, desc }) {
  return (i, j) => {
    const a = stats.value(name, i);
    const b = stats.value(name, j);
    if (a === null || b === null) return a === null && b === null ? i - j : a === null ? 1 : -1;
    return a === b ? i - j : (desc ? b - a : a - b);
  };
}

/** The statistics rows in the order `sort` names (the API's layer-by-layer order without it). */
export function sortedRows(stats, sort) {
  const rows = Array.from({ length: stats.n }, (_, i) => i);
  const s = parseSort(sort, stats);
  return s ? rows.sort(byStat(stats, s)) : rows;
}

/**
 * Where each head of a layers x heads matrix goes when the heads of every layer are ordered by
 * `sort`: Int32Array(layers * heads), cell (layer * heads + head) -> its column. Heads without
 * statistics keep their place after the sorted ones.
 */
export function columnsOf(stats, sort, layers, heads) {
  const columns = new Int32Array(layers * heads);
  const s = parseSort(sort, stats);
  for (let layer = 0; layer < layers; layer++) {
    const order = Array.from({ length: heads }, (_, head) => head);
    if (s) {
      const cmp = byStat(stats, s);
      const row = (head) => stats.rowOf(layer, head);
      order.sort((a, b) => {
        const ra = row(a);
        const rb = row(b);
        if (ra < 0 || rb < 0) return ra < 0 && rb < 0 ? a - b : ra < 0 ? 1 : -1;
        return cmp(ra, rb);
      });
    }
    order.forEach((head, column) => (columns[layer * heads + head] = column));
  }
  return columns;
}

/** The inverse of columnsOf: cell (layer * heads + column) -> the head drawn there. */
export function headsAt(columns, heads) {
  const out = new Int32Array(columns.length);
  columns.forEach((column, cell) => (out[cell - (cell % heads) + column] = cell % heads));
  return out;
}
