"""The atlas read straight from its files with numpy, as any client could: the answers tests compare with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def stored_vectors(atlas: Path, layer: int, head: int) -> tuple[np.ndarray, np.ndarray]:
    """(q, k) of one head straight from the .npy files, float32 (tokens, head_dim): vectors are
    stored less a per-head offset (vectors/qmean_L*.npy, kmean_L*.npy), added back here."""
    q = np.load(atlas / "vectors" / f"q_L{layer:02d}.npy")[:, head].astype(np.float32)
    q += np.load(atlas / "vectors" / f"qmean_L{layer:02d}.npy")[head]
    k = np.load(atlas / "vectors" / f"k_L{layer:02d}.npy")[:, head].astype(np.float32)
    return q, k + np.load(atlas / "vectors" / f"kmean_L{layer:02d}.npy")[head]


def stored_projection(atlas: Path, layer: int, head: int, method: str = "pca", dim: int = 2) -> np.ndarray:
    return np.load(atlas / "projections" / f"{method}-{dim}d" / f"L{layer:02d}H{head:02d}.npy")


def manifest(atlas: Path) -> dict:
    return json.loads((atlas / "manifest.json").read_text())


def stored_joint_cloud(atlas: Path, layer: int, head: int) -> np.ndarray:
    """(2 * tokens, head_dim): the head's queries then keys in the joint space, from joint.npz."""
    q, k = stored_vectors(atlas, layer, head)
    with np.load(atlas / "joint.npz") as z:
        t, s = z["translation"][layer, head], float(z["scale"][layer, head])
    return np.concatenate([q * s, (k + t) / s])


def item_rows(atlas: Path, item: int) -> np.ndarray:
    """Token rows of one item, from the token table."""
    import pyarrow.parquet as pq

    return np.flatnonzero(pq.read_table(atlas / "tokens.parquet").column("item").to_numpy() == item)


def causally_seen(atlas: Path, token: int, side: str) -> np.ndarray:
    """bool (tokens,): for a query, the keys it may attend to; for a key, the queries that may
    attend to it. Every token of other items, and of its own item those at or before (for a
    query) or at or after (for a key) its position; every token at all in a bidirectional atlas."""
    import pyarrow.parquet as pq

    tokens = pq.read_table(atlas / "tokens.parquet")
    item, position = tokens.column("item").to_numpy(), tokens.column("position").to_numpy()
    if not manifest(atlas)["causal"]:
        return np.ones(len(item), dtype=bool)
    later = position > position[token] if side == "query" else position < position[token]
    return ~((item == item[token]) & later)
