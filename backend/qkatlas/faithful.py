"""The per-head key translation and q/k scale that make joint-space distance agree with attention.

Both are free: adding t to every key adds q·t to all of one query's scores (the softmax ignores
it), and q·s, k/s leave q·k unchanged. In the joint space (Q = s·q, K = (k + t)/s)

    |Q − K|² = (s²|q|² − 2 q·t)  +  |k + t|²/s²  −  2 q·k

The first term is the same for all of one query's keys, so a query's keys rank by distance as by
attention exactly when |k + t| is the same for every key it sees: when −t is the centre of a
sphere through them. `sphere_translation` fits that centre by least squares over the sampled
queries' contexts; a larger s shrinks what is left of the error.

The sphere's centre is not free of cost: a query's own offset s²|q|² − 2 q·t then varies more
from query to query (which the pooled measure of agreement.py sees), and a large s makes the
query cloud wide and the key cloud small. So the choice is a small search (`candidates`):
translations part of the way from raw (t = 0) to the sphere's centre, each with s = 1 and with
scales around the one that equalises mean norms (AttentionViz's rule). The winner has the highest
per-query rank agreement in the joint space among the candidates that are no worse than raw q/k
on every measure agreement.py reports, in the joint space and in its PCA plane (the 2-D layout
every atlas has), and no more split into two blobs, nor more lopsided, than raw q/k (or than
`MAX_SPLIT`, `MAX_IMBALANCE`). Raw q/k (t = 0, s = 1) stands where none is. Everything is scored
on the sample of (query, key) pairs the build reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .agreement import Contexts, masked_ranks, pooled_pearson, rank_agreement, scores

SHRINKS = (0.25, 0.5, 0.75, 1.0)  # how far t goes from raw (0) to the sphere's centre
SCALES = (0.9, 1.0, 1.1, 1.25, 1.6)  # multiples of the scale that equalises mean norms (s = 1 is tried too)
MAX_SPLIT = 0.25  # share of the joint cloud's variance that only separates queries from keys
MAX_IMBALANCE = 2.0  # ratio of the wider side's spread to the narrower's
RIDGE = 1e-3  # of the mean key variance: keeps the sphere's centre finite along flat directions


@dataclass(frozen=True)
class Scores:
    """One transform of one head, scored: rank (mean per-query Spearman, higher is better) and
    pearson (pooled distance–dot correlation, lower is better), each in the joint space and in its
    PCA plane; split (0..1) and imbalance (>= 1) say how far it is from one mixed cloud."""

    rank: float
    pearson: float
    pca_rank: float
    pca_pearson: float
    split: float
    imbalance: float

    def no_worse_than(self, raw: "Scores") -> bool:
        return (self.rank >= raw.rank and self.pearson <= raw.pearson and self.pca_rank >= raw.pca_rank
                and self.pca_pearson <= raw.pca_pearson and self.split <= max(raw.split, MAX_SPLIT)
                and self.imbalance <= max(raw.imbalance, MAX_IMBALANCE))


@dataclass(frozen=True)
class Choice:
    """A head's joint transform and how its joint space agrees with attention, beside raw q/k's.
    translation: (head_dim,) float32."""

    translation: np.ndarray
    scale: float
    scores: Scores | None  # None: no query sees enough keys to score
    raw: Scores | None


def sphere_translation(k: np.ndarray, ctx: Contexts) -> np.ndarray:
    """(head_dim,) the t that makes |k + t| most nearly equal over each sampled query's keys:
    least squares of |k|² on k within each context (centred per context), t = −coefficients / 2.

    A context is a run of tokens, so its sums come from prefix sums, and every key enters the
    normal equations weighted by how many sampled contexts hold it."""
    k = np.asarray(k, dtype=np.float64)
    b = (k * k).sum(axis=1)
    start, count = ctx.keys[:, 0], ctx.mask.sum(axis=1)
    stop = start + count
    weight = np.zeros(len(k) + 1)  # how many contexts hold each key, by a difference array
    np.add.at(weight, start, 1)
    np.add.at(weight, stop, -1)
    weight = np.cumsum(weight[:-1])
    prefix_k = np.concatenate([np.zeros((1, k.shape[1])), np.cumsum(k, axis=0)])
    prefix_b = np.concatenate([[0.0], np.cumsum(b)])
    sum_k = prefix_k[stop] - prefix_k[start]  # (rows, head_dim)
    sum_b = prefix_b[stop] - prefix_b[start]
    # sum over contexts of the centred cross-products: sum of x y over members less n·mean(x)·mean(y)
    G = (k * weight[:, None]).T @ k - (sum_k / count[:, None]).T @ sum_k
    h = (k * weight[:, None]).T @ b - (sum_k / count[:, None]).T @ sum_b
    ridge = RIDGE * max(np.trace(G), 1e-12) / len(G)
    return -np.linalg.solve(G + ridge * np.eye(len(G)), h) / 2


def equal_norm_scale(q: np.ndarray, k: np.ndarray, t: np.ndarray) -> float:
    """The s that gives s·q and (k + t)/s the same mean norm (AttentionViz's rule)."""
    qn = np.linalg.norm(q, axis=1).mean()
    kn = np.linalg.norm(k + t, axis=1).mean()
    return float(np.sqrt(kn / qn)) if qn > 0 and kn > 0 else 1.0


def candidates(q: np.ndarray, k: np.ndarray, ctx: Contexts) -> list[tuple[np.ndarray, float]]:
    """The (translation, scale) pairs the search scores, raw q/k (t = 0, s = 1) first."""
    sphere = sphere_translation(k, ctx)
    out = [(np.zeros(q.shape[1]), 1.0)]
    for shrink in SHRINKS:
        t = shrink * sphere
        s = equal_norm_scale(q, k, t)
        out += [(t, 1.0)] + [(t, s * m) for m in SCALES]
    return out


class _Head:
    """One head's vectors and sample, with what every candidate's score reuses."""

    def __init__(self, q: np.ndarray, k: np.ndarray, ctx: Contexts):
        self.q = np.asarray(q, dtype=np.float64)
        self.k = np.asarray(k, dtype=np.float64)
        self.ctx = ctx
        self.score = scores(self.q, self.k, ctx)  # (rows, width) q·k
        self.score_ranks = masked_ranks(self.score, ctx.mask)
        self.qs = self.q[ctx.query]  # (rows, head_dim)
        self.qs2 = (self.qs ** 2).sum(axis=1)[:, None]
        self.k2 = (self.k ** 2).sum(axis=1)[ctx.keys]
        self.mq, self.mk = self.q.mean(axis=0), self.k.mean(axis=0)
        self.cq = np.cov(self.q, rowvar=False, bias=True).reshape(len(self.mq), -1)
        self.ck = np.cov(self.k, rowvar=False, bias=True).reshape(len(self.mk), -1)

    def joint_d2(self, t: np.ndarray, s: float) -> np.ndarray:
        """(rows, width) squared joint distances by the expansion above (float64: no cancellation to fear)."""
        kt = (self.k @ t)[self.ctx.keys]
        d2 = s * s * self.qs2 + (self.k2 + 2 * kt + t @ t) / (s * s) - 2 * self.score - 2 * (self.qs @ t)[:, None]
        return np.maximum(d2, 0.0)

    def plane(self, t: np.ndarray, s: float) -> np.ndarray:
        """(head_dim, 2) the top two principal axes of the joint cloud (queries and keys together)."""
        between = s * self.mq - (self.mk + t) / s
        cov = (s * s * self.cq + self.ck / (s * s)) / 2 + np.outer(between, between) / 4
        return np.linalg.eigh(cov)[1][:, ::-1][:, :2]

    def pca_d2(self, t: np.ndarray, s: float) -> np.ndarray:
        P = self.plane(t, s)
        qp = s * self.qs @ P
        kp = ((self.k + t) / s @ P)[self.ctx.keys]
        return ((kp - qp[:, None, :]) ** 2).sum(axis=-1)

    def rank(self, d2: np.ndarray) -> float:
        return rank_agreement(d2, self.score, self.ctx.mask, self.score_ranks)  # d² ranks as d does

    def pearson(self, d2: np.ndarray) -> float:
        return pooled_pearson(np.sqrt(d2), self.score, self.ctx.mask)

    def shape(self, t: np.ndarray, s: float) -> tuple[float, float]:
        """(split, imbalance) of the joint cloud: the share of its variance that only separates the
        two sides' means, and how many times wider one side's spread is than the other's."""
        vq, vk = s * s * np.trace(self.cq), np.trace(self.ck) / (s * s)
        between = float(np.sum((s * self.mq - (self.mk + t) / s) ** 2)) / 4
        within = (vq + vk) / 2
        split = between / (between + within) if between + within > 0 else 0.0
        imbalance = float(np.sqrt(max(vq, vk) / min(vq, vk))) if min(vq, vk) > 0 else float("inf")
        return split, imbalance

    def scored(self, t: np.ndarray, s: float, rank: float | None = None) -> Scores:
        d2 = self.joint_d2(t, s)
        pd2 = self.pca_d2(t, s)
        return Scores(self.rank(d2) if rank is None else rank, self.pearson(d2), self.rank(pd2), self.pearson(pd2),
                      *self.shape(t, s))


def faithful_transform(q: np.ndarray, k: np.ndarray, ctx: Contexts) -> Choice:
    """q, k: (tokens, head_dim) one head's raw vectors; ctx: the sample to score on.

    Cheap checks first (pooled Pearson, split, imbalance: no ranking, no PCA), then the rank
    agreement of the survivors, then the PCA plane of the best of them until one passes.
    """
    zero = np.zeros(q.shape[1], dtype=np.float32)
    if len(ctx.query) == 0:
        return Choice(zero, 1.0, None, None)
    head = _Head(q, k, ctx)
    cands = candidates(head.q, head.k, ctx)
    raw = head.scored(*cands[0])
    if not np.isfinite(raw.rank):
        return Choice(zero, 1.0, raw, raw)
    ranked = []
    for t, s in cands[1:]:
        d2 = head.joint_d2(t, s)
        split, imbalance = head.shape(t, s)
        if (head.pearson(d2) <= raw.pearson and split <= max(raw.split, MAX_SPLIT)
                and imbalance <= max(raw.imbalance, MAX_IMBALANCE)):
            rank = head.rank(d2)
            if rank > raw.rank:
                ranked.append((rank, t, s))
    for rank, t, s in sorted(ranked, key=lambda c: -c[0]):
        got = head.scored(t, s, rank=rank)
        if got.no_worse_than(raw):
            return Choice(t.astype(np.float32), float(s), got, raw)
    return Choice(zero, 1.0, raw, raw)


def scored_choice(q: np.ndarray, k: np.ndarray, ctx: Contexts, t: np.ndarray, s: float) -> Choice:
    """A given transform (another rule's) as a Choice, scored beside raw q/k."""
    t = np.asarray(t, dtype=np.float32)
    if len(ctx.query) == 0:
        return Choice(t, float(s), None, None)
    head = _Head(q, k, ctx)
    return Choice(t, float(s), head.scored(t.astype(np.float64), float(s)), head.scored(np.zeros(len(t)), 1.0))
