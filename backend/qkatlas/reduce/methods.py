"""The reduction methods behind one protocol, and the registry that is the one list of them.

A reducer is an estimator: parameters in `__init__`, `fit_transform(X) -> Y` on one head, and
after the fit `params` (stored with the layout) and `placement()` (what `place` needs later).
What a fit may share with the head's other layouts is declared too: `neighbours`, how many
columns of the head's kNN graph it reads (knn.py; run.py hands it the kept one), and
`starts_from`, the layout of the same head it begins from when the atlas has it.
Two optional abilities are declared on the class, so run.py and place.py never name a method:

  batched form   `fit_heads` fits many heads at once with torch; `batch_devices` names the
                 device types where that beats a process pool of `fit_transform`.
  placement      `placeable` reducers put new points into a stored layout with the `Placer` that
                 `placer(meta, cloud, coords)` makes: PCA from what `placement()` kept in the
                 projection's .json; UMAP and t-SNE (`refits`) by rebuilding their library's
                 fitted estimator from the head's joint cloud and stored coords (place.py says why).

Adding a method is one class here and one entry in REDUCERS.
"""

from __future__ import annotations

import logging
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar

import numpy as np

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .knn import Graph


class CannotPlace(InvalidInput):
    """New points cannot be put into this kind of layout (only refitting would place them)."""


@dataclass(frozen=True)
class HeadFit:
    """One head's fitted layout: coords (points, dim) float32, the parameters it was fitted
    with, and what `place` needs to put new points into it (kept in the projection's .json)."""

    coords: np.ndarray
    params: dict
    placement: dict


@dataclass(frozen=True)
class Placer:
    """Puts new points into one head's stored layout: `transform(X)` maps X (n, features), in
    the head's joint space, to (n, dim) float32. `nbytes` estimates what keeping it costs."""

    transform: Callable[[np.ndarray], np.ndarray]
    nbytes: int


Loader = Callable[[], np.ndarray]


# numba's fallback threading layer (workqueue, where neither OpenMP nor TBB is installed) aborts
# the process when two threads launch parallel kernels at once, as two API requests placing
# points into UMAP layouts would: umap-learn's work here runs one call at a time.
_NUMBA = threading.Lock()


def _footprint(obj, depth: int = 4, seen: set | None = None) -> int:
    """Bytes of the numpy arrays reachable from `obj` through attributes, containers and scipy
    sparse matrices, `depth` levels down: what a fitted estimator keeps, for a cache's budget."""
    seen = set() if seen is None else seen
    while isinstance(obj, np.ndarray) and isinstance(obj.base, np.ndarray):
        obj = obj.base  # a view costs what the array it views holds, counted once
    if id(obj) in seen or depth < 0:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        children = obj.values()
    elif isinstance(obj, (list, tuple)):
        children = obj
    else:
        children = getattr(obj, "__dict__", {}).values()
    return sum(_footprint(child, depth - 1, seen) for child in children)


@dataclass
class Reducer:
    """The protocol, with the defaults of a method that has neither a batched form nor placement."""

    dim: int
    seed: int = 0
    threads: int = 1

    name: ClassVar[str]
    label: ClassVar[str]
    batch_devices: ClassVar[frozenset[str]] = frozenset()
    placeable: ClassVar[bool] = False
    compiles: ClassVar[bool] = False  # its first placement in a process compiles code: see warm_up
    placed_by: ClassVar[str | None] = None  # how new points are placed, for people
    refits: ClassVar[bool] = False  # placing rebuilds the fitted estimator from the head's cloud and coords

    @property
    def neighbours(self) -> int:
        """How many nearest neighbours of each point the fit reads from the head's shared
        Graph (knn.py); 0 for a method that needs none."""
        return 0

    @property
    def starts_from(self) -> tuple[str, int] | None:
        """(method, dim) of the same head's layout the fit begins from, when the atlas has it."""
        return None

    def fit_transform(self, X: np.ndarray, graph: Graph | None = None, start: np.ndarray | None = None) -> np.ndarray:
        """X: (points, features) -> (points, dim) float32. `graph`: X's kNN Graph with at least
        `neighbours` columns, shared with the head's other layouts; computed when not given.
        `start`: the head's `starts_from` layout (points, its dim), when stored."""
        raise NotImplementedError

    def fit_head(self, X: np.ndarray, graph: Graph | None = None, start: np.ndarray | None = None) -> HeadFit:
        """X: (points, features) -> its HeadFit."""
        Y = self.fit_transform(X, graph, start)
        return HeadFit(Y, self.params, self.placement())

    def placement(self) -> dict:
        return {}

    def fit_heads(self, clouds: np.ndarray, device: str) -> list[HeadFit]:
        """clouds: (heads, points, features) -> one HeadFit per head, fitted together on `device`."""
        raise NotImplementedError(f"{self.label} has no batched form")

    @classmethod
    def batched_on(cls, device: str) -> bool:
        """Whether fitting many heads at once on `device` ("cpu", "cuda:0") beats a process pool."""
        return str(device).split(":")[0] in cls.batch_devices

    @classmethod
    def placer(cls, meta: dict, cloud: Loader, coords: Loader) -> Placer:
        """What places new points into the layout whose .json is `meta`. `cloud` and `coords`
        load the head's joint cloud (points, features) and stored coords (points, dim); only
        reducers that `refit` call them."""
        raise cls.cannot_place()

    @classmethod
    def warm_up(cls) -> None:
        """Do once per process what makes the first placement slow (compiling), so that a live
        request never pays it; nothing for most methods."""

    @classmethod
    def cannot_place(cls) -> CannotPlace:
        able = ", ".join(r.label for r in REDUCERS.values() if r.placeable)
        return CannotPlace(f"{cls.label} layouts cannot place new points; layouts that can: {able}")


