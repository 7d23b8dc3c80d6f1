"""Attention of one item (a sentence or an image) rebuilt from its query and key vectors.

Pure functions on numpy arrays, used by the API for stored items and for live input; the
per-head rebuild itself is joint.attention.
"""

from __future__ import annotations

import numpy as np

from .joint import attention, attention_heads


def item_attention(q: np.ndarray, k: np.ndarray, scaling: float, causal: bool, head: int | None = None) -> np.ndarray:
    """q, k: (n, heads, head_dim) of one layer -> (n, n) for `head`, or (heads, n, n) when head is None.

    `[i, j]`: how much token i attends to token j; rows sum to 1, and with `causal` nothing
    attends to a later token.
    """
    if head is None:
        return attention_heads(q, k, scaling, causal)
    return attention(q[:, head], k[:, head], scaling, causal)


def every_layer_attention(q: list[np.ndarray], k: list[np.ndarray], scaling: list[float], causal: bool) -> np.ndarray:
    """Per layer q, k (n, heads, head_dim) and scaling -> (layers, heads, n, n)."""
    return np.stack([attention_heads(ql, kl, s, causal) for ql, kl, s in zip(q, k, scaling)])
