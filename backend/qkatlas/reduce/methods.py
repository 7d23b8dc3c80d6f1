"""PCA (scikit-learn), UMAP (umap-learn) and t-SNE (openTSNE) behind one protocol."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

@dataclass
class PCAReducer:
    dim: int
    seed: int = 0
    threads: int = 1
    name: str = "pca"
    label: ClassVar[str] = "PCA"
    params: dict = field(default_factory=dict)

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=self.dim, random_state=self.seed, svd_solver="full")
        Y = pca.fit_transform(X)
        # Stored so new points (live input) can be placed into this head's layout.
        self.components_ = pca.components_.astype(np.float32)
        self.mean_ = pca.mean_.astype(np.float32)
        self.params = {"explained_variance_ratio": [float(v) for v in pca.explained_variance_ratio_]}
        return Y.astype(np.float32)

    def placement(self) -> dict:
        return {"components": self.components_.tolist(), "mean": self.mean_.tolist()}


@dataclass
class UMAPReducer:
    dim: int
    seed: int = 0
    threads: int = 1
    n_neighbors: int = 15
    min_dist: float = 0.1
    name: str = "umap"
    label: ClassVar[str] = "UMAP"

    @property
    def params(self) -> dict:
        return {"n_neighbors": self.n_neighbors, "min_dist": self.min_dist, "metric": "euclidean", "seed": self.seed}

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        import umap

        model = umap.UMAP(n_components=self.dim, n_neighbors=self.n_neighbors, min_dist=self.min_dist,
                          random_state=self.seed, n_jobs=1, low_memory=True)
        # umap-learn warns when its spectral start falls back to a random one (a disconnected
        # kNN graph, common for heads with tight clusters); the layout is still valid and the
        # stored quality score says how good it is, so keep the progress bars clean.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return np.asarray(model.fit_transform(X), dtype=np.float32)

    def placement(self) -> dict:
        return {}


@dataclass
class TSNEReducer:
    dim: int
    seed: int = 0
    threads: int = 1
    perplexity: float = 30.0
    name: str = "tsne"
    label: ClassVar[str] = "t-SNE"

    @property
    def params(self) -> dict:
        return {"perplexity": self.perplexity, "seed": self.seed, "gradient": self._gradient}

    @property
    def _gradient(self) -> str:
        # openTSNE's FFT interpolation exists for 1-D and 2-D only; 3-D uses Barnes-Hut.
        return "fft" if self.dim <= 2 else "bh"

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        from openTSNE import TSNE

        perplexity = min(self.perplexity, max(2.0, (len(X) - 1) / 3))
        tsne = TSNE(n_components=self.dim, perplexity=perplexity, random_state=self.seed, n_jobs=self.threads,
                    negative_gradient_method=self._gradient, verbose=False)
        return np.asarray(tsne.fit(X), dtype=np.float32)

    def placement(self) -> dict:
        return {}


# The one registry of methods, in build order (cheap first, so the demo serves something at
# once); a new method is a class above and one entry here.
REDUCERS = {"pca": PCAReducer, "umap": UMAPReducer, "tsne": TSNEReducer}


def make_reducer(method: str, dim: int, seed: int = 0, threads: int = 1):
    return REDUCERS[method](dim=dim, seed=seed, threads=threads)