@dataclass
class PCAReducer(Reducer):
    name: ClassVar[str] = "pca"
    label: ClassVar[str] = "PCA"
    # One batched eigendecomposition per layer is ~10x faster than one sklearn call per head on
    # CPU too (batched_pca.py), so the batched form is used everywhere.
    batch_devices: ClassVar[frozenset[str]] = frozenset({"cpu", "cuda"})
    placeable: ClassVar[bool] = True
    placed_by: ClassVar[str] = "PCA projection"

    def fit_transform(self, X: np.ndarray, graph: Graph | None = None, start: np.ndarray | None = None) -> np.ndarray:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=self.dim, random_state=self.seed, svd_solver="full")
        Y = pca.fit_transform(X)
        self.components_ = pca.components_.astype(np.float32)
        self.mean_ = pca.mean_.astype(np.float32)
        self.params = {"explained_variance_ratio": [float(v) for v in pca.explained_variance_ratio_],
                       "solver": "sklearn full svd"}
        return Y.astype(np.float32)

    def placement(self) -> dict:
        return {"components": self.components_.tolist(), "mean": self.mean_.tolist()}

    def fit_heads(self, clouds: np.ndarray, device: str) -> list[HeadFit]:
        import torch

        from .batched_pca import pca_heads

        Y, components, mean, ratio = (t.cpu().numpy() for t in pca_heads(torch.from_numpy(clouds).to(device), self.dim))
        return [HeadFit(Y[h], {"explained_variance_ratio": [float(v) for v in ratio[h]], "solver": "torch.linalg.eigh"},
                        {"components": components[h].tolist(), "mean": mean[h].tolist()})
                for h in range(len(clouds))]

    @classmethod
    def place(cls, meta: dict, X: np.ndarray) -> np.ndarray:
        """New points X (n, features) -> (n, dim) float32 by the components and mean in `meta`."""
        components = np.asarray(meta["components"], dtype=np.float32)  # (dim, features)
        mean = np.asarray(meta["mean"], dtype=np.float32)
        return (np.asarray(X, dtype=np.float32) - mean) @ components.T

    @classmethod
    def placer(cls, meta: dict, cloud: Loader, coords: Loader) -> Placer:
        return Placer(lambda X: cls.place(meta, X), 4 * (len(meta["components"]) + 1) * len(meta["mean"]))


# The share of umap-learn's default epochs (200 above 10k points, 500 below) that UMAP layouts
# run. umap-learn spends nearly all of a fit in these epochs (its kNN search, now shared, and its
# graph are ~15%), so fewer epochs is the one way to do much less work per layout; the share is
# the smallest that kept knn_recall@10 within 0.02 of umap-learn's on real heads (MiniLM, 14,880
# points: bench/layouts.py measures both in one run). The PCA start, umap-learn's own option,
# replaces its spectral one, which took 120 s on a MiniLM layer-0 head of exact duplicates.
UMAP_EPOCH_SHARE = 0.6


