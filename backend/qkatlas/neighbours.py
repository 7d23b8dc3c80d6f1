"""Exact neighbours of one point of a head: by attention score, joint distance or projected distance.

Pure functions on numpy arrays, used by the API. Exact (every point is scored, no index):
one matrix-vector product plus an argpartition is a millisecond for a 20k-point head.
Ties are broken by the lower row, so an answer is the same as a full stable sort.

A head's points are `2 * tokens` rows, queries then keys; a point is named (token, side) with
side "query" or "key", and a neighbour is (token, side, score).

Causal models: a query never sees the later keys of its own item, so ranking by attention
leaves those out (`causal_hidden`). Keys of other items are ranked by the score the softmax
would give them if they were in the query's context: no forward pass puts them there, but
that score is what "this query looks for" means across a corpus.
"""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int, largest: bool = True) -> np.ndarray:
    """Rows of the k best `scores` (n,), best first; equal scores in row order (a stable full sort)."""
    key = -scores if largest else scores
    n = len(key)
    k = max(0, min(k, n))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    if k < n:
        kth = key[np.argpartition(key, k - 1)[:k]].max()
        candidates = np.flatnonzero(key <= kth)  # every row tied with the k-th is a candidate
    else:
        candidates = np.arange(n)
    return candidates[np.lexsort((candidates, key[candidates]))[:k]]


def attention_scores(x: np.ndarray, others: np.ndarray, scaling: float) -> np.ndarray:
    """x (head_dim,), others (n, head_dim) -> (n,) the scaled dot products the softmax sees."""
    return (others @ x) * np.float32(scaling)


def by_attention(x: np.ndarray, others: np.ndarray, scaling: float, k: int,
                 hidden: range = range(0)) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of `others` that `x` scores highest, rows in `hidden` left out: (rows, scores),
    highest first.

    For a query, `others` are every key of the corpus; for a key, every query.
    """
    scores = attention_scores(x, others, scaling)
    scores[hidden.start:hidden.stop] = -np.inf  # ranked last, and cut off below
    rows = top_k(scores, min(k, len(scores) - len(hidden)), largest=True)
    return rows, scores[rows]


def causal_hidden(token: int, side: str, item_start: int, item_stop: int) -> range:
    """The rows a causal mask hides from `token`'s query or key; its item holds the token rows
    item_start..item_stop-1, in position order (as the store keeps them).

    A query sees the keys of its own item up to its own position, so the later ones are hidden;
    a key is seen by the queries from its own position on, so the earlier ones are hidden.
    """
    if not item_start <= token < item_stop:
        raise ValueError(f"token {token} is not in its item's rows {item_start}..{item_stop - 1}")
    return range(token + 1, item_stop) if side == "query" else range(item_start, token)


def distances(X: np.ndarray, row: int) -> np.ndarray:
    """(n,) Euclidean distance from point `row` of X (n, d) to every point of X.

    Computed from differences, not |a|²-2a·b+|b|²: that form cancels badly for close points,
    and close points are exactly the ones asked for.
    """
    diff = X - X[row]
    return np.sqrt(np.einsum("ij,ij->i", diff, diff))


def nearest(X: np.ndarray, row: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k points of X (n, d) nearest to point `row`, itself excluded: (rows, distances), nearest first."""
    d = distances(X, row)
    d[row] = np.inf
    rows = top_k(d, min(k, len(X) - 1), largest=False)
    return rows, d[rows]


Found = list[tuple[int, str, float]]


def attention_neighbours(q: np.ndarray, k: np.ndarray, scaling: float, token: int, side: str, count: int,
                         hidden: range = range(0)) -> Found:
    """q, k (tokens, head_dim): for a query, the `count` keys it scores highest; for a key, the
    queries scoring it highest; rows in `hidden` (`causal_hidden`) left out.
    [(token, side, q·k × scaling)], highest first."""
    x, others, other = (q[token], k, "key") if side == "query" else (k[token], q, "query")
    rows, scores = by_attention(x, others, scaling, count, hidden)
    return [(int(r), other, float(s)) for r, s in zip(rows, scores)]


def distance_neighbours(points: np.ndarray, token: int, side: str, count: int) -> Found:
    """points (2 * tokens, d), queries then keys: the `count` points of either side nearest to
    `token`'s `side`, itself excluded. [(token, side, distance)], nearest first."""
    n = len(points) // 2
    rows, dist = nearest(points, token if side == "query" else n + token, count)
    return [(int(r) % n, "query" if r < n else "key", float(d)) for r, d in zip(rows, dist)]
