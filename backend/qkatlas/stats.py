"""Per-head statistics: what each head does, as numbers computed from its stored queries and keys.

Pure functions on numpy arrays (no torch, no files). A layer's statistics are sums over items:
each item's attention is rebuilt from its q/k (`item_attention`, the same rebuild the API
serves), every statistic adds one number per query row of every head, and the layer's value
is the mean over the rows that count. docs/stats.md gives the definitions and the label rules.

Shapes: q, k (tokens, heads, head_dim) of one layer, tokens stored item by item in position
order; one item's attention (heads, n, n), row i the query of position i.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import entr

from .joint import softmax

VERSION = 2  # bumped when a definition or label rule changes: stats of an older version are recomputed

# name -> (definition for people, unit). The order is the columns' order in every export.
DEFINITIONS: dict[str, tuple[str, str]] = {
    "entropy": ("mean over queries of the attention row's entropy divided by the log of the number of keys the "
                "query can see (causal rows see fewer keys); 1 = uniform, 0 = all on one key; queries that see "
                "one key are left out", "fraction"),
    "distance": ("mean attention distance: over ordinary (non-special) queries, the attention-weighted distance "
                 "to ordinary keys, the weights renormalised over those keys; tokens apart for text, patches apart "
                 "(Euclidean on the grid) for images", "tokens or patches"),
    "special": ("mean over queries of the attention on special tokens ([CLS], [SEP], BOS, registers)", "fraction"),
    "first": ("mean over queries after the first of the attention on the item's first token (attention sink)",
              "fraction"),
    "previous": ("mean over queries with a previous token of the attention on offset -1", "fraction"),
    "self": ("mean over queries of the attention on their own token (offset 0)", "fraction"),
    "next": ("mean over queries with a next token of the attention on offset +1; null for causal models, which "
             "cannot see it", "fraction"),
    "induction": ("on sequences of random tokens repeated twice, mean attention from each token of the second copy "
                  "to the token after its earlier occurrence; causal models only, else null", "fraction"),
    "positional": ("share of the variance of the scores q·k × scaling (each query's scores centred, as the softmax "
                   "ignores a per-query shift) explained by the (query position, key position) pair alone, "
                   "adjusted for the number of groups (epsilon squared)", "fraction"),
    "token": ("the same share explained by the key's token text alone (token identity); null for images, whose "
              "patch texts are positions", "fraction"),
}
STATISTICS = tuple(DEFINITIONS)

# Label rules, checked in this order; the first that holds names the head (docs/stats.md).
THRESHOLDS = {
    "induction": 0.3,
    "previous": 0.5,
    "next": 0.5,
    "self": 0.5,
    "first": 0.5,
    "special": 0.5,
    # a near-uniform head before positional: its scores barely move its attention, whatever explains them
    "broad": 0.9,  # entropy
    "positional": 0.5,
    "local": 1.5,  # mean distance in tokens or patches (at most)
}
KINDS = ("induction", "previous-token", "next-token", "self", "sink", "special", "broad", "positional", "local",
         "content")  # the labels' rules, in the order they are checked
OFFSET_NAMES = {"previous": "\u22121", "self": "0", "next": "+1"}


@dataclass(frozen=True)
class Tokens:
    """The token table's columns the statistics read, each (tokens,), rows item by item."""

    position: np.ndarray  # int, 0..n-1 within its item
    special: np.ndarray  # bool
    row: np.ndarray  # int: patch row, -1 for text and prefix tokens
    col: np.ndarray  # int: patch column, -1 likewise
    token_id: np.ndarray  # int: the token's text as an index into the atlas's distinct texts


@dataclass(frozen=True)
class Batch:
    """B items of one length n and one pattern of special tokens, which the statistics take at once."""

    items: np.ndarray  # (B,) item indices
    position: np.ndarray  # (n,)
    special: np.ndarray  # (n,)
    row: np.ndarray  # (n,)
    col: np.ndarray  # (n,)
    token_id: np.ndarray  # (B, n)