@dataclass
class UMAPReducer(Reducer):
    n_neighbors: int = 15
    min_dist: float = 0.1
    name: ClassVar[str] = "umap"
    label: ClassVar[str] = "UMAP"
    # A single head is too small to pay off on a GPU, and on CPU the batched loop's many small
    # ops lose to umap-learn in a pool; on CUDA a layer of heads at once is much faster.
    batch_devices: ClassVar[frozenset[str]] = frozenset({"cuda"})
    placeable: ClassVar[bool] = True
    placed_by: ClassVar[str] = "umap-learn transform"
    compiles: ClassVar[bool] = True
    refits: ClassVar[bool] = True

    @property
    def neighbours(self) -> int:
        return self.n_neighbors - 1  # umap-learn counts the point itself among its n_neighbors

    def fit_transform(self, X: np.ndarray, graph: Graph | None = None, start: np.ndarray | None = None) -> np.ndarray:
        """umap-learn's fit from the head's exact kNN graph, with a PCA start and UMAP_EPOCH_SHARE of
        its default epochs (see there)."""
        import umap

        from .batched_umap import default_epochs
        from .knn import exact_graph

        k = min(self.n_neighbors, len(X) - 1)
        graph = exact_graph(X) if graph is None else graph  # all K columns: the same graph as a shared one
        epochs = max(1, round(UMAP_EPOCH_SHARE * default_epochs(len(X))))
        model = umap.UMAP(n_components=self.dim, n_neighbors=k, min_dist=self.min_dist, random_state=self.seed,
                          n_jobs=1, low_memory=True, init="pca", n_epochs=epochs,
                          precomputed_knn=graph.with_self(k))
        self.params = {"implementation": "umap-learn", "n_neighbors": k, "min_dist": self.min_dist,
                       "metric": "euclidean", "seed": self.seed, "init": "pca", "n_epochs": epochs,
                       "neighbours": "exact kNN, shared by the head's layouts"}
        # umap-learn warns that a precomputed kNN without its search index cannot transform
        # (placement rebuilds its own: see placer) and about disconnected kNN graphs (common for
        # heads with tight clusters; the stored quality says how good the layout is).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return np.asarray(model.fit_transform(X), dtype=np.float32)

    def fit_heads(self, clouds: np.ndarray, device: str) -> list[HeadFit]:
        import torch

        from .batched_umap import default_epochs, umap_heads, umap_params

        epochs = default_epochs(clouds.shape[1])
        Y = umap_heads(torch.from_numpy(clouds).to(device), self.dim, self.n_neighbors, self.min_dist, self.seed,
                       epochs).cpu().numpy()
        params = umap_params(self.seed, epochs, self.n_neighbors, self.min_dist)
        return [HeadFit(y, params, {}) for y in Y]

    @classmethod
    def placer(cls, meta: dict, cloud: Loader, coords: Loader) -> Placer:
        """umap-learn's `transform` on an estimator rebuilt from the head's cloud, with the stored
        layout as its embedding_. Any stored UMAP layout, umap-learn's or the batched torch one,
        is the same algorithm on the same cloud with the parameters its .json names."""
        import umap

        params = meta.get("params", {})
        X = np.ascontiguousarray(cloud(), dtype=np.float32)
        Y = np.ascontiguousarray(coords(), dtype=np.float32)
        # transform_mode="graph" ends the fit after the kNN index and the fuzzy graph, before any
        # layout is made, so the stored layout becomes embedding_ unchanged (a fit with
        # init=coords would rescale it to [0, 10] and optimise it further). n_epochs as the fit
        # had it: transform runs a third of them, or umap-learn's default when the fit used its own.
        # NNDescent at every size: below 4096 points umap-learn otherwise takes exact distances
        # through a Python callback per pair, at fit (33 s for a head of 2634 points, where
        # NNDescent takes 0.2 s once its numba code is compiled) and again at every transform.
        model = umap.UMAP(n_components=Y.shape[1], n_neighbors=params.get("n_neighbors", cls.n_neighbors),
                          min_dist=params.get("min_dist", cls.min_dist), metric=params.get("metric", "euclidean"),
                          random_state=params.get("seed", 0), n_jobs=1, low_memory=True, transform_mode="graph",
                          force_approximation_algorithm=True)
        with _NUMBA, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # disconnected kNN graphs, as in fit_transform
            model.fit(X)
        model.transform_mode, model.embedding_, model.n_epochs = "embedding", Y, params.get("n_epochs")

        def transform(new: np.ndarray) -> np.ndarray:
            with _NUMBA:
                return np.array(model.transform(np.asarray(new, dtype=np.float32)), dtype=np.float32)

        return Placer(transform, _footprint(model))

    @classmethod
    def warm_up(cls) -> None:
        """Place a few points into a small random layout: compiles umap-learn's and pynndescent's
        numba code (30-150 s on 2 busy cores the first time; NUMBA_CACHE_DIR keeps part of it)."""
        rng = np.random.default_rng(0)
        X = rng.normal(size=(300, 8)).astype(np.float32)
        Y = rng.normal(size=(300, 2)).astype(np.float32)
        cls.placer({"params": {}}, lambda: X, lambda: Y).transform(X[:4])


