"""Placing new points (live input) into a stored layout, beside the fit, as umap-learn and
openTSNE put `transform` beside `fit`: the layout's reducer does it from what its .json keeps."""

from __future__ import annotations

import numpy as np

from ..errors import NotReady
from ..layout import Layout
from .methods import REDUCERS, CannotPlace

__all__ = ["CannotPlace", "can_place", "place"]


def can_place(layout: Layout) -> bool:
    """Whether new points can be put into layouts of this kind."""
    return REDUCERS[layout.method].placeable


def place(atlas, layer: int, head: int, layout: Layout, X: np.ndarray) -> np.ndarray:
    """New points X (n, head_dim), already in the head's joint space (`joint.to_joint`), ->
    (n, layout.dim) float32 coordinates in the stored layout of (layer, head).

    `atlas`: a store.Atlas, or anything with its `projection_meta(layer, head, layout)`.
    CannotPlace (422) when the layout's method cannot place points; NotReady (409) when the
    head's layout is not computed yet.
    """
    reducer = REDUCERS[layout.method]
    meta = atlas.projection_meta(layer, head, layout) if reducer.placeable else {}  # {}: place raises CannotPlace
    if meta is None:
        raise NotReady(f"{layout.title} of layer {layer} head {head} is not computed yet: no layout to place points in")
    return reducer.place(meta, X)
