"""Placing new points (live input) into a stored layout, beside the fit, as umap-learn and
openTSNE put `transform` beside `fit`: the layout's reducer makes a `Placer` for one head.

PCA places from the components and mean its .json keeps. UMAP and t-SNE place with their
library's own `transform`, which needs the fitted estimator (kNN index, fuzzy graph or
affinities, embedding). The atlas does not store those: a head of 10k points of 64 dims keeps
~11 MB in a fitted UMAP and ~34 MB in a t-SNE embedding with its affinities, so ~13 GB for the
144 heads of a 12 x 12 model in 2-D and 3-D, some 70 times the model's stored float16 vectors;
and a pickle would tie the atlas to one version of each library. Instead a head's estimator is
rebuilt on demand from what the atlas stores: the head's joint cloud (`run.joint_cloud`) and its
stored layout, which becomes the estimator's embedding unchanged. A rebuild costs the fit's
kNN search and affinities, no layout optimisation (measured here: 0.2-0.8 s for UMAP, 1.4-6 s for
t-SNE on 2.6k-10k points, plus, for the first UMAP in a process, compiling umap-learn's and
pynndescent's numba code: 30-90 s on 2 busy cores). The caller keeps the Placer: the API in
its LRU under the projection file's stamp (a rewritten layout gets a new one); `place` does not.
"""

from __future__ import annotations

import numpy as np

from ..errors import NotReady
from ..layout import Layout
from .methods import REDUCERS, CannotPlace, Loader, Placer
from .run import joint_cloud

__all__ = ["CannotPlace", "Placer", "can_place", "place", "placer", "stored_meta"]


def can_place(layout: Layout) -> bool:
    """Whether new points can be put into layouts of this kind."""
    return REDUCERS[layout.method].placeable


def stored_meta(atlas, layer: int, head: int, layout: Layout) -> dict:
    """The .json of (layer, head)'s stored `layout`, to place points into it.

    `atlas`: a store.Atlas, or anything with its `projection_meta(layer, head, layout)`.
    CannotPlace (422) when the layout's method cannot place points; NotReady (409) when the
    head's layout is not computed yet.
    """
    reducer = REDUCERS[layout.method]
    if not reducer.placeable:
        raise reducer.cannot_place()
    meta = atlas.projection_meta(layer, head, layout)
    if meta is None:
        raise NotReady(f"{layout.title} of layer {layer} head {head} is not computed yet: no layout to place points in")
    return meta


def placer(layout: Layout, meta: dict, cloud: Loader, coords: Loader) -> Placer:
    """What places new points into the layout whose .json is `meta` (see `stored_meta`).

    `cloud` and `coords` load the head's joint cloud (2 * tokens, head_dim) and stored coords
    (2 * tokens, layout.dim); only reducers that rebuild their estimator (`refits`) call them.
    """
    return REDUCERS[layout.method].placer(meta, cloud, coords)


def place(atlas, layer: int, head: int, layout: Layout, X: np.ndarray) -> np.ndarray:
    """New points X (n, head_dim), already in the head's joint space (`joint.to_joint`), ->
    (n, layout.dim) float32 coordinates in the stored layout of (layer, head) of a store.Atlas.

    Keeps nothing: a UMAP or t-SNE layout is rebuilt at every call; a caller that places into
    the same head again keeps `placer`'s Placer instead, as the API does.
    """
    meta = stored_meta(atlas, layer, head, layout)
    return placer(layout, meta, lambda: joint_cloud(atlas, layer, head),
                  lambda: atlas.projection(layer, head, layout)).transform(X)
