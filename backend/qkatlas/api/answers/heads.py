"""One head: its layouts, joint transform and key/value group, and the exact neighbours of one of its points."""

from __future__ import annotations

import numpy as np

from ...layout import ALL, Layout
from ...neighbours import attention_neighbours, causal_hidden, distance_neighbours
from ..served import ServedAtlas

# What the causal mask leaves out of by=attention, per side of the token asked about.
CAUSAL_NOTE = {"query": "; causal: later keys of its own item left out",
               "key": "; causal: earlier queries of its own item left out"}


def head_info(served: ServedAtlas, layer: int, head: int) -> dict:
    """The layouts computed for the head (params, quality, seconds, points), its joint transform
    and how its joint space agrees with attention beside raw q/k,
    the key/value head it shares with the other query heads of its group, and its statistics."""
    served.check_head(layer, head)
    projections = {}
    for layout in ALL:
        meta = served.projection_meta(layer, head, layout)
        if meta is not None:
            projections[layout.key] = {"params": meta.get("params", {}), "quality": meta.get("quality", {}),
                                       "seconds": meta.get("seconds"), "points": meta.get("points")}
    translation, scale = served.joint_transform(layer, head)
    kv_head = served.manifest.kv_group(head)
    return {"layer": layer, "head": head, "projections": projections,
            "joint": {"method": served.manifest.joint, "scale": scale,
                      "translation_norm": float(np.linalg.norm(translation)), **served.joint_agreement(layer, head)},
            "kv_head": kv_head, "kv_group": served.kv_group(layer, kv_head), "stats": served.head_stats(layer, head)}


def neighbour_answer(served: ServedAtlas, layer: int, head: int, token: int, side: str, k: int, by: str,
                     layout: Layout) -> dict:
    """The k neighbours of `token`'s query or key by attention, joint distance or distance in
    `layout` (used by by="projection" only), each named by its token."""
    served.check_head(layer, head)
    served.check_token(token)
    if by == "attention":
        q, keys = served.head_vectors(layer, head)
        causal = served.manifest.causal
        hidden = causal_hidden(token, side, *served.token_item_rows(token)) if causal else range(0)
        found = attention_neighbours(q, keys, served.scaling(layer), token, side, k, hidden)
        metric = "q·k × scaling (highest first" + (CAUSAL_NOTE[side] if causal else "") + ")"
    elif by == "joint":
        found = distance_neighbours(served.joint_cloud(layer, head), token, side, k)
        metric = "euclidean distance in the joint space (nearest first)"
    else:
        coords, _ = served.projection(layer, head, layout)
        found = distance_neighbours(coords, token, side, k)
        metric = f"euclidean distance in the {layout.method} {layout.dim}-D layout (nearest first)"
    return {"token": served.token_ref(token, side), "by": by, "metric": metric,
            "neighbours": [{**served.token_ref(t, s), "score": score} for t, s, score in found]}
