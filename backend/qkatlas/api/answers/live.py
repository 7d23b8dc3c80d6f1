"""Live attention: a user's input through the atlas's own model, answered like a stored item.

The answer holds the attention of the scope asked for (every layer and head, while that is
small; one layer; one head) and, for one (layer, head), the input's queries and keys placed in
that head's stored layout of the method and dim asked for, by the layout's own reducer
(reduce/place.py). A layout that cannot place new points, or is not computed yet, is said so:
the input is never placed in another layout instead.
"""

from __future__ import annotations

import time

import numpy as np

from ...errors import InvalidInput, NotReady
from ...item_attention import every_layer_attention, item_attention
from ...joint import to_joint
from ...layout import Layout
from ...reduce.methods import REDUCERS
from ...reduce.place import CannotPlace, Placer, placer, stored_meta
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
    return REDUCERS[layout.method].placed_by or f"{layout.label} projection"


def layout_placer(served: ServedAtlas, layer: int, head: int, layout: Layout) -> tuple[Placer, bool]:
    """(what places points into the stored `layout` of (layer, head), whether this call built it).

    Kept in the API's LRU under the projection file's stamp, so a rewritten layout gets a new
    one; building it refits a UMAP or t-SNE estimator on the head's joint cloud (seconds).
    CannotPlace or NotReady as `stored_meta` says.
    """
    meta = stored_meta(served, layer, head, layout)
    coords, stamp = served.projection(layer, head, layout)
    key = ("placer", served.id, served.stamp, layer, head, layout, stamp)
    kept = served.cache.get(key)
    if kept is not None:
        return kept, False
    return served.cache.get_or_build(
        key, lambda: placer(layout, meta, lambda: served.joint_cloud(layer, head), lambda: coords)), True


def placed_points(served: ServedAtlas, cap: LiveCapture, layer: int, head: int,
                  layout: Layout) -> tuple[dict | None, dict | None]:
    """(points, None): the input's queries and keys in the stored `layout` of (layer, head); or
    (None, {"error": why}) when that layout cannot place new points or is not computed yet.
    `seconds` counts everything placing took, the rebuild of the layout's estimator included."""
    q, k = cap.q[layer][:, head], cap.k[layer][:, head]
    X = to_joint(q, k, *served.joint_transform(layer, head))
    t0 = time.perf_counter()
    try:
        to_layout, built = layout_placer(served, layer, head, layout)
    except (CannotPlace, NotReady) as e:
        return None, {"error": str(e)}
    Y = to_layout.transform(X)
    seconds = time.perf_counter() - t0
    n = len(q)
    return {"layer": layer, "head": head, "method": layout.method, "dim": layout.dim,
            "queries": Y[:n].tolist(), "keys": Y[n:].tolist(), "seconds": seconds, "how": placed_by(layout),
            "rebuilt": built and REDUCERS[layout.method].refits}, None


# An answer with every layer and head is refused beyond this size (bytes as JSON, or as float16
# with format "binary"): a long text through a 12 x 12 model would be ~80 MB of JSON.
FULL_ANSWER_BYTES = 4 << 20
BYTES_PER_VALUE = {"json": 9, "binary": 2}


def scoped_attention(cap: LiveCapture, scope: str, layer: int | None, head: int | None, fmt: str) -> np.ndarray:
    """scope "all": (layers, heads, n, n); "layer": (heads, n, n) of `layer`; "head": (n, n).
    InvalidInput when "all" would be larger than FULL_ANSWER_BYTES in `fmt`."""
    if scope == "layer":
        return item_attention(cap.q[layer], cap.k[layer], cap.scaling[layer], cap.causal)
    if scope == "head":
        return item_attention(cap.q[layer], cap.k[layer], cap.scaling[layer], cap.causal, head)
    n, heads = cap.q[0].shape[:2]
    values = len(cap.q) * heads * n * n
    if values * BYTES_PER_VALUE[fmt] > FULL_ANSWER_BYTES:
        raise InvalidInput(f"the attention of every layer and head of this input is {len(cap.q)} x {heads} x {n}² = "
                           f"{values} values, over the {FULL_ANSWER_BYTES >> 20} MiB an answer with every layer may "
                           "hold: ask for scope 'layer' (with layer) or 'head' (with layer and head)"
                           + (", or format 'binary'" if fmt == "json" else ""))
    return every_layer_attention(cap.q, cap.k, cap.scaling, cap.causal)


def live_answer(served: ServedAtlas, cap: LiveCapture, layer: int | None, head: int | None, layout: Layout,
                scope: str = "all", fmt: str = "json") -> dict:
    """The answer; its "attention" is a float32 array of the scope's shape (the router encodes it)."""
    attn = scoped_attention(cap, scope, layer, head, fmt)
    asked = layer is not None and head is not None
    points, placement = placed_points(served, cap, layer, head, layout) if asked else (None, None)
    return {"model": served.manifest.model.id, "atlas": served.id, "tokens": cap.tokens,
            "layers": len(cap.q), "heads": cap.q[0].shape[1], "scope": scope, "layer": layer, "head": head,
            "attention": attn, "points": points, "placement": placement}