# openTSNE's FFT-accelerated gradient costs ~10 s of set-up whatever the size, so Barnes-Hut
# is faster on small heads. Measured on this 2-core machine (one thread, 64-D clouds of 40
# clusters, whole fit, CPU seconds bh / fft): 1000 points 3.3 / 11.3, 3000: 9.9 / 20.8,
# 5000: 17.8 / 20.2, 6000: 22.8 / 23.5, 8000: 33.0 / 24.7. The crossover is near 6000.
FFT_MIN_POINTS = 6000
# The work of a t-SNE layout, chosen by measuring against openTSNE's defaults on MiniLM heads of
# 14,880 points (bench/layouts.py measures both in one run). 2-D: openTSNE's fit on the shared
# exact kNN affinities with half its iterations (early exaggeration, then plain), which kept
# knn_recall@10 within ~0.01 at a sixth of the CPU time (a fifth fewer iterations lost 0.03).
# 3-D: openTSNE has no FFT form in 3-D and its Barnes-Hut costs ~0.4 s per iteration there, so a
# default 3-D fit takes ~4 min per head; instead the 3-D layout starts from the head's 2-D t-SNE
# (the 2-D layout, plus the cloud's third PCA axis at a tenth of its spread), which has been
# through early exaggeration already, and runs a few plain iterations with a coarser tree.
TSNE_ITER = (100, 200)  # openTSNE's defaults: (250, 500)
TSNE_3D_ITER = 50
TSNE_3D_THETA = 1.0  # openTSNE's default: 0.5, at ~3x the cost per iteration in 3-D
THIRD_AXIS = 0.1


