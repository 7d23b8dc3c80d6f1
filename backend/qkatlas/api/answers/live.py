"""Live attention: a user's input through the atlas's own model, answered like a stored item.

The answer holds every layer's and head's attention and, for one (layer, head), the input's
queries and keys placed in that head's stored layout of the method and dim asked for, by the
layout's own reducer (reduce/place.py). A layout that cannot place new points, or is not
computed yet, is said so: the input is never placed in another layout instead.
"""

from __future__ import annotations

import time

import numpy as np

from ...errors import InvalidInput, NotReady
from ...item_attention import every_layer_attention
from ...joint import to_joint
from ...layout import Layout
from ...reduce.methods import REDUCERS
from ...reduce.place import CannotPlace, place
from ..inference import LiveCapture
from ..registry import AtlasRegistry
from ..served import ServedAtlas


def live_atlas(registry: AtlasRegistry, atlas: str, modality: str, layer: int | None, head: int | None) -> ServedAtlas:
    """The atlas a live request names, checked: it holds `modality`, and (layer, head) exists."""
    served = registry.get(atlas)
    held = served.manifest.modality
    if held != modality:
        other = "/api/attention/image" if held == "image" else "/api/attention"
        raise InvalidInput(f"atlas {atlas!r} holds {held}, not {modality}: use POST {other}")
    if layer is not None or head is not None:
        served.check_head(layer or 0, head or 0)
    return served


def placed_by(layout: Layout) -> str:
    """How the layout's reducer places new points, for people: its `placed_by` when it names
    the implementation ("umap-learn transform"), else "<method> projection"."""
    return getattr(REDUCERS[layout.method], "placed_by", None) or f"{layout.label} projection"


def placed_points(served: ServedAtlas, cap: LiveCapture, layer: int, head: int,
                  layout: Layout) -> tuple[dict | None, dict | None]:
    """(points, None): the input's queries and keys in the stored `layout` of (layer, head); or
    (None, {"error": why}) when that layout cannot place new points or is not computed yet."""
    q, k = cap.q[layer][:, head], cap.k[layer][:, head]
    X = to_joint(q, k, *served.joint_transform(layer, head))
    t0 = time.perf_counter()
    try:
        Y = place(served, layer, head, layout, X)
    except (CannotPlace, NotReady) as e:
        return None, {"error": str(e)}
    seconds = time.perf_counter() - t0
    n = len(q)
    return {"layer": layer, "head": head, "method": layout.method, "dim": layout.dim,
            "queries": Y[:n].tolist(), "keys": Y[n:].tolist(), "seconds": seconds, "how": placed_by(layout)}, None


def live_answer(served: ServedAtlas, cap: LiveCapture, layer: int | None, head: int | None, layout: Layout) -> dict:
    attn = every_layer_attention(cap.q, cap.k, cap.scaling, cap.causal)
    asked = layer is not None and head is not None
    points, placement = placed_points(served, cap, layer, head, layout) if asked else (None, None)
    return {"model": served.manifest.model.id, "atlas": served.id, "tokens": cap.tokens,
            "layers": attn.shape[0], "heads": attn.shape[1], "attention": np.round(attn, 6).tolist(),
            "points": points, "placement": placement}
