import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from qkatlas.reduce import make_reducer
from qkatlas.reduce.batched_pca import pca_heads
from qkatlas.reduce.executor import plan_workers
from qkatlas.reduce.quality import knn_recall, nearest, projection_quality


def _clusters(n=300, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, d)) * 10
    return (centres[rng.integers(0, 5, n)] + rng.normal(size=(n, d))).astype(np.float32)


def test_knn_recall_is_one_for_an_isometry_and_low_for_noise():
    X = np.random.default_rng(0).normal(size=(200, 2))
    R = np.array([[0.0, -1.0], [1.0, 0.0]])
    assert knn_recall(X, X @ R * 3.0 + 5.0, k=10) == 1.0  # rotation, scale, shift keep neighbours
    noise = np.random.default_rng(1).normal(size=(200, 2))
    assert knn_recall(X, noise, k=10) < 0.2


def test_knn_recall_by_hand_on_a_line():
    X = np.arange(6, dtype=float)[:, None]  # neighbours of 0 are 1, 2 ...
    Y = X[[0, 1, 2, 3, 4, 5]][::-1].copy()  # reversed order keeps distances
    assert knn_recall(X, Y, k=2) == 1.0
    Y2 = np.array([0, 5, 1, 4, 2, 3], dtype=float)[:, None]
    # point 0 (at 0): true nn {1,2}; in Y2 its nn are points at 1 and 2 -> items 2 and 4 -> recall 0.5 for it
    sample = np.array([0])
    assert knn_recall(X, Y2, k=2, sample=sample) == 0.5


def test_nearest_is_exact():
    X = np.random.default_rng(3).normal(size=(500, 8)).astype(np.float32)
    idx = np.array([0, 7, 99])
    brute = np.argsort(((X[idx, None, :] - X[None]) ** 2).sum(-1), axis=1)[:, :5]
    np.testing.assert_array_equal(nearest(X, idx, 5), brute)


def test_projection_quality_reports_both_scores():
    X = _clusters()
    q = projection_quality(X, X[:, :2].copy())
    assert set(q) == {"knn_recall@10", "trustworthiness@10", "sample"}
    assert 0 <= q["knn_recall@10"] <= 1 and 0 <= q["trustworthiness@10"] <= 1


def test_batched_pca_equals_sklearn():
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(3, 400, 10)) * np.linspace(5, 0.2, 10)).astype(np.float32)
    Y, comps, mean, ratio = pca_heads(torch.from_numpy(X), 3)
    for h in range(3):
        ref = PCA(3, svd_solver="full").fit(X[h])
        np.testing.assert_allclose(comps[h].numpy(), ref.components_, atol=1e-4)
        np.testing.assert_allclose(Y[h].numpy(), ref.transform(X[h]), atol=1e-3)
        np.testing.assert_allclose(ratio[h].numpy(), ref.explained_variance_ratio_, atol=1e-5)


@pytest.mark.parametrize("method,dim", [("pca", 2), ("pca", 3), ("tsne", 2), ("tsne", 3)])
def test_reducers_are_deterministic_and_keep_clusters(method, dim):
    X = _clusters(n=240)
    a = make_reducer(method, dim, seed=3).fit_transform(X)
    b = make_reducer(method, dim, seed=3).fit_transform(X)
    assert a.shape == (240, dim) and a.dtype == np.float32
    np.testing.assert_allclose(a, b)
    assert knn_recall(X, a, k=10) > 0.3


@pytest.mark.slow
@pytest.mark.parametrize("dim", [2, 3])
def test_umap_is_deterministic_and_keeps_clusters(dim):
    X = _clusters(n=240)
    a = make_reducer("umap", dim, seed=3).fit_transform(X)
    b = make_reducer("umap", dim, seed=3).fit_transform(X)
    np.testing.assert_allclose(a, b)
    assert knn_recall(X, a, k=10) > 0.3


def test_worker_plan_never_oversubscribes():
    import os

    cores = os.cpu_count()
    for requested in (0, 1, 2, 64):
        workers, threads = plan_workers(requested, jobs=100)
        assert workers * threads <= max(cores, 1) and workers >= 1
    assert plan_workers(0, jobs=1)[0] == 1