@dataclass
class TSNEReducer(Reducer):
    perplexity: float = 30.0
    name: ClassVar[str] = "tsne"
    label: ClassVar[str] = "t-SNE"
    # The batched form's exact repulsion is heads x points^2 per iteration: one fused GPU kernel
    # for a layer's heads (estimated in batched_tsne.py; bench/gpu.sh measures it), while on CPU
    # openTSNE's Barnes-Hut/FFT, one head per process, is far faster.
    batch_devices: ClassVar[frozenset[str]] = frozenset({"cuda"})
    placeable: ClassVar[bool] = True
    placed_by: ClassVar[str] = "openTSNE transform"
    refits: ClassVar[bool] = True

    @property
    def neighbours(self) -> int:
        return int(3 * self.perplexity)  # openTSNE's k for a perplexity

    @property
    def starts_from(self) -> tuple[str, int] | None:
        return (self.name, 2) if self.dim == 3 else None

    def gradient(self, points: int) -> str:
        """openTSNE's negative-gradient method for `points`: its FFT interpolation exists for
        1-D and 2-D only and pays from FFT_MIN_POINTS up; Barnes-Hut otherwise."""
        return "fft" if self.dim <= 2 and points >= FFT_MIN_POINTS else "bh"

    def fit_transform(self, X: np.ndarray, graph: Graph | None = None, start: np.ndarray | None = None) -> np.ndarray:
        """3-D begins from `start`, the head's 2-D t-SNE layout (points, 2), or fits one first."""
        from openTSNE import TSNE
        from openTSNE.affinity import PerplexityBasedNN
        from openTSNE.nearest_neighbors import PrecomputedNeighbors

        from .knn import exact_graph

        perplexity = min(self.perplexity, max(2.0, (len(X) - 1) / 3))
        graph = (exact_graph(X) if graph is None else graph).first(min(int(3 * perplexity), len(X) - 1))
        affinities = PerplexityBasedNN(knn_index=PrecomputedNeighbors(graph.indices, graph.distances),
                                       perplexity=perplexity, n_jobs=self.threads)
        gradient = self.gradient(len(X))
        common = {"perplexity": perplexity, "seed": self.seed, "gradient": gradient,
                  "neighbours": "exact kNN, shared by the head's layouts"}
        if self.dim == 3:
            made = "the head's stored t-SNE 2-D layout" if start is not None else "a t-SNE 2-D layout fitted first"
            if start is None:
                start = TSNEReducer(2, self.seed, self.threads, self.perplexity).fit_transform(X, graph)
            init = _add_axis(X, start, self.seed)
            early, plain, theta = 0, TSNE_3D_ITER, TSNE_3D_THETA
            self.params = common | {"init": f"{made}, plus the cloud's third PCA axis", "theta": theta,
                                    "iterations": [early, plain]}
        else:
            init, (early, plain), theta = "pca", TSNE_ITER, 0.5
            self.params = common | {"init": "pca", "iterations": [early, plain]}
        tsne = TSNE(n_components=self.dim, perplexity=perplexity, early_exaggeration_iter=early, n_iter=plain,
                    theta=theta, random_state=self.seed, n_jobs=self.threads, negative_gradient_method=gradient)
        with _quiet("openTSNE"):  # it warns that a start wider than 1e-4 may converge poorly: ours has converged
            return np.asarray(tsne.fit(X, affinities=affinities, initialization=init), dtype=np.float32)

    def fit_heads(self, clouds: np.ndarray, device: str) -> list[HeadFit]:
        import torch

        from .batched_tsne import tsne_heads, tsne_params

        Y = tsne_heads(torch.from_numpy(clouds).to(device), self.dim, self.perplexity, self.seed).cpu().numpy()
        params = tsne_params(clouds.shape[1], self.seed, self.perplexity)
        return [HeadFit(y, params, {}) for y in Y]

    @classmethod
    def placer(cls, meta: dict, cloud: Loader, coords: Loader) -> Placer:
        """openTSNE's `transform` on a TSNEEmbedding rebuilt from the stored coords and the
        affinities of the head's cloud at the fit's perplexity, optimised with the fit's gradient
        method; transform's own parameters are openTSNE's (perplexity 5 among the stored points)."""
        from openTSNE import TSNEEmbedding
        from openTSNE.affinity import PerplexityBasedNN

        params = meta.get("params", {})
        X = np.ascontiguousarray(cloud(), dtype=np.float32)
        Y = np.asarray(coords(), dtype=np.float64)
        seed = params.get("seed", 0)
        gradient = params.get("gradient") or cls(dim=Y.shape[1]).gradient(len(Y))
        affinities = PerplexityBasedNN(X, perplexity=params.get("perplexity", cls.perplexity), random_state=seed,
                                       n_jobs=1)
        # transform first moves the embedding's bounding-box centre to 0, in place: it gets a
        # centred copy, fresh each call so that calls never see each other, and its answer is
        # shifted back into the stored frame.
        centre = (Y.max(axis=0) + Y.min(axis=0)) / 2

        def transform(new: np.ndarray) -> np.ndarray:
            embedding = TSNEEmbedding(Y - centre, affinities, negative_gradient_method=gradient, random_state=seed,
                                      n_jobs=1)
            return (np.asarray(embedding.transform(np.asarray(new, dtype=np.float64))) + centre).astype(np.float32)

        # openTSNE's Annoy index lives outside Python: count it as one more copy of the cloud
        return Placer(transform, _footprint(affinities) + Y.nbytes + X.nbytes)


def _add_axis(X: np.ndarray, Y: np.ndarray, seed: int) -> np.ndarray:
    """A 2-D layout Y (points, 2) -> (points, 3): X's third principal axis added, scaled to
    THIRD_AXIS of Y's spread, so a 3-D fit starts near the 2-D layout and unfolds from it."""
    from sklearn.decomposition import PCA

    third = PCA(3, random_state=seed).fit_transform(X)[:, 2] if min(X.shape) >= 3 else np.zeros(len(X))
    spread = third.std()
    third = third * (THIRD_AXIS * Y.std() / spread) if spread > 0 else third
    return np.column_stack([Y, third]).astype(np.float64)


@contextmanager
def _quiet(logger: str):
    """Silence a library's log warnings for a block (and restore its level after)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


# The one registry of methods, in build order (cheap first, so the demo serves something at
# once); a new method is a class above and one entry here.
REDUCERS: dict[str, type[Reducer]] = {r.name: r for r in (PCAReducer, UMAPReducer, TSNEReducer)}


def make_reducer(method: str, dim: int, seed: int = 0, threads: int = 1) -> Reducer:
    return REDUCERS[method](dim=dim, seed=seed, threads=threads)
