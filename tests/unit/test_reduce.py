"""Reducers: one protocol, one registry, batched PCA equal to scikit-learn's, t-SNE's variant by size."""

import os

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from qkatlas.layout import METHODS, Layout
from qkatlas.reduce import REDUCERS, make_reducer
from qkatlas.reduce.batched_pca import pca_heads
from qkatlas.reduce.executor import plan_workers
from qkatlas.reduce.methods import FFT_MIN_POINTS, TSNE_3D_ITER, HeadFit, Reducer, TSNEReducer
from qkatlas.reduce.quality import knn_recall


def _clusters(n=300, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, d)) * 10
    return (centres[rng.integers(0, 5, n)] + rng.normal(size=(n, d))).astype(np.float32)


def test_the_registry_is_the_one_list_of_methods():
    assert tuple(REDUCERS) == METHODS
    for name, cls in REDUCERS.items():
        assert issubclass(cls, Reducer) and cls.name == name and cls.label
        assert Layout(name, 2).label == cls.label


def test_batched_pca_equals_sklearn():
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(3, 400, 10)) * np.linspace(5, 0.2, 10)).astype(np.float32)
    Y, comps, mean, ratio = pca_heads(torch.from_numpy(X), 3)
    for h in range(3):
        ref = PCA(3, svd_solver="full").fit(X[h])
        np.testing.assert_allclose(comps[h].numpy(), ref.components_, atol=1e-4)
        np.testing.assert_allclose(Y[h].numpy(), ref.transform(X[h]), atol=1e-3)
        np.testing.assert_allclose(ratio[h].numpy(), ref.explained_variance_ratio_, atol=1e-5)


def test_pca_one_head_and_many_at_once_give_the_same_layout_and_place_points_into_it():
    X = np.stack([_clusters(seed=s) for s in (1, 2)])
    reducer = make_reducer("pca", 2)
    batched = reducer.fit_heads(X, "cpu")
    for h in range(2):
        alone = reducer.fit_head(X[h])
        assert isinstance(alone, HeadFit) and alone.coords.dtype == np.float32
        np.testing.assert_allclose(batched[h].coords, alone.coords, atol=1e-3)
        for fit in (alone, batched[h]):
            np.testing.assert_allclose(REDUCERS["pca"].place(fit.placement, X[h]), fit.coords, atol=1e-4)
    assert batched[0].params["solver"] == "torch.linalg.eigh"
    assert len(batched[0].params["explained_variance_ratio"]) == 2


def test_each_method_says_where_its_batched_form_pays():
    assert REDUCERS["pca"].batched_on("cpu") and REDUCERS["pca"].batched_on("cuda:0")
    assert REDUCERS["umap"].batched_on("cuda:1") and not REDUCERS["umap"].batched_on("cpu")
    assert REDUCERS["tsne"].batched_on("cuda") and not REDUCERS["tsne"].batched_on("cpu")


@pytest.mark.parametrize("method,dim", [("pca", 2), ("pca", 3), ("tsne", 2), ("tsne", 3)])
def test_reducers_are_deterministic_and_keep_clusters(method, dim):
    X = _clusters(n=240)
    a = make_reducer(method, dim, seed=3).fit_transform(X)
    b = make_reducer(method, dim, seed=3).fit_transform(X)
    assert a.shape == (240, dim) and a.dtype == np.float32
    np.testing.assert_allclose(a, b)
    assert knn_recall(X, a, k=10) > 0.3


def test_tsne_uses_barnes_hut_below_the_fft_crossover_and_records_it():
    reducer = TSNEReducer(dim=2)
    assert reducer.gradient(FFT_MIN_POINTS - 1) == "bh" and reducer.gradient(FFT_MIN_POINTS) == "fft"
    assert TSNEReducer(dim=3).gradient(10 * FFT_MIN_POINTS) == "bh"  # openTSNE's FFT is 1-D and 2-D only
    fit = reducer.fit_head(_clusters(n=240))
    assert fit.params["gradient"] == "bh" and fit.params["perplexity"] == 30.0 and fit.params["seed"] == 0


@pytest.mark.parametrize("dim", [2, 3])
def test_tsne_with_less_work_keeps_neighbours_as_well_as_opentsnes_defaults_and_far_better_than_its_start(dim):
    """Half the 2-D iterations, and 3-D from the 2-D layout: measured on this cloud 0.393 / 0.399
    (ours / openTSNE's defaults) in 2-D, 0.441 / 0.457 in 3-D, where PCA keeps 0.16 / 0.20."""
    from openTSNE import TSNE

    X = _clusters(n=600)
    ours = knn_recall(X, make_reducer("tsne", dim).fit_transform(X))
    theirs = knn_recall(X, np.asarray(TSNE(n_components=dim, random_state=0, negative_gradient_method="bh").fit(X)))
    assert ours > theirs - 0.03, (ours, theirs)
    assert ours > knn_recall(X, PCA(dim).fit_transform(X)) + 0.15


def test_tsne_3d_starts_from_the_2d_layout_it_is_given_or_fits_that_layout_first():
    X = _clusters(n=300)
    flat = make_reducer("tsne", 2).fit_transform(X)
    given = make_reducer("tsne", 3)
    Y = given.fit_transform(X, start=flat)
    np.testing.assert_array_equal(Y, make_reducer("tsne", 3).fit_transform(X))
    assert given.params["iterations"] == [0, TSNE_3D_ITER] and "stored" in given.params["init"]


@pytest.mark.slow  # numba compiles umap-learn's NN-descent for the baseline: ~10 s
@pytest.mark.parametrize("dim", [2, 3])
def test_umap_with_less_work_keeps_neighbours_as_well_as_umap_learns_defaults_and_far_better_than_its_start(dim):
    """The shared exact kNN, a PCA start and UMAP_EPOCH_SHARE of the epochs: measured on this cloud
    0.298 / 0.301 (ours / umap-learn's defaults) in 2-D, 0.355 / 0.367 in 3-D; PCA 0.16 / 0.20."""
    import umap

    X = _clusters(n=600)
    ours = knn_recall(X, make_reducer("umap", dim).fit_transform(X))
    theirs = knn_recall(X, umap.UMAP(n_components=dim, random_state=0, n_jobs=1).fit_transform(X))
    assert ours > theirs - 0.025, (ours, theirs)
    assert ours > knn_recall(X, PCA(dim).fit_transform(X)) + 0.1


@pytest.mark.slow
@pytest.mark.parametrize("dim", [2, 3])
def test_umap_is_deterministic_and_keeps_clusters(dim):
    X = _clusters(n=240)
    a = make_reducer("umap", dim, seed=3).fit_transform(X)
    b = make_reducer("umap", dim, seed=3).fit_transform(X)
    np.testing.assert_allclose(a, b)
    assert knn_recall(X, a, k=10) > 0.3


def test_worker_plan_never_oversubscribes():
    cores = os.cpu_count()
    for requested in (0, 1, 2, 64):
        workers, threads = plan_workers(requested, jobs=100)
        assert workers * threads <= max(cores, 1) and workers >= 1
    assert plan_workers(0, jobs=1)[0] == 1
