"""How well a projection keeps each point's neighbours (pure functions).

For a fixed random sample of points, each one's distances to every point are taken in the
joint space X and in the projection Y, both from differences (never |a|² - 2a·b + |b|², which
in float32 cancels inside tight clusters and picks wrong neighbours there).

Ties must not decide a score: layer 0 of a text model holds thousands of exact duplicates.
So every point as close as the k-th nearest in X counts as a true neighbour, and points tied
at the k-th projected distance share the places left, each counting as a fraction: the score
is its expected value over every way of breaking the ties.

knn_recall@k: the share of a point's k projected neighbours that are true neighbours.
trustworthiness@k: Venna & Kaski's measure (scikit-learn's formula), penalising each projected
neighbour by how far beyond k it ranks in X; neighbours are among all points, as for recall.
"""

from __future__ import annotations

import numpy as np

_BLOCK_VALUES = 1 << 22  # distances per block of sample rows: ~16 MB of float32


def sample_indices(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, size), replace=False))


def distances(points: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(len(idx), n) Euclidean distances from points[idx] to every one of `points` (n, d),
    computed from differences: exact duplicates are exactly 0 apart."""
    import torch

    P = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
    D = torch.cdist(P[torch.as_tensor(idx)], P, compute_mode="donot_use_mm_for_euclid_dist")
    return D.numpy()


def _scores(dX: np.ndarray, dY: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row (one sample point, itself set to inf): (recall, trustworthiness penalty).

    dX, dY: (rows, n) distances in the joint space and the projection.
    """
    sX = np.sort(dX, axis=1)
    true = dX <= sX[:, k - 1:k]  # as close as the k-th nearest: ties all count
    rY = np.partition(dY, k - 1, axis=1)[:, k - 1:k]
    inside, tied = dY < rY, dY == rY
    # The k projected places: every point strictly inside, the rest shared by those tied at rY.
    share = (k - inside.sum(1, keepdims=True)) / tied.sum(1, keepdims=True)
    weight = inside + tied * share
    recall = (weight * true).sum(1) / k
    false = (weight > 0) & ~true
    penalty = np.zeros(len(dX))
    for row in np.flatnonzero(false.any(1)):
        cols = np.flatnonzero(false[row])
        # A rank in X counts only the points strictly closer, so tied points rank as close as they can.
        rank = np.searchsorted(sX[row], dX[row, cols], side="left") + 1
        penalty[row] = weight[row, cols] @ (rank - k)
    return recall, penalty


def neighbourhood_scores(X: np.ndarray, Y: np.ndarray, k: int, sample: np.ndarray) -> tuple[float, float]:
    """(knn_recall@k, trustworthiness@k) of the projection Y (n, low_dim) of X (n, high_dim),
    averaged over the points `sample`; neighbours among all n points."""
    n = len(X)
    rows = max(1, _BLOCK_VALUES // n)
    recall, penalty = [], []
    for start in range(0, len(sample), rows):
        idx = sample[start:start + rows]
        dX, dY = distances(X, idx), distances(Y, idx)
        self_cols = (np.arange(len(idx)), idx)
        dX[self_cols] = dY[self_cols] = np.inf
        r, p = _scores(dX, dY, k)
        recall.append(r)
        penalty.append(p)
    norm = k * (2 * n - 3 * k - 1) / 2  # the largest penalty a point can get; needs k < n / 2
    trust = 1.0 - np.concatenate(penalty).mean() / norm if norm > 0 else float("nan")
    return float(np.concatenate(recall).mean()), float(trust)


def knn_recall(X: np.ndarray, Y: np.ndarray, k: int = 10, sample: np.ndarray | None = None) -> float:
    """X: (points, high_dim), Y: (points, low_dim); neighbours among all points, for `sample` (default all)."""
    idx = np.arange(len(X)) if sample is None else np.asarray(sample)
    return neighbourhood_scores(X, Y, min(k, len(X) - 1), idx)[0]


def projection_quality(X: np.ndarray, Y: np.ndarray, k: int = 10, sample_size: int = 500, seed: int = 0) -> dict:
    """The scores stored with every projection: X (points, high_dim), Y (points, low_dim)."""
    n = len(X)
    k = max(1, min(k, n // 2 - 1))  # trustworthiness is defined for k < n / 2
    sample = sample_indices(n, sample_size, seed)
    recall, trust = neighbourhood_scores(X, Y, k, sample)
    return {f"knn_recall@{k}": round(recall, 4), f"trustworthiness@{k}": round(trust, 4), "sample": int(len(sample))}
