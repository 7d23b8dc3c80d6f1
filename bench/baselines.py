"""The libraries as qkatlas called them before issue 17, for benchmarks to measure against:
umap-learn's and openTSNE's defaults (their own kNN search, start and iterations), seeded, one
thread; scikit-learn's PCA. qkatlas's reducers now share a kNN graph and do less work per
layout (reduce/methods.py), so `make_reducer` is no longer the plain library."""

from __future__ import annotations

import warnings

import numpy as np


def umap_learn(X: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
    """umap-learn's defaults: NN-descent (exact below 4096 points), spectral start, 200 epochs above 10k points."""
    import umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # disconnected kNN graphs, as qkatlas's fit
        return umap.UMAP(n_components=dim, n_neighbors=15, min_dist=0.1, random_state=seed, n_jobs=1,
                         low_memory=True).fit_transform(X)


def open_tsne(X: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
    """openTSNE's defaults (Annoy kNN, PCA start, 250 + 500 iterations); its FFT gradient in 2-D
    from 6000 points, Barnes-Hut otherwise, as qkatlas chose them."""
    from openTSNE import TSNE

    gradient = "fft" if dim == 2 and len(X) >= 6000 else "bh"
    return np.asarray(TSNE(n_components=dim, perplexity=30, random_state=seed, n_jobs=1,
                           negative_gradient_method=gradient).fit(X))


def pca(X: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
    from sklearn.decomposition import PCA

    return PCA(n_components=dim, random_state=seed, svd_solver="full").fit_transform(X)


LIBRARY = {"pca": pca, "umap": umap_learn, "tsne": open_tsne}
