"""How well distance between a head's queries and keys agrees with its attention (pure functions).

A query's attention is softmax over the keys it sees (its own item's; causal: up to its own
position) of q·k, so two things decide it: which keys, and their order by q·k. Anything added
to all of one query's scores is invisible to the softmax. The measure therefore works per query:

  attention_agreement   For a sample of queries, Spearman's rank correlation between
                        −distance(query, key) and q·k over the keys that query sees, averaged
                        over the queries. 1: every query's nearest keys are the ones it attends
                        to most, in order; 0: distance says nothing about attention. A rank
                        measure, because attention is monotone in q·k but far from linear.
  distance_dot_pearson  The check of issue 15 and of AttentionViz's paper (which reports −0.94 for
                        BERT): Pearson's correlation of distance with q·k over all those
                        (query, key) pairs pooled; −1 is perfect. Pooling mixes queries whose
                        scores differ by a constant the softmax ignores, so it is reported, not
                        optimised.

Points come as one cloud per side: `points_q`, `points_k` (tokens, dim), row t for token t, in the
joint space or a stored layout (whose rows are queries first, then keys).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AGREEMENT_MEASURES = ("attention_agreement", "distance_dot_pearson")  # as stored and served, in this order
MIN_KEYS = 3  # a rank correlation over fewer keys is ±1 or undefined
MAX_CELLS = 50_000  # (query, key) slots sampled per head: bounds memory (cells × dim floats) and time


@dataclass(frozen=True)
class Contexts:
    """Sampled queries and the keys each one sees.

    query: (rows,) token of each sampled query, ascending.
    keys:  (rows, width) tokens of the keys it sees, padded with its own token where mask is False.
    mask:  (rows, width) bool, True for a real key.
    """

    query: np.ndarray
    keys: np.ndarray
    mask: np.ndarray

    @property
    def pairs(self) -> int:
        return int(self.mask.sum())


def contexts(offsets: np.ndarray, causal: bool, max_cells: int = MAX_CELLS, seed: int = 0,
             min_keys: int = MIN_KEYS) -> Contexts:
    """The queries to score and the keys each sees. offsets (items + 1,): tokens of item i are
    rows offsets[i]:offsets[i+1]. Queries with fewer than `min_keys` keys are left out; beyond
    `max_cells` (rows × widest context) a seeded random sample of queries is kept."""
    offsets = np.asarray(offsets, dtype=np.int64)
    sizes = np.diff(offsets)
    item = np.repeat(np.arange(len(sizes)), sizes)
    start = offsets[item]
    token = np.arange(offsets[-1])
    seen = token - start + 1 if causal else sizes[item]
    eligible = token[seen >= min_keys]
    if len(eligible) == 0:
        empty = np.zeros((0, 1), dtype=np.int64)
        return Contexts(np.zeros(0, dtype=np.int64), empty, empty.astype(bool))
    rows = max(1, max_cells // int(seen[eligible].max()))
    if len(eligible) > rows:
        eligible = np.sort(np.random.default_rng(seed).choice(eligible, size=rows, replace=False))
    width = int(seen[eligible].max())
    slot = np.arange(width)
    mask = slot[None, :] < seen[eligible][:, None]
    keys = np.where(mask, start[eligible][:, None] + slot[None, :], eligible[:, None])
    return Contexts(eligible, keys, mask)


def scores(q: np.ndarray, k: np.ndarray, ctx: Contexts) -> np.ndarray:
    """(rows, width) float64 q·k of each sampled query with each key it sees (padding: its own key).
    q, k: (tokens, head_dim) raw vectors."""
    q = np.asarray(q, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    return np.einsum("rd,rwd->rw", q[ctx.query], k[ctx.keys])


def distances(points_q: np.ndarray, points_k: np.ndarray, ctx: Contexts) -> np.ndarray:
    """(rows, width) float64 Euclidean distance from each sampled query's point to each key's point,
    from differences (exact duplicates are exactly 0 apart)."""
    pq = np.asarray(points_q, dtype=np.float64)[ctx.query]
    pk = np.asarray(points_k, dtype=np.float64)[ctx.keys]
    return np.linalg.norm(pk - pq[:, None, :], axis=-1)


def masked_ranks(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Ranks (1 = smallest) of each row's entries where mask is True, ties sharing their average
    rank (as scipy.stats.rankdata, ~4x faster on these shapes); NaN elsewhere. x, mask: (rows, width)."""
    x = np.where(mask, x, np.inf)  # padding sorts last, after every real entry
    order = np.argsort(x, axis=1, kind="stable")
    xs = np.take_along_axis(x, order, axis=1)
    width = x.shape[1]
    slot = np.broadcast_to(np.arange(width), x.shape)
    starts = np.ones(x.shape, dtype=bool)
    starts[:, 1:] = xs[:, 1:] != xs[:, :-1]  # first of a run of equal values
    ends = np.ones(x.shape, dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, slot, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, slot, width - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty(x.shape)
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=1)
    return np.where(mask, ranks, np.nan)


def row_correlations(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(rows,) Pearson correlation of a and b along each row, over the entries where mask is True;
    NaN for a row where either is constant."""
    n = mask.sum(axis=1)
    a = np.where(mask, a, 0.0)
    b = np.where(mask, b, 0.0)
    da = np.where(mask, a - a.sum(1, keepdims=True) / n[:, None], 0.0)
    db = np.where(mask, b - b.sum(1, keepdims=True) / n[:, None], 0.0)
    den = np.sqrt((da * da).sum(1) * (db * db).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (da * db).sum(1) / np.where(den > 0, den, 1.0), np.nan)


def rank_agreement(dist: np.ndarray, score: np.ndarray, mask: np.ndarray,
                   score_ranks: np.ndarray | None = None) -> float:
    """Mean over rows of Spearman(−dist, score) over each row's masked entries; NaN rows (a
    constant row) left out; NaN when none is left. `score_ranks`: masked_ranks(score, mask), when
    many distances are scored against the same scores."""
    if score_ranks is None:
        score_ranks = masked_ranks(score, mask)
    rho = row_correlations(masked_ranks(-dist, mask), score_ranks, mask)
    rho = rho[np.isfinite(rho)]
    return float(rho.mean()) if len(rho) else float("nan")


def pooled_pearson(dist: np.ndarray, score: np.ndarray, mask: np.ndarray) -> float:
    """Pearson correlation of dist with score over every masked entry pooled; NaN if either is constant."""
    a, b = dist[mask], score[mask]
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def agreement(points_q: np.ndarray, points_k: np.ndarray, score: np.ndarray, ctx: Contexts) -> dict:
    """{"attention_agreement", "distance_dot_pearson"} of one head's points, rounded; a measure is
    left out where it is undefined (no query sees enough keys, or every distance is equal).
    score: `scores(q, k, ctx)` of the head's raw vectors."""
    dist = distances(points_q, points_k, ctx)
    values = (rank_agreement(dist, score, ctx.mask), pooled_pearson(dist, score, ctx.mask))
    return {name: round(float(v), 4) for name, v in zip(AGREEMENT_MEASURES, values) if np.isfinite(v)}


def layout_agreement(coords: np.ndarray, q: np.ndarray, k: np.ndarray, offsets: np.ndarray, causal: bool,
                     seed: int = 0) -> dict:
    """The agreement of a stored layout: coords (2 * tokens, dim), queries first then keys; q, k
    (tokens, head_dim) the head's raw vectors; offsets and causal as for `contexts`."""
    ctx = contexts(offsets, causal, seed=seed)
    tokens = len(q)
    return agreement(coords[:tokens], coords[tokens:], scores(q, k, ctx), ctx)

