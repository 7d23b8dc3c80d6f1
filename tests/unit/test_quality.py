"""Quality scores of a projection: exact distances, and ties that never decide the score."""

import numpy as np
import pytest
from sklearn.manifold import trustworthiness

from qkatlas.reduce.quality import distances, knn_recall, neighbourhood_scores, projection_quality


def _clusters(n=300, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, d)) * 10
    return (centres[rng.integers(0, 5, n)] + rng.normal(size=(n, d))).astype(np.float32)


def _expanded_nearest(P: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """The old way: |a|² - 2a·b + |b|² in float32 (kept here to show what it gets wrong)."""
    Q = P[idx]
    d = (Q * Q).sum(1)[:, None] - 2.0 * Q @ P.T + (P * P).sum(1)[None, :]
    d[np.arange(len(idx)), idx] = np.inf
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def test_knn_recall_is_one_for_an_isometry_and_low_for_noise():
    X = np.random.default_rng(0).normal(size=(200, 2))
    R = np.array([[0.0, -1.0], [1.0, 0.0]])
    assert knn_recall(X, X @ R * 3.0 + 5.0, k=10) == 1.0  # rotation, scale, shift keep neighbours
    noise = np.random.default_rng(1).normal(size=(200, 2))
    assert knn_recall(X, noise, k=10) < 0.2


def test_knn_recall_by_hand_on_a_line():
    X = np.arange(6, dtype=float)[:, None]  # neighbours of 0 are 1, 2 ...
    assert knn_recall(X, X[::-1].copy(), k=2) == 1.0  # reversed order keeps distances
    Y2 = np.array([0, 5, 1, 4, 2, 3], dtype=float)[:, None]
    # point 0: true neighbours {1, 2}; in Y2 the points at 1 and 2 are points 2 and 4 -> 1 hit of 2
    assert knn_recall(X, Y2, k=2, sample=np.array([0])) == 0.5


def test_points_tied_at_the_kth_projected_distance_share_its_place():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])  # point 0's nearest: point 1
    Y = np.array([[0.0], [1.0], [-1.0], [5.0]])  # points 1 and 2 tie for point 0's one place
    assert knn_recall(X, Y, k=1, sample=np.array([0])) == 0.5


def test_distances_inside_a_tight_cluster_far_from_the_origin_are_right_where_the_expansion_is_not():
    rng = np.random.default_rng(0)
    centre = np.full(16, 1000.0, dtype=np.float32)  # |a|² ~ 1.6e7: float32 keeps ~1 unit of it
    X = np.tile(centre, (300, 1))
    X[:, :2] += rng.normal(scale=0.01, size=(300, 2)).astype(np.float32)  # spread ~0.01: d² ~ 1e-4
    sample = np.arange(0, 300, 3)
    truth = np.argsort(np.linalg.norm(X[sample, None].astype(np.float64) - X[None], axis=-1)
                       + np.where(np.arange(300)[None] == sample[:, None], np.inf, 0), axis=1)[:, :10]
    wrong = _expanded_nearest(X, sample, 10)
    assert (np.sort(wrong, 1) != np.sort(truth, 1)).any(axis=1).mean() > 0.5  # the old form fails here
    d = distances(X, sample)
    np.testing.assert_allclose(d, np.linalg.norm(X[sample, None].astype(np.float64) - X[None], axis=-1), atol=1e-6)
    Y = X[:, :2] - centre[:2]  # X lives in a plane: this projection loses nothing
    assert knn_recall(X, Y, k=10, sample=sample) == 1.0


def test_a_perfect_projection_of_a_cloud_with_exact_duplicates_scores_one():
    rng = np.random.default_rng(1)
    plane = rng.normal(size=(30, 2)).astype(np.float32)
    X = np.zeros((600, 8), dtype=np.float32)
    X[:, :2] = plane[rng.integers(0, 30, 600)]  # ~20 exact copies of each point, as in layer 0
    scores = projection_quality(X, X[:, :2].copy())
    assert scores["knn_recall@10"] == 1.0 and scores["trustworthiness@10"] == 1.0


def test_a_projection_that_collapses_every_point_gets_no_credit_from_its_ties():
    rng = np.random.default_rng(1)
    X = np.repeat(rng.normal(size=(30, 8)).astype(np.float32), 20, axis=0)  # 20 copies of each
    recall = projection_quality(X, np.zeros((600, 2), dtype=np.float32))["knn_recall@10"]
    # each point's 10 places shared by all 599 others, 19 of them true neighbours
    assert recall == pytest.approx(19 / 599, abs=1e-4)


def test_trustworthiness_equals_scikit_learns_where_there_are_no_ties():
    X = _clusters(n=300)
    Y = X[:, :2] + np.random.default_rng(2).normal(size=(300, 2)).astype(np.float32)
    _, trust = neighbourhood_scores(X, Y, 10, np.arange(300))
    assert trust == pytest.approx(trustworthiness(X, Y, n_neighbors=10), abs=1e-6)


def test_projection_quality_reports_both_scores():
    X = _clusters()
    q = projection_quality(X, X[:, :2].copy())
    assert set(q) == {"knn_recall@10", "trustworthiness@10", "sample"}
    assert 0 <= q["knn_recall@10"] <= 1 and 0 <= q["trustworthiness@10"] <= 1