def item_batches(tokens: Tokens, offsets: np.ndarray, items: np.ndarray, heads: int,
                 max_entries: int = 2_000_000) -> list[Batch]:
    """`items` grouped by length and special-token pattern, in chunks of at most `max_entries`
    attention entries (B · heads · n²) so a batch's float64 arrays stay small."""
    groups: dict[tuple, list[int]] = {}
    for i in items:
        a, b = int(offsets[i]), int(offsets[i + 1])
        groups.setdefault((b - a, tokens.special[a:b].tobytes()), []).append(int(i))
    out = []
    for (n, _), members in groups.items():
        size = max(1, max_entries // max(heads * n * n, 1))
        for c in range(0, len(members), size):
            chunk = np.array(members[c:c + size])
            a = int(offsets[chunk[0]])
            rows = offsets[chunk][:, None] + np.arange(n)
            out.append(Batch(chunk, tokens.position[a:a + n], tokens.special[a:a + n], tokens.row[a:a + n],
                             tokens.col[a:a + n], tokens.token_id[rows]))
    return out


def gather(x: np.ndarray, offsets: np.ndarray, batch: Batch) -> np.ndarray:
    """x (tokens, ...) -> (B, n, ...): the rows of the batch's items."""
    n = len(batch.position)
    return x[offsets[batch.items][:, None] + np.arange(n)]


def visible(n: int, causal: bool) -> np.ndarray:
    """(n, n) bool: which keys each query can see."""
    return np.tril(np.ones((n, n), dtype=bool)) if causal else np.ones((n, n), dtype=bool)


def batch_scores(q: np.ndarray, k: np.ndarray, scaling: float) -> np.ndarray:
    """q, k (B, n, heads, head_dim) -> (B, heads, n, n) float64: q·k × scaling, what the softmax sees."""
    # contiguous stacks: numpy multiplies strided ones without BLAS, thirty times slower
    q = np.ascontiguousarray(np.asarray(q, dtype=np.float64).transpose(0, 2, 1, 3))  # (B, heads, n, head_dim)
    k = np.ascontiguousarray(np.asarray(k, dtype=np.float64).transpose(0, 2, 3, 1))  # (B, heads, head_dim, n)
    return (q @ k) * scaling


def batch_attention(scores: np.ndarray, causal: bool) -> np.ndarray:
    """(B, heads, n, n) scores -> attention, as joint.attention rebuilds it for one item and head."""
    return softmax(np.where(visible(scores.shape[-1], causal), scores, -np.inf), axis=-1)


# ---- a batch's contribution to each statistic: (sums (heads,), rows counted) ---------------
# att: (B, heads, n, n), the attention of B items of one length.


def _per_head(x: np.ndarray) -> np.ndarray:
    """(B, heads, ...) -> (heads,): summed over everything but the heads."""
    return x.sum(axis=(0, *range(2, x.ndim)))


def entropy_terms(att: np.ndarray, causal: bool) -> tuple[np.ndarray, int]:
    """Σ over queries of H(row) / log(keys the row sees), for rows that see at least two keys."""
    n = att.shape[-1]
    seen = np.arange(1, n + 1) if causal else np.full(n, n)
    rows = seen >= 2
    h = entr(att[..., rows, :]).sum(axis=-1) / np.log(seen[rows])
    return _per_head(h), len(att) * int(rows.sum())


def token_distances(batch: Batch) -> np.ndarray:
    """(n, n): tokens apart for text, Euclidean patches apart for image patches."""
    if (batch.row >= 0).any():  # an image: its patches have grid places (prefix tokens have none)
        return np.hypot(batch.row[:, None] - batch.row[None, :], batch.col[:, None] - batch.col[None, :])
    return np.abs(batch.position[:, None] - batch.position[None, :]).astype(np.float64)


def distance_terms(att: np.ndarray, batch: Batch) -> tuple[np.ndarray, int]:
    """Σ over ordinary queries of the distance to ordinary keys, weighted by attention renormalised over them."""
    ordinary = ~batch.special
    a = att[..., ordinary, :][..., ordinary]  # (B, heads, ordinary queries, ordinary keys)
    mass = a.sum(axis=-1)
    d = (a * token_distances(batch)[np.ix_(ordinary, ordinary)]).sum(axis=-1)
    # A row whose ordinary keys got no attention at all (underflow) counts as distance 0, so the
    # same rows count for every head.
    per_row = np.divide(d, mass, out=np.zeros_like(d), where=mass > 0)
    return _per_head(per_row), len(att) * int(ordinary.sum())


def special_terms(att: np.ndarray, batch: Batch) -> tuple[np.ndarray, int]:
    """Σ over queries of the attention on special tokens."""
    return _per_head(att[..., batch.special]), len(att) * att.shape[-1]


def first_terms(att: np.ndarray) -> tuple[np.ndarray, int]:
    """Σ over queries after the first of the attention on the first token."""
    return _per_head(att[..., 1:, 0]), len(att) * (att.shape[-1] - 1)


def offset_terms(att: np.ndarray, offset: int) -> tuple[np.ndarray, int]:
    """Σ over queries i with a key at i + offset of the attention on it."""
    diagonal = np.diagonal(att, offset, axis1=-2, axis2=-1)  # (B, heads, n - |offset|)
    return _per_head(diagonal), len(att) * diagonal.shape[-1]


def induction_scores(att: np.ndarray, period: int, start: int = 0) -> np.ndarray:
    """att (heads, n, n) of one sequence holding random tokens x repeated: x at start..start+period-1
    and again at start+period..start+2*period-1 -> (heads,): mean attention from each query p of
    the second copy to p - period + 1, the token after the earlier occurrence of p's token."""
    p = np.arange(start + period, start + 2 * period)
    return att[:, p, p - period + 1].mean(axis=-1)


# ---- explained variance --------------------------------------------------------------------


class GroupedVariance:
    """Running sums for the share of variance that a grouping explains, for every head at once.

    Epsilon squared: (SS_between - (G - 1) · SS_within / (N - G)) / SS_total, which corrects the
    plain ratio's upward bias (G groups of pure noise explain about (G - 1) / (N - 1)).
    """

    def __init__(self, heads: int, groups: int):
        self.count = np.zeros(groups, dtype=np.float64)
        self.sums = np.zeros((heads, groups), dtype=np.float64)
        self.squares = np.zeros(heads, dtype=np.float64)

    def add(self, values: np.ndarray, groups: np.ndarray) -> None:
        """values (heads, m), groups (m,) int in 0..groups-1."""
        self.count += np.bincount(groups, minlength=len(self.count))
        for h, v in enumerate(values):
            self.sums[h] += np.bincount(groups, weights=v, minlength=len(self.count))
        self.squares += (values ** 2).sum(axis=-1)

    def share(self) -> np.ndarray:
        """(heads,) in [0, 1]; NaN where there is no variance to explain."""
        used = self.count > 0
        n, g = self.count.sum(), int(used.sum())
        total = self.sums.sum(axis=-1)
        ss_total = self.squares - total ** 2 / max(n, 1)
        ss_between = (self.sums[:, used] ** 2 / self.count[used]).sum(axis=-1) - total ** 2 / max(n, 1)
        ss_within = ss_total - ss_between
        adjusted = ss_between - (g - 1) * ss_within / max(n - g, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(ss_total > 1e-12 * max(n, 1), adjusted / ss_total, np.nan)
        return np.clip(share, 0.0, 1.0)


def centred_scores(scores: np.ndarray, causal: bool) -> tuple[np.ndarray, np.ndarray]:
    """scores (B, heads, n, n) -> (values (heads, B · m), mask (n, n) of the m pairs kept): each
    query's visible scores less their mean, for rows that see at least two keys; the softmax is
    blind to a per-query shift, so it is removed."""
    n = scores.shape[-1]
    mask = visible(n, causal)
    mask[mask.sum(axis=1) < 2] = False
    seen = np.maximum(mask.sum(axis=1), 1)
    means = np.where(mask, scores, 0.0).sum(axis=-1) / seen
    values = (scores - means[..., None])[..., mask]  # (B, heads, m)
    return values.transpose(1, 0, 2).reshape(scores.shape[1], -1), mask


# ---- a layer -------------------------------------------------------------------------------


class LayerTally:
    """Every statistic of one layer's heads, summed batch by batch (`add`), averaged by `result`."""

    def __init__(self, heads: int, causal: bool, positions: int, token_ids: int | None):
        self.causal = causal
        self.positions = positions
        self.sums = {name: np.zeros(heads) for name in STATISTICS if name not in ("induction", "positional", "token")}
        self.rows = dict.fromkeys(self.sums, 0)
        self.positional = GroupedVariance(heads, positions * positions)
        self.token = None if token_ids is None else GroupedVariance(heads, token_ids)

    def _tally(self, name: str, terms: tuple[np.ndarray, int]) -> None:
        self.sums[name] += terms[0]
        self.rows[name] += terms[1]

    def add(self, q: np.ndarray, k: np.ndarray, scaling: float, batch: Batch) -> np.ndarray:
        """One batch: q, k (B, n, heads, head_dim). Returns its attention (B, heads, n, n)."""
        scores = batch_scores(q, k, scaling)
        att = batch_attention(scores, self.causal)
        self._tally("entropy", entropy_terms(att, self.causal))
        self._tally("distance", distance_terms(att, batch))
        self._tally("special", special_terms(att, batch))
        self._tally("first", first_terms(att))
        self._tally("previous", offset_terms(att, -1))
        self._tally("self", offset_terms(att, 0))
        if not self.causal:
            self._tally("next", offset_terms(att, 1))
        values, mask = centred_scores(scores, self.causal)
        qpos, kpos = np.nonzero(mask)
        pairs = batch.position[qpos] * self.positions + batch.position[kpos]
        self.positional.add(values, np.tile(pairs, len(q)))
        if self.token is not None:
            self.token.add(values, batch.token_id[:, kpos].reshape(-1))
        return att

    def result(self) -> dict[str, np.ndarray]:
        """statistic -> (heads,) float64; NaN where no row counted (a statistic that does not apply)."""
        out = {name: self.sums[name] / self.rows[name] if self.rows[name] else np.full_like(self.sums[name], np.nan)
               for name in self.sums}
        out["positional"] = self.positional.share()
        out["token"] = self.token.share() if self.token is not None else np.full_like(out["entropy"], np.nan)
        return out


def layer_statistics(q: np.ndarray, k: np.ndarray, scaling: float, causal: bool, offsets: np.ndarray,
                     tokens: Tokens, token_ids: int | None,
                     on_attention: Callable[[Batch, np.ndarray], None] | None = None) -> dict[str, np.ndarray]:
    """q, k (tokens, heads, head_dim) of one layer, item i in rows offsets[i]:offsets[i+1] ->
    statistic -> (heads,), over every item. Induction is measured apart (it needs its own input).

    `on_attention(batch, att)` sees each batch's attention (B, heads, n, n) once it is counted.
    """
    heads = q.shape[1]
    tally = LayerTally(heads, causal, int(tokens.position.max()) + 1, token_ids)
    for batch in item_batches(tokens, offsets, np.arange(len(offsets) - 1), heads):
        att = tally.add(gather(q, offsets, batch), gather(k, offsets, batch), scaling, batch)
        if on_attention is not None:
            on_attention(batch, att)
    return tally.result()


def sample_items(lengths: np.ndarray, max_pairs: int) -> np.ndarray:
    """Indices of an even sample of items whose attention holds at most `max_pairs` entries
    (Σ n²; at least one item): every s-th item for the smallest stride s that fits."""
    lengths = np.asarray(lengths, dtype=np.int64)
    for stride in range(1, len(lengths) + 1):
        chosen = np.arange(0, len(lengths), stride)
        if (lengths[chosen] ** 2).sum() <= max_pairs or len(chosen) == 1:
            return chosen
    return np.arange(0)


# ---- labels --------------------------------------------------------------------------------


def _value(stats: dict, name: str) -> float | None:
    v = stats.get(name)
    return None if v is None or not np.isfinite(v) else float(v)


def label(stats: dict[str, float | None], unit: str = "tokens") -> tuple[str, str]:
    """(kind, one line with the numbers behind it) for one head, by the first rule of THRESHOLDS that holds.

    `unit` names what `distance` counts ("tokens" or "patches").
    """
    v = {name: _value(stats, name) for name in STATISTICS}
    t = THRESHOLDS

    def over(name, key=None):
        return v[name] is not None and v[name] >= t[key or name]

    if over("induction"):
        return "induction", f"induction ({v['induction']:.2f})"
    for name, kind in (("previous", "previous-token"), ("next", "next-token"), ("self", "self")):
        if over(name):
            return kind, f"{kind} (offset {OFFSET_NAMES[name]}: {v[name]:.2f})"
    if over("first"):
        return "sink", f"attention sink (first token {v['first']:.2f})"
    if over("special"):
        return "special", f"special tokens ({v['special']:.2f})"
    if over("entropy", "broad"):
        return "broad", f"broad / uniform (entropy {v['entropy']:.2f})"
    if over("positional"):
        return "positional", f"positional ({v['positional']:.2f} of score variance)"
    if v["distance"] is not None and v["distance"] <= t["local"]:
        return "local", f"local (mean distance {v['distance']:.1f} {unit})"
    return "content", f"content (positional {v['positional'] or 0:.2f}, entropy {v['entropy'] or 0:.2f})"

