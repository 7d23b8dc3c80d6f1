"""Live attention: a user's input through the atlas's own model, answered like a stored item.

The answer holds every layer's and head's attention and, for one (layer, head), the input's
queries and keys placed in that head's stored PCA 2-D layout.
"""

from __future__ import annotations

import numpy as np

from ...errors import InvalidInput
from ...item_attention import every_layer_attention
from ...joint import to_joint
from ...layout import Layout
from ..inference import LiveCapture
from ..registry import AtlasRegistry
from ..served import ServedAtlas

PLACED = Layout("pca", 2)  # the one layout new points can be placed in exactly


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


def pca_place(X: np.ndarray, components: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """New points X (n, head_dim) in a fitted PCA layout: (X - mean) @ componentsᵀ -> (n, dim)."""
    return (X - mean) @ components.T


def placed_points(served: ServedAtlas, cap: LiveCapture, layer: int, head: int) -> dict | None:
    """The input's queries and keys in the atlas's PCA 2-D layout of (layer, head), or None if not computed."""
    meta = served.projection_meta(layer, head, PLACED)
    if meta is None or "components" not in meta:
        return None
    q, k = cap.q[layer][:, head], cap.k[layer][:, head]
    Y = pca_place(to_joint(q, k, *served.joint_transform(layer, head)),
                  np.asarray(meta["components"], dtype=np.float32), np.asarray(meta["mean"], dtype=np.float32))
    n = len(q)
    return {"layer": layer, "head": head, "method": PLACED.method, "dim": PLACED.dim,
            "queries": Y[:n].tolist(), "keys": Y[n:].tolist()}


def live_answer(served: ServedAtlas, cap: LiveCapture, layer: int | None, head: int | None) -> dict:
    attn = every_layer_attention(cap.q, cap.k, cap.scaling, cap.causal)
    points = placed_points(served, cap, layer, head) if layer is not None and head is not None else None
    return {"model": served.manifest.model.id, "atlas": served.id, "tokens": cap.tokens,
            "layers": attn.shape[0], "heads": attn.shape[1], "attention": np.round(attn, 6).tolist(),
            "points": points}
