// Grouped-query attention (SmolLM2, Llama, ...): several query heads share one key/value head.
// The atlas summary says how many key/value heads a layer has (`kv_heads`), head info which
// one a query head shares (`kv_head`) and with whom (`kv_group`). Missing fields, or as many
// key/value heads as query heads, mean no grouping, as in the atlases built before them.

/** How many key/value heads the atlas's layers have: its `heads` when there is no grouping. */
export function kvHeads(atlas) {
  const kv = atlas?.kv_heads;
  const ok = Number.isInteger(kv) && kv > 0 && kv < atlas.heads && atlas.heads % kv === 0;
  return ok ? kv : atlas.heads;
}

const grouped = (atlas) => kvHeads(atlas) < atlas.heads;

/**
 * The matrix's column groups, one per key/value head: [{kv, first, last}] (query heads
 * first..last), consecutive as transformers' repeat_kv orders them; [] without grouping.
 */
export function kvColumns(atlas) {
  if (!grouped(atlas)) return [];
  const n = kvHeads(atlas);
  const size = atlas.heads / n;
  return Array.from({ length: n }, (_, kv) => ({ kv, first: kv * size, last: kv * size + size - 1 }));
}

/** The query heads whose column starts a new key/value group (head 0 left out). */
export function kvEdges(atlas) {
  return new Set(kvColumns(atlas).map((g) => g.first).filter((first) => first > 0));
}

/**
 * What head info says about one query head's key/value head: {kv, of, others: [query heads
 * that share it, this one left out]}, or null when the atlas has no grouping or the server
 * does not say.
 */
export function kvShare(atlas, info) {
  if (!grouped(atlas) || !Number.isInteger(info?.kv_head) || !Array.isArray(info?.kv_group)) return null;
  return { kv: info.kv_head, of: kvHeads(atlas), others: info.kv_group.filter((h) => h !== info.head) };
}
